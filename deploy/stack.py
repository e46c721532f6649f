"""The resources stack: resources/template.yaml through CloudFormation, on AWS or an emulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chalicelib.aws import client

TEMPLATE = Path(__file__).resolve().parent.parent / "resources" / "template.yaml"


def stack_name(stage: str) -> str:
    return f"weathergif-{stage}"


def deploy_stack(stack: str, parameters: dict[str, str], timeout: float = 120) -> dict[str, str]:
    """Create or update the stack and wait for it; returns its outputs."""
    cloudformation = client("cloudformation")
    arguments: dict[str, Any] = {
        "StackName": stack,
        "TemplateBody": TEMPLATE.read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    }
    if outputs(stack) is not None:
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
    cloudformation = client("cloudformation")
    try:
        [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if described["StackStatus"] == "DELETE_COMPLETE":
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


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
