"""Every AWS operation the app calls, and what IAM checks for it.

The table is the one place that says which IAM actions an operation needs, and on what: the
policies (deploy/policies.py) are made from it, and the tests hold it to the code (every client call
in chalicelib/aws is in it: tests/test_permissions.py; every operation tests/test_sdk.py runs is in
it, and it holds nothing that test does not run) and to the policies (each function's policy allows
what the table says for each operation the function makes).

What AWS checks (the service authorization reference, and the services' guides):

- S3: GetObject is s3:GetObject on the object. A GetObject of a missing key is answered 404
  NoSuchKey only to a caller that may also s3:ListBucket the bucket; any other caller gets 403
  AccessDenied (S3 user guide). chalicelib.aws.s3.Objects.get takes NoSuchKey for a missing frame
  (a did-fail, never retried), so every GetObject the app makes needs both (MISSING_KEY). A presigned
  GET URL is a GetObject made by whoever follows it with the signer's permissions: s3:GetObject; its
  404 matters to no code. PutObject is s3:PutObject; DeleteObjects, s3:DeleteObject on each key;
  HeadBucket and ListObjectsV2, s3:ListBucket on the bucket (a listing's Prefix is its s3:prefix).
- DynamoDB: an operation is its own action on the table, but TransactWriteItems, which is no
  action: each item needs its own (Put: PutItem, Update: UpdateItem, Delete: DeleteItem,
  ConditionCheck: ConditionCheckItem; "Using IAM with DynamoDB transactions"). The reference lists
  no dependent action for BatchWriteItem (dynamodb:BatchWriteItem alone, on each table it writes);
  the table asks for each request's PutItem or DeleteItem beside it all the same, which costs no
  privilege here: every function that batch-writes also puts and deletes items one at a time.
- SQS: SendMessageBatch is sqs:SendMessage, DeleteMessageBatch sqs:DeleteMessage, on the queue.
- SNS: PublishBatch is sns:Publish on the topic.
- SES: SendEmail is ses:SendEmail on the sending identity.
- SSM: GetParameter is ssm:GetParameter on the parameter; a SecureString under the AWS managed key
  (aws/ssm) needs no KMS permission of the caller (its key policy lets SSM use it for the account).
- CloudWatch: ListMetrics and GetMetricData take no resource-level permission: "*".
- STS: GetCallerIdentity needs no permission (only local runs ask it: on Lambda the account is read
  off the invoking ARN).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

# Where an action applies: the object (bucket/key), the bucket, the table, the queue, the topic, the
# sending identity, the parameter; "*" for actions without resource-level permission; None for none.
OBJECT, BUCKET, TABLE, QUEUE, TOPIC, IDENTITY, PARAMETER, ANY = (
    "object",
    "bucket",
    "table",
    "queue",
    "topic",
    "identity",
    "parameter",
    "*",
)


class Operation(NamedTuple):
    actions: tuple[str, ...]  # IAM actions AWS checks, each on `on`
    on: str | None  # what they apply to (above)
    note: str = ""


# (service as botocore names it, operation) -> what IAM checks.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("s3", "GetObject"): Operation(
        ("s3:GetObject",), OBJECT, "and s3:ListBucket on the bucket to be told a missing key (MISSING_KEY)"
    ),
    ("s3", "PutObject"): Operation(("s3:PutObject",), OBJECT),
    ("s3", "DeleteObjects"): Operation(("s3:DeleteObject",), OBJECT, "each key deleted"),
    ("s3", "ListObjectsV2"): Operation(("s3:ListBucket",), BUCKET, "its Prefix is s3:prefix"),
    ("s3", "HeadBucket"): Operation(("s3:ListBucket",), BUCKET),
    ("dynamodb", "GetItem"): Operation(("dynamodb:GetItem",), TABLE),
    ("dynamodb", "Query"): Operation(("dynamodb:Query",), TABLE),
    ("dynamodb", "BatchGetItem"): Operation(("dynamodb:BatchGetItem",), TABLE),
    ("dynamodb", "DescribeTable"): Operation(("dynamodb:DescribeTable",), TABLE),
    ("dynamodb", "PutItem"): Operation(("dynamodb:PutItem",), TABLE),
    ("dynamodb", "UpdateItem"): Operation(("dynamodb:UpdateItem",), TABLE),
    ("dynamodb", "DeleteItem"): Operation(("dynamodb:DeleteItem",), TABLE),
    ("dynamodb", "BatchWriteItem"): Operation(
        ("dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
        TABLE,
        "BatchWriteItem; each request's PutItem or DeleteItem asked for beside it",
    ),
    ("dynamodb", "TransactWriteItems"): Operation(
        ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
        TABLE,
        "no action of its own: each item's (the app's transactions hold Put, Update and Delete items)",
    ),
    ("sqs", "GetQueueUrl"): Operation(("sqs:GetQueueUrl",), QUEUE),
    ("sqs", "GetQueueAttributes"): Operation(("sqs:GetQueueAttributes",), QUEUE),
    ("sqs", "SendMessage"): Operation(("sqs:SendMessage",), QUEUE),
    ("sqs", "SendMessageBatch"): Operation(("sqs:SendMessage",), QUEUE),
    ("sqs", "DeleteMessageBatch"): Operation(("sqs:DeleteMessage",), QUEUE),
    ("sns", "PublishBatch"): Operation(("sns:Publish",), TOPIC),
    ("ses", "SendEmail"): Operation(("ses:SendEmail",), IDENTITY),
    ("ssm", "GetParameter"): Operation(("ssm:GetParameter",), PARAMETER),
    ("cloudwatch", "ListMetrics"): Operation(("cloudwatch:ListMetrics",), ANY),
    ("cloudwatch", "GetMetricData"): Operation(("cloudwatch:GetMetricData",), ANY),
    ("sts", "GetCallerIdentity"): Operation((), None, "no permission needed; local runs only"),
}
# S3 tells a missing key (404 NoSuchKey, not 403 AccessDenied) only to a caller that may list the bucket.
MISSING_KEY = "s3:ListBucket"
# A transaction's item kinds, and the action each needs.
TRANSACT_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
BATCH_WRITES = {"PutRequest": "dynamodb:PutItem", "DeleteRequest": "dynamodb:DeleteItem"}


class Request(NamedTuple):
    """One authorisation IAM makes: an action on a resource, with the condition keys it carries."""

    action: str
    resource: str
    context: Mapping[str, str] = {}


def requests(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition: str = "aws",
    presigned: bool = False,
) -> list[Request]:
    """What IAM authorises for one call (its parameters as the app passed them to botocore): each
    action on each resource, with the condition keys the request carries. KeyError for an operation
    the table lacks."""
    entry = OPERATIONS[(service, operation)]
    return list(_requests(service, operation, entry, params, region, account, partition, presigned))


def _requests(
    service: str,
    operation: str,
    entry: Operation,
    params: Mapping[str, Any],
    region: str,
    account: str,
    partition: str,
    presigned: bool,
) -> Iterator[Request]:
    def regional(resource: str) -> str:
        return f"arn:{partition}:{service}:{region}:{account}:{resource}"

    if service == "s3":
        bucket = f"arn:{partition}:s3:::{params['Bucket']}"
        if operation == "DeleteObjects":
            for item in params["Delete"]["Objects"]:
                yield Request("s3:DeleteObject", f"{bucket}/{item['Key']}")
            return
        if entry.on == BUCKET:
            prefix = params.get("Prefix")
            yield Request(entry.actions[0], bucket, {"s3:prefix": prefix} if prefix is not None else {})
            return
        yield Request(entry.actions[0], f"{bucket}/{params['Key']}")
        if operation == "GetObject" and not presigned:
            yield Request(MISSING_KEY, bucket)  # the 404 check: a GetObject carries no s3:prefix
        return
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                for kind, body in item.items():
                    yield Request(TRANSACT_ITEMS[kind], regional(f"table/{body['TableName']}"))
            return
        if operation in ("BatchGetItem", "BatchWriteItem"):
            for table, items in params["RequestItems"].items():
                yield Request(f"dynamodb:{operation}", regional(f"table/{table}"))
                for item in items if operation == "BatchWriteItem" else []:
                    for kind in item:
                        yield Request(BATCH_WRITES[kind], regional(f"table/{table}"))
            return
        for action in entry.actions:
            yield Request(action, regional(f"table/{params['TableName']}"))
        return
    if service == "sqs":
        owner, name = params.get("QueueOwnerAWSAccountId", account), params.get("QueueName", "")
        if "QueueUrl" in params:  # .../ACCOUNT/NAME
            *_, owner, name = params["QueueUrl"].rstrip("/").split("/")
        arn = f"arn:{partition}:sqs:{region}:{owner}:{name}"
        for action in entry.actions:
            yield Request(action, arn)
        return
    if service == "sns":
        yield Request(entry.actions[0], params["TopicArn"])
        return
    if service == "ses":
        sender = params["Source"].rsplit("<", 1)[-1].rstrip(">").strip()
        yield Request(entry.actions[0], regional(f"identity/{sender}"))
        return
    if service == "ssm":
        name = params["Name"]
        yield Request(entry.actions[0], regional(f"parameter{name if name.startswith('/') else '/' + name}"))
        return
    for action in entry.actions:
        yield Request(action, "*")
