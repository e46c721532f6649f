"""Least-privilege IAM policies, one per Lambda function, from a stage's resource names.

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

Two wildcards are needed and are the only ones: X-Ray's trace actions take no resource,
and SES authorises a send against the sender's identity, which each animation
configures (so the emailer may send as any verified identity of the account).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.settings import API_TOKEN_PARAMETER, APP, MAP_KEYS_PARAMETER, RESOURCES, Resource

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
TABLE_READ_WRITE = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
]
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

    def parameter(self, variable: str) -> str:
        """The SSM parameter the stage's `variable` names."""
        return self.arn("ssm", f"parameter{self.env[variable]}")


def policies(stage: Stage) -> dict[str, dict[str, Any]]:
    """{function name: IAM policy document}."""
    reply = _allow(["sqs:SendMessage", "sqs:GetQueueUrl"], stage.mediator_queue)
    on_failure = _allow(["sqs:SendMessage"], stage.worker_failure_queue)
    table = _allow([*TABLE_READ_WRITE, "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"], stage.table)
    hand_on = _allow(["sqs:SendMessage", "sqs:GetQueueUrl"], stage.tick_queue)  # a tick's slices
    # the directory's shards (a tick reads them) and what the invocation used (its cost)
    schedule = _allow(["dynamodb:Query", "dynamodb:UpdateItem"], stage.table)
    consume = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
    ]
    statements: dict[str, list[dict[str, Any]]] = {
        "fetch_amp_image": [
            _allow(["s3:PutObject"], stage.s3(R.frames_bucket)),
            _allow(["ssm:GetParameter"], stage.parameter(MAP_KEYS_PARAMETER)),
            reply,
            on_failure,
        ],
        "create_thumbnail": [
            _allow(["s3:GetObject"], stage.s3(R.frames_bucket)),
            _allow(["s3:PutObject"], stage.s3(R.thumbnails_bucket)),
            reply,
            on_failure,
        ],
        "thumbnail_upload": [
            _allow(["s3:GetObject"], stage.s3(R.uploads_bucket)),
            _allow(["s3:PutObject"], stage.s3(R.thumbnails_bucket, "uploads/")),
            reply,
            on_failure,
        ],
        "create_gif": [
            _allow(["s3:GetObject"], stage.s3(R.frames_bucket)),
            _allow(["s3:PutObject"], stage.s3(R.gifs_bucket)),
            reply,
            on_failure,
        ],
        "send_email": [
            _allow(["ses:SendEmail"], stage.arn("ses", "identity/*")),
            _allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], stage.table),
            reply,
            on_failure,
        ],
        "mediate": [
            table,
            _allow(consume, stage.mediator_queue),
            _allow(["sns:Publish"], [stage.topic(t) for t in WORKER_TOPICS]),
            _allow(["s3:GetObject"], [stage.s3(R.gifs_bucket), stage.s3(R.thumbnails_bucket)]),  # presigned links
        ],
        "keep_dead_letters": [
            _allow(consume, stage.dead_letter_queue),
            _allow(["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"], stage.table),  # + its usage
        ],
        "keep_dead_slices": [
            _allow(consume, stage.tick_dead_letter_queue),
            _allow(["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"], stage.table),  # + its usage
        ],
        "worker_failed": [_allow(consume, stage.worker_failure_queue), reply],
        "tick": [
            table,
            _allow(consume, stage.tick_queue),
            hand_on,
            _allow(["sns:Publish"], [stage.topic(R.fetch_topic), stage.topic(R.gif_topic)]),
        ],
        "fetch_due_frames": [hand_on, schedule],
        "rebuild_gifs": [hand_on, schedule],
        "api_handler": [
            _allow(
                [*TABLE_READ_WRITE, "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DescribeTable"],
                stage.table,
            ),
            _allow(
                ["s3:GetObject", "s3:DeleteObject"],
                [stage.s3(R.frames_bucket), stage.s3(R.thumbnails_bucket), stage.s3(R.gifs_bucket)],
            ),
            _allow(
                ["s3:ListBucket"],
                [stage.bucket(b) for b in (R.frames_bucket, R.thumbnails_bucket, R.gifs_bucket, R.uploads_bucket)],
            ),
            _allow(["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"], stage.mediator_queue),
            hand_on,  # a dead tick slice, redriven
            _allow(  # the status view's queue depths
                ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                [stage.tick_queue, stage.dead_letter_queue, stage.tick_dead_letter_queue, stage.worker_failure_queue],
            ),
            _allow(["cloudwatch:ListMetrics", "cloudwatch:GetMetricData"], "*"),  # GET /metrics
            _allow(["sns:Publish"], [stage.topic(t) for t in WORKER_TOPICS]),  # fetch and GIF now; redrives
            # the public reads that show more to the token's holder (email settings) check it too
            _allow(["ssm:GetParameter"], stage.parameter(API_TOKEN_PARAMETER)),
        ],
        "token": [_allow(["ssm:GetParameter"], stage.parameter(API_TOKEN_PARAMETER))],
    }
    return {name: _document(stage, name, rules) for name, rules in statements.items()}


def _document(stage: Stage, function: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    log_group = stage.arn("logs", f"log-group:/aws/lambda/{function_name(stage.name, function)}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            _allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group}:*"),  # the group: the template
            _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
            *rules,
        ],
    }


def _allow(actions: list[str], resources: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
