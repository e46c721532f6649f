"""Provision the emulated AWS from resources/template.yaml, the template AWS deploys.

The template goes to the emulator's CloudFormation, so local and AWS cannot drift;
its outputs name the resources, as on AWS. What an emulator leaves out (moto's
CloudFormation does not switch on a table's TTL) is done here, harmlessly twice.
"""

from __future__ import annotations

import os

from chalicelib.settings import STAGE_VARIABLE
from chalicelib.aws import client
from deploy.record import environment
from deploy.stack import deploy_stack, stack_name


def provision(
    stage: str | None = None,
    sender: str | None = None,
    visibility_timeout: int | None = None,
    max_receives: int | None = None,
) -> dict[str, str]:
    """Create (or update) the stack; returns its outputs and puts them in os.environ."""
    stage = stage or os.environ.get(STAGE_VARIABLE, "dev")
    parameters = {"Stage": stage}
    if visibility_timeout is not None:
        parameters["MediatorVisibilityTimeout"] = str(visibility_timeout)
    if max_receives is not None:
        parameters["MaxReceives"] = str(max_receives)
    outputs = deploy_stack(stack_name(stage), parameters)
    os.environ.update(environment(outputs))
    client("dynamodb").update_time_to_live(
        TableName=outputs["TableName"], TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    if sender:
        client("ses").verify_email_identity(EmailAddress=sender)
    return outputs
