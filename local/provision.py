"""Provision the emulated AWS from resources/template.yaml, the template AWS deploys.

The template goes to the emulator's CloudFormation, so local and AWS cannot drift;
its outputs name the resources, as on AWS. What an emulator leaves out (moto's
CloudFormation does not switch on a table's TTL) is done here, harmlessly twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from chalicelib.aws import client

TEMPLATE = Path(__file__).resolve().parent.parent / "resources" / "template.yaml"

# Stack output -> the environment variable the app reads it from.
OUTPUT_ENVIRONMENT = {
    "FramesBucket": "FRAMES_BUCKET",
    "ThumbnailsBucket": "THUMBNAILS_BUCKET",
    "GifsBucket": "GIFS_BUCKET",
    "UploadsBucket": "UPLOADS_BUCKET",
    "TableName": "TABLE_NAME",
    "MediatorQueue": "MEDIATOR_QUEUE",
    "FetchTopic": "FETCH_TOPIC",
    "ThumbnailTopic": "THUMBNAIL_TOPIC",
    "GifTopic": "GIF_TOPIC",
    "EmailTopic": "EMAIL_TOPIC",
}


def provision(
    stage: str | None = None,
    sender: str | None = None,
    visibility_timeout: int | None = None,
    max_receives: int | None = None,
) -> dict[str, str]:
    """Create (or update) the stack; returns its outputs and puts them in os.environ."""
    stage = stage or os.environ.get("STAGE", "dev")
    parameters = {"Stage": stage}
    if visibility_timeout is not None:
        parameters["MediatorVisibilityTimeout"] = str(visibility_timeout)
    if max_receives is not None:
        parameters["MaxReceives"] = str(max_receives)
    outputs = deploy(f"weathergif-{stage}", parameters)
    os.environ.update(environment(outputs))
    client("dynamodb").update_time_to_live(
        TableName=outputs["TableName"], TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    if sender:
        client("ses").verify_email_identity(EmailAddress=sender)
    return outputs


def deploy(stack: str, parameters: dict[str, str], timeout: float = 120) -> dict[str, str]:
    cloudformation = client("cloudformation")
    arguments: dict[str, Any] = {
        "StackName": stack,
        "TemplateBody": TEMPLATE.read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    }
    try:
        cloudformation.describe_stacks(StackName=stack)
        exists = True
    except cloudformation.exceptions.ClientError:
        exists = False
    if exists:
        try:
            cloudformation.update_stack(**arguments)
        except cloudformation.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    else:
        cloudformation.create_stack(**arguments)
    deadline = time.time() + timeout
    while True:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        status = described["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if status.endswith("_FAILED") or "ROLLBACK" in status or time.time() > deadline:
            raise RuntimeError(f"stack {stack} ended {status}: {described.get('StackStatusReason', '')}")
        time.sleep(0.5)


def environment(outputs: dict[str, str]) -> dict[str, str]:
    """The app's environment variables for a stack's outputs."""
    return {variable: outputs[output] for output, variable in OUTPUT_ENVIRONMENT.items() if output in outputs}
