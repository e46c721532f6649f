"""After `chalice deploy`: what Chalice has no setting for.

- The mediator's SQS event source reports batch item failures. The mediator does not rely on
  it (when records fail, it deletes the done ones and raises: chalicelib/batch.py), so this
  only keeps the mapping's behaviour the documented one should a handler answer with
  {"batchItemFailures": [...]}.
- The asynchronously invoked workers (SNS topics, the S3 upload) retry twice, then
  leave the event in the worker failure queue instead of dropping it.

Both are idempotent: running them again changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.aws import client
from chalicelib.aws.clients import error_code

from .policies import WORKERS, function_name

WORKER_RETRIES = 2


class NotDeployed(RuntimeError):
    """What post-deploy configures is not there: `chalice deploy` has not run (or failed)."""


def _when_settled(call: Any, seconds: float = 120, every: float = 3) -> Any:
    """`call`, again while Lambda says the resource is still being made or changed (a mapping
    that `chalice deploy` just created is CREATING for a while: ResourceInUseException)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException" or time.monotonic() > deadline:
                raise
            time.sleep(every)


def post_deploy(stage: str, outputs: dict[str, str]) -> list[str]:
    """Apply the settings; returns what was done, a line each."""
    lam, done = client("lambda"), []
    mediator = function_name(stage, "mediate")
    queue = outputs["MediatorQueueArn"]
    # Found by the queue's ARN: a function name does not find a mapping made with the function's ARN.
    mappings = [
        m
        for m in lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"]
        if m["FunctionArn"].split(":")[6] == mediator
    ]
    if not mappings:
        raise NotDeployed(f"no event source mapping from {queue} to {mediator}: run `chalice deploy --stage {stage}`")
    for mapping in mappings:
        if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
            _when_settled(
                lambda m=mapping: lam.update_event_source_mapping(
                    UUID=m["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"]
                )
            )
        done.append(f"{mediator}: the SQS event source {mapping['UUID']} reports batch item failures")
    for name in WORKERS:
        function = function_name(stage, name)
        settings: dict[str, Any] = {
            "FunctionName": function,
            "MaximumRetryAttempts": WORKER_RETRIES,
            "DestinationConfig": {"OnFailure": {"Destination": outputs["WorkerFailureQueueArn"]}},
        }
        try:
            _when_settled(lambda settings=settings: lam.put_function_event_invoke_config(**settings))
        except lam.exceptions.ResourceNotFoundException:
            raise NotDeployed(f"no function {function}: run `chalice deploy --stage {stage}`") from None
        done.append(f"{function}: {WORKER_RETRIES} retries, then the worker failure queue")
    return done
