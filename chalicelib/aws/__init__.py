"""The one door to AWS: every call chalicelib makes goes through an adapter here, one module
per service, each handed its client (made lazily, once per container, endpoints from the
environment: AWS, moto's server or LocalStack alike).

    objects()     S3: chalicelib.aws.s3.Objects
    queues()      SQS: chalicelib.aws.sqs.Queues
    topics()      SNS: chalicelib.aws.sns.Topics
    table()       DynamoDB, the app's table: chalicelib.aws.dynamodb.Table
    parameters()  SSM: chalicelib.aws.ssm.Parameters
    mail()        SES: chalicelib.aws.ses.Mail
    metrics()     CloudWatch: chalicelib.aws.cloudwatch.Metrics (reading the app's metrics)
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from .clients import client, forget

if TYPE_CHECKING:
    from .cloudwatch import Metrics
    from .dynamodb import Table
    from .s3 import Objects
    from .ses import Mail
    from .sns import Topics
    from .sqs import Queues
    from .ssm import Parameters

__all__ = ["client", "objects", "queues", "topics", "table", "parameters", "mail", "metrics", "account_id", "reset"]


@functools.cache
def objects() -> Objects:
    from .s3 import Objects

    return Objects(client("s3"))


@functools.cache
def queues() -> Queues:
    from .sqs import Queues

    return Queues(client("sqs"))


@functools.cache
def topics() -> Topics:
    from .sns import Topics

    return Topics(client("sns"), account_id)


@functools.cache
def table() -> Table:
    from ..settings import names
    from .dynamodb import Table

    return Table(client("dynamodb"), names().table)


@functools.cache
def parameters() -> Parameters:
    from .ssm import Parameters

    return Parameters(client("ssm"))


@functools.cache
def mail() -> Mail:
    from .ses import Mail

    return Mail(client("ses"))


@functools.cache
def metrics() -> Metrics:
    from .cloudwatch import Metrics

    return Metrics(client("cloudwatch"))


_invoked: dict[str, str] = {}  # what the ARN Lambda invoked this function by says
_FUNCTION_ARN = re.compile(r"arn:[\w-]+:lambda:[\w-]+:(\d{12}):function:[^:]+(?::[^:]+)?")


def learn_account(context: Any) -> None:
    """Note the account from the ARN Lambda invoked the function by (its context's
    invoked_function_arn, arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]), so that
    account_id() asks STS nothing: a client and a round trip fewer on a cold start. A context
    without one (a local run's) changes nothing."""
    arn = getattr(context, "invoked_function_arn", None)
    found = _FUNCTION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if found:
        _invoked["account"] = found.group(1)


@functools.cache
def account_id() -> str:
    """The caller's account: the invoking ARN's (learn_account), else STS's answer (STS gives it
    without any permission)."""
    return _invoked.get("account") or client("sts").get_caller_identity()["Account"]


def reset() -> None:
    """Forget every client and adapter (tests and tools that switch endpoints, credentials or names)."""
    forget()
    _invoked.clear()
    for made in (objects, queues, topics, table, parameters, mail, metrics, account_id):
        made.cache_clear()
