"""Least-privilege IAM policies, one per Lambda function, from a stage's resource names.

Each worker reads and writes only its own bucket prefixes and sends only to the
mediator's queue; the mediator reads and writes the table and publishes to the worker
topics. Two wildcards are needed and are the only ones: X-Ray's trace actions take no
resource, and SES authorises a send against the sender's identity, which each
animation configures (so the emailer may send as any verified identity of the account).
"""

from __future__ import annotations

from typing import Any, NamedTuple

WORKERS = ("fetch_amp_image", "create_thumbnail", "create_gif", "send_email", "thumbnail_upload")
FUNCTIONS = (*WORKERS, "mediate", "fetch_due_frames", "rebuild_gifs", "api_handler", "token")
TABLE_READ_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                    "dynamodb:Query", "dynamodb:ConditionCheckItem"]
# Wildcard resources a function needs, and why; the policy test allows these and no others.
NEEDED_WILDCARDS = {
    ("xray:PutTraceSegments", "*"): "X-Ray trace actions support no resource-level permission",
    ("xray:PutTelemetryRecords", "*"): "X-Ray trace actions support no resource-level permission",
}


class Stage(NamedTuple):
    """What a stage's policies name: from its stack's outputs, account and region."""

    name: str
    account: str
    region: str
    outputs: dict[str, str]
    partition: str = "aws"

    def s3(self, bucket_output: str, prefix: str = "") -> str:
        return f"arn:{self.partition}:s3:::{self.outputs[bucket_output]}/{prefix}*"

    def bucket(self, bucket_output: str) -> str:
        return f"arn:{self.partition}:s3:::{self.outputs[bucket_output]}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    @property
    def table(self) -> str:
        return self.arn("dynamodb", f"table/{self.outputs['TableName']}")

    @property
    def mediator_queue(self) -> str:
        return self.arn("sqs", self.outputs["MediatorQueue"])

    @property
    def dead_letter_queue(self) -> str:
        return self.arn("sqs", self.outputs["MediatorDeadLetterQueue"])

    def topic(self, output: str) -> str:
        return self.arn("sns", self.outputs[output])


def map_keys_parameter(stage: str) -> str:
    """The SSM SecureString holding the map source's "client_id:client_secret"."""
    return f"/weathergif/{stage}/map-keys"


def api_token_parameter(stage: str) -> str:
    """The SSM SecureString holding the REST API's token."""
    return f"/weathergif/{stage}/api-token"


def policies(stage: Stage) -> dict[str, dict[str, Any]]:
    """{function name: IAM policy document}."""
    reply = _allow(["sqs:SendMessage", "sqs:GetQueueUrl"], stage.mediator_queue)
    on_failure = _allow(["sqs:SendMessage"], stage.outputs["WorkerFailureQueueArn"])
    table = _allow(TABLE_READ_WRITE, stage.table)
    statements: dict[str, list[dict[str, Any]]] = {
        "fetch_amp_image": [
            _allow(["s3:PutObject"], stage.s3("FramesBucket")),
            _allow(["ssm:GetParameter"], stage.arn("ssm", f"parameter{map_keys_parameter(stage.name)}")),
            reply, on_failure,
        ],
        "create_thumbnail": [
            _allow(["s3:GetObject"], stage.s3("FramesBucket")),
            _allow(["s3:PutObject"], stage.s3("ThumbnailsBucket")),
            reply, on_failure,
        ],
        "thumbnail_upload": [
            _allow(["s3:GetObject"], stage.s3("UploadsBucket")),
            _allow(["s3:PutObject"], stage.s3("ThumbnailsBucket", "uploads/")),
            reply, on_failure,
        ],
        "create_gif": [
            _allow(["s3:GetObject"], stage.s3("FramesBucket")),
            _allow(["s3:PutObject"], stage.s3("GifsBucket")),
            reply, on_failure,
        ],
        "send_email": [
            _allow(["ses:SendEmail"], stage.arn("ses", "identity/*")),
            _allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], stage.table),
            reply, on_failure,
        ],
        "mediate": [
            table,
            _allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                   stage.mediator_queue),
            _allow(["sns:Publish"], [stage.topic(t) for t in ("FetchTopic", "ThumbnailTopic", "GifTopic", "EmailTopic")]),
            _allow(["s3:GetObject"], [stage.s3("GifsBucket"), stage.s3("ThumbnailsBucket")]),  # presigned links
        ],
        "fetch_due_frames": [
            table,
            _allow(["sns:Publish"], [stage.topic(t) for t in ("FetchTopic", "ThumbnailTopic", "GifTopic", "EmailTopic")]),
        ],
        "rebuild_gifs": [table, _allow(["sns:Publish"], stage.topic("GifTopic"))],
        "api_handler": [
            _allow([*TABLE_READ_WRITE, "dynamodb:BatchWriteItem", "dynamodb:DescribeTable"], stage.table),
            _allow(["s3:GetObject", "s3:DeleteObject"],
                   [stage.s3("FramesBucket"), stage.s3("ThumbnailsBucket"), stage.s3("GifsBucket")]),
            _allow(["s3:ListBucket"], [stage.bucket(b) for b in ("FramesBucket", "ThumbnailsBucket", "GifsBucket", "UploadsBucket")]),
            _allow(["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"], stage.mediator_queue),
            _allow(["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"], stage.dead_letter_queue),
            _allow(["sns:Publish"], [stage.topic("FetchTopic"), stage.topic("GifTopic")]),
        ],
        "token": [_allow(["ssm:GetParameter"], stage.arn("ssm", f"parameter{api_token_parameter(stage.name)}"))],
    }
    return {name: _document(stage, name, rules) for name, rules in statements.items()}


def _document(stage: Stage, function: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    log_group = stage.arn("logs", f"log-group:/aws/lambda/weathergif-{stage.name}-{function}")
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
