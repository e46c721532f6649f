"""The resources stack: resources/template.yaml through CloudFormation, on AWS or an emulator."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from chalicelib.aws import client

TEMPLATE = Path(__file__).resolve().parent.parent / "resources" / "template.yaml"
# The address the stage's alarms are mailed to: the template's AlarmEmail, from ALARM_EMAIL when it
# is set (`make deploy STAGE=dev ALARM_EMAIL=ops@example.com`; empty: none). An update that does not
# set it keeps the stack's, so a deploy does not unsubscribe it.
ALARM_EMAIL_VARIABLE = "ALARM_EMAIL"
KEPT_PARAMETERS = ("AlarmEmail",)


def stack_name(stage: str) -> str:
    return f"weathergif-{stage}"


def deploy_stack(stack: str, parameters: dict[str, str], timeout: float = 120) -> dict[str, str]:
    """Create or update the stack and wait for it; returns its outputs."""
    cloudformation = client("cloudformation")
    parameters = dict(parameters)
    if ALARM_EMAIL_VARIABLE in os.environ:
        parameters.setdefault("AlarmEmail", os.environ[ALARM_EMAIL_VARIABLE].strip())
    existing = _described(stack)
    listed: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
    listed += [
        {"ParameterKey": k, "UsePreviousValue": True} for k in KEPT_PARAMETERS if k in previous - set(parameters)
    ]
    arguments: dict[str, Any] = {"StackName": stack, "TemplateBody": TEMPLATE.read_text(), "Parameters": listed}
    if existing is not None:
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


def outputs(stack: str) -> dict[str, str] | None:
    """The stack's outputs, or None when there is no such stack."""
    described = _described(stack)
    if described is None:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _described(stack: str) -> dict[str, Any] | None:
    cloudformation = client("cloudformation")
    try:
        [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return None if described["StackStatus"] == "DELETE_COMPLETE" else described


def delete_stack(stack: str, timeout: float = 900) -> None:
    """Empty the stack's buckets (CloudFormation cannot delete full ones), then delete it."""
    found = outputs(stack)
    if found is None:
        return
    s3 = client("s3")
    for key in ("FramesBucket", "ThumbnailsBucket", "GifsBucket", "UploadsBucket"):
        if key not in found:
            continue
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=found[key]):
            objects = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                s3.delete_objects(Bucket=found[key], Delete={"Objects": objects, "Quiet": True})
    cloudformation = client("cloudformation")
    cloudformation.delete_stack(StackName=stack)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": int(timeout / 2)}
    )
