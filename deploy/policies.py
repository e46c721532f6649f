"""Least-privilege IAM policies, one per Lambda function, from a stage's resource names.

Each function declares what its code calls (`uses`: AWS operations, on the stage's resources) and
what Lambda does with its role (`platform`: its logs and traces, polling its queue, its on-failure
destination); the statements come from deploy/operations.py's table, which says what IAM checks for
each operation. Where the code takes a missing S3 object for good (a did-fail, never retried), the
function may list the bucket: S3 answers a missing key 404 NoSuchKey only to a caller allowed
s3:ListBucket, and 403 AccessDenied to any other (see `_statements`).

The names are the stage's environment variables in `.chalice/config.json`, the same
ones the functions read (chalicelib/settings.py says which variable names which
resource), so a policy names exactly what its function touches. Each
worker reads and writes only its own bucket prefixes and sends only to the mediator's
queue; the mediator reads and writes the table and publishes to the worker topics.

The policies hold no account id and no region: a regional resource's ARN has `*` in
those two places. An identity policy grants nothing in another account by itself (that
account's resource policy would have to let the role in), so this names the same
resources as the account-specific ARN would, and the files can be committed: `chalice
deploy` on a fresh clone finds them (`.chalice/policy-{stage}-{function}.json`), and a
test keeps them equal to what this module generates.

The wildcards needed are the only ones (NEEDED_WILDCARDS): X-Ray's trace actions and CloudWatch's
metric reads take no resource, and SES authorises a send against the sender's identity, which
each animation configures (so the emailer may send as any verified identity of the account).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.settings import API_TOKEN_PARAMETER, APP, MAP_KEYS_PARAMETER, RESOURCES, Resource
from chalicelib.sources import SOURCES_VARIABLE, key_parameter

from .operations import ANY, BUCKET, MISSING_KEY, OBJECT, OPERATIONS

R = RESOURCES
WORKERS = ("fetch_amp_image", "create_thumbnail", "create_gif", "send_email", "thumbnail_upload")
FUNCTIONS = (
    *WORKERS,
    "mediate",
    "tick",
    "keep_dead_letters",
    "keep_dead_slices",
    "worker_failed",
    "fetch_due_frames",
    "rebuild_gifs",
    "api_handler",
    "token",
)
WORKER_TOPICS = (R.fetch_topic, R.thumbnail_topic, R.gif_topic, R.email_topic)
# Wildcard resources a function needs, and why; the policy test allows these and no others.
NEEDED_WILDCARDS = {
    ("xray:PutTraceSegments", "*"): "X-Ray trace actions support no resource-level permission",
    ("xray:PutTelemetryRecords", "*"): "X-Ray trace actions support no resource-level permission",
    ("cloudwatch:GetMetricData", "*"): "CloudWatch's metric reads support no resource-level permission",
    ("cloudwatch:ListMetrics", "*"): "CloudWatch's metric reads support no resource-level permission",
}


def function_name(stage: str, function: str) -> str:
    """The Lambda function Chalice deploys for `function` (the REST API's is named after the app)."""
    return f"{APP}-{stage}" if function == "api_handler" else f"{APP}-{stage}-{function}"


class Stage(NamedTuple):
    """What a stage's policies name: its environment variables (resource names)."""

    name: str
    env: Mapping[str, str]
    partition: str = "aws"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], name: str, partition: str = "aws") -> Stage:
        return cls(name, config["stages"][name]["environment_variables"], partition)

    def name_of(self, resource: Resource) -> str:
        """A resource's name in this stage: its variable's recorded value."""
        return self.env[resource.variable]

    def s3(self, bucket: Resource, prefix: str = "") -> str:
        return f"arn:{self.partition}:s3:::{self.name_of(bucket)}/{prefix}*"

    def bucket(self, bucket: Resource) -> str:
        return f"arn:{self.partition}:s3:::{self.name_of(bucket)}"

    def arn(self, service: str, resource: str) -> str:
        """A regional resource of this account, in whichever region the stage runs."""
        return f"arn:{self.partition}:{service}:*:*:{resource}"

    @property
    def table(self) -> str:
        return self.arn("dynamodb", f"table/{self.name_of(R.table)}")

    @property
    def mediator_queue(self) -> str:
        return self.arn("sqs", self.name_of(R.mediator_queue))

    @property
    def tick_queue(self) -> str:
        return self.arn("sqs", self.name_of(R.tick_queue))

    @property
    def dead_letter_queue(self) -> str:
        return self.arn("sqs", self.name_of(R.dead_letter_queue))

    @property
    def tick_dead_letter_queue(self) -> str:
        return self.arn("sqs", self.name_of(R.tick_dead_letter_queue))

    @property
    def worker_failure_queue(self) -> str:
        return self.arn("sqs", self.name_of(R.worker_failure_queue))

    def topic(self, topic: Resource) -> str:
        return self.arn("sns", self.name_of(topic))

    def map_keys(self) -> tuple[str, ...]:
        """The SSM parameters the map sources' keys may be in: the one source's of old (MAP_KEYS_PARAMETER),
        a configured source's by default (chalicelib.sources.key_parameter), and each keysParameter the
        stage's MAP_SOURCES names."""
        named = json.loads(self.env.get(SOURCES_VARIABLE) or "{}").get("sources", {})
        given = sorted({c["keysParameter"] for c in named.values() if isinstance(c, dict) and c.get("keysParameter")})
        default = self.arn("ssm", f"parameter{key_parameter('*', self.name)}")
        return (self.parameter(MAP_KEYS_PARAMETER), default, *(self.arn("ssm", f"parameter{p}") for p in given))

    def parameter(self, variable: str) -> str:
        """The SSM parameter the stage's `variable` names."""
        return self.arn("ssm", f"parameter{self.env[variable]}")


class Use(NamedTuple):
    """AWS operations a function's code calls ("s3.GetObject": service and operation, as in
    deploy/operations.py's table), on resources: ARNs, or for S3 the buckets' ARNs (objects are
    `{bucket}/{keys}`, and a listing is of a prefix `keys` matches)."""

    operations: tuple[str, ...]
    resources: tuple[str, ...]
    keys: str = "*"  # S3: the keys it works on, an IAM pattern ("uploads/*", "*/basemap-*")
    presigned: bool = False  # S3 GetObject only in URLs signed for others to follow: no missing-key check


# A function's own table operations. The mediator's store reads and writes it all ways (its decisions are
# transactions of Put, Update and Delete items; the event log is batch-written; ticks read states in
# batches); the emailer's idempotency records (Powertools) are got, put, updated and deleted.
STORE = tuple(
    f"dynamodb.{name}"
    for name in ("GetItem", "Query", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
) + ("dynamodb.BatchWriteItem",)
IDEMPOTENCY = ("dynamodb.GetItem", "dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem")
# What an invocation used, owed in the container and written once a minute (chalicelib/mediator/metering.py).
USAGE = ("dynamodb.UpdateItem",)
# Lambda's SQS event source polls with the function's role (AWSLambdaSQSQueueExecutionRole's actions).
POLL = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
CONSUMES = {"mediate": R.mediator_queue, "tick": R.tick_queue, "keep_dead_letters": R.dead_letter_queue}
CONSUMES.update(keep_dead_slices=R.tick_dead_letter_queue, worker_failed=R.worker_failure_queue)


def uses(stage: Stage) -> dict[str, list[Use]]:
    """Each function's AWS operations, on the stage's resources."""
    table = (stage.table,)
    frames, thumbnails, gifs, uploads = (
        stage.bucket(bucket) for bucket in (R.frames_bucket, R.thumbnails_bucket, R.gifs_bucket, R.uploads_bucket)
    )
    topics = tuple(stage.topic(t) for t in WORKER_TOPICS)
    reply = Use(("sqs.GetQueueUrl", "sqs.SendMessage"), (stage.mediator_queue,))
    hand_on = Use(("sqs.GetQueueUrl", "sqs.SendMessageBatch"), (stage.tick_queue,))  # a tick's slices

    def done(queue: str) -> Use:  # a batch's records that succeeded, deleted when others failed (chalicelib/batch.py)
        return Use(("sqs.GetQueueUrl", "sqs.DeleteMessageBatch"), (queue,))

    return {
        "fetch_amp_image": [
            Use(("s3.PutObject",), (frames,)),
            Use(("s3.GetObject",), (frames,), keys="*/basemap-*"),  # a view's basemap, kept beside its frames
            Use(("ssm.GetParameter",), stage.map_keys()),
            reply,
        ],
        "create_thumbnail": [Use(("s3.GetObject",), (frames,)), Use(("s3.PutObject",), (thumbnails,)), reply],
        "thumbnail_upload": [
            Use(("s3.GetObject",), (uploads,)),
            Use(("s3.PutObject",), (thumbnails,), keys="uploads/*"),
            reply,
        ],
        "create_gif": [Use(("s3.GetObject",), (frames,)), Use(("s3.PutObject",), (gifs,)), reply],
        "send_email": [Use(("ses.SendEmail",), (stage.arn("ses", "identity/*"),)), Use(IDEMPOTENCY, table), reply],
        "mediate": [
            Use(STORE, table),
            done(stage.mediator_queue),
            Use(("sns.PublishBatch",), topics),
            Use(("s3.GetObject",), (gifs, thumbnails), presigned=True),  # links in emails, without PUBLIC_URL
        ],
        "keep_dead_letters": [
            Use(("dynamodb.PutItem", "dynamodb.Query", *USAGE), table),
            done(stage.dead_letter_queue),
        ],
        "keep_dead_slices": [
            Use(("dynamodb.PutItem", "dynamodb.Query", *USAGE), table),
            done(stage.tick_dead_letter_queue),
        ],
        "worker_failed": [done(stage.worker_failure_queue), reply],
        "tick": [
            Use(STORE, table),
            done(stage.tick_queue),
            hand_on,
            Use(("sns.PublishBatch",), (stage.topic(R.fetch_topic), stage.topic(R.gif_topic))),
        ],
        # the directory's shards; and the status view's heartbeat, a write each run (chalicelib.mediator.store.status)
        "fetch_due_frames": [hand_on, Use(("dynamodb.Query", "dynamodb.PutItem", *USAGE), table)],
        "rebuild_gifs": [hand_on, Use(("dynamodb.Query", *USAGE), table)],
        "api_handler": [
            Use((*STORE, "dynamodb.DescribeTable"), table),
            Use(("s3.GetObject",), (frames, thumbnails, gifs), presigned=True),  # the image links' redirects
            Use(("s3.ListObjectsV2", "s3.DeleteObjects"), (frames, thumbnails, gifs)),  # an animation's images removed
            Use(("s3.HeadBucket",), (frames, thumbnails, gifs, uploads)),  # the health route
            Use(("sqs.GetQueueUrl", "sqs.GetQueueAttributes", "sqs.SendMessage"), (stage.mediator_queue,)),  # redrives
            hand_on,  # a dead tick slice, redriven
            Use(  # the status view's queue depths
                ("sqs.GetQueueUrl", "sqs.GetQueueAttributes"),
                (stage.tick_queue, stage.dead_letter_queue, stage.tick_dead_letter_queue, stage.worker_failure_queue),
            ),
            Use(("cloudwatch.ListMetrics", "cloudwatch.GetMetricData"), ("*",)),  # GET /metrics
            Use(("sns.PublishBatch",), topics),  # fetch and GIF now; redrives
            Use(("sts.GetCallerIdentity",), ()),  # the account in topic ARNs: its routes see no invoking ARN
            # the public reads that show more to the token's holder (email settings) check it too
            Use(("ssm.GetParameter",), (stage.parameter(API_TOKEN_PARAMETER),)),
        ],
        "token": [Use(("ssm.GetParameter",), (stage.parameter(API_TOKEN_PARAMETER),))],
    }


def platform(stage: Stage, function: str) -> list[dict[str, Any]]:
    """What Lambda does with the function's role: its log stream (the log group is the template's), its
    X-Ray traces, polling its queue (an SQS-triggered function), sending a failed asynchronous
    invocation's record to the worker failure queue (post-deploy's on-failure destination)."""
    log_group = stage.arn("logs", f"log-group:/aws/lambda/{function_name(stage.name, function)}")
    out = [
        _allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group}:*"),
        _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
    ]
    if function in CONSUMES:
        out.append(_allow(list(POLL), stage.arn("sqs", stage.name_of(CONSUMES[function]))))
    if function in WORKERS:
        out.append(_allow(["sqs:SendMessage"], stage.worker_failure_queue))
    return out


def policies(stage: Stage) -> dict[str, dict[str, Any]]:
    """{function name: IAM policy document}."""
    return {
        name: {
            "Version": "2012-10-17",
            "Statement": [*platform(stage, name), *(s for use in used for s in _statements(use))],
        }
        for name, used in uses(stage).items()
    }


def _statements(use: Use) -> list[dict[str, Any]]:
    """The statements of one use: the table's actions for its operations, on its objects, buckets or
    other resources; and where a GetObject must tell a missing key, s3:ListBucket on the buckets.

    That ListBucket is scoped to the read's keys with `StringLikeIfExists` on `s3:prefix`: a listing
    carries the key s3:prefix (the Prefix it asks for) and must match, while the check S3 makes on a
    GetObject of a missing key carries none, and `...IfExists` lets a request without the key through
    (a plain StringLike would fail it, and the read would answer 403 again). The price: a listing that
    asks for no prefix carries no s3:prefix either, and lists the whole bucket (key names, not data).
    """
    actions: dict[str, set[str]] = {}
    for operation in use.operations:
        service, name = operation.split(".", 1)
        entry = OPERATIONS[(service, name)]
        if entry.on is not None:
            actions.setdefault(entry.on, set()).update(entry.actions)
    out = []
    for on, named in actions.items():
        if on == OBJECT:
            resources = [f"{bucket}/{use.keys}" for bucket in use.resources]
        elif on == ANY:
            resources = ["*"]
        else:
            resources = list(use.resources)
        condition = {"StringLike": {"s3:prefix": [use.keys]}} if on == BUCKET and use.keys != "*" else None
        out.append(_allow(sorted(named), resources, condition))
    lists = BUCKET in actions and use.keys == "*"
    if "s3.GetObject" in use.operations and not use.presigned and not lists:
        out.append(_allow([MISSING_KEY], list(use.resources), {"StringLikeIfExists": {"s3:prefix": [use.keys]}}))
    return out


def _allow(actions: list[str], resources: str | list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(resources, list) and len(resources) == 1:
        resources = resources[0]
    statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement
