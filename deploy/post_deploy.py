"""After `chalice deploy`: what Chalice has no setting for.

- The mediator's SQS event source reports batch item failures, so the handler's
  {"batchItemFailures": [...]} retries only the records that failed. (The mediator loses
  nothing without it either: see chalicelib/mediator/handler.py.)
- The asynchronously invoked workers (SNS topics, the S3 upload) retry twice, then
  leave the event in the worker failure queue instead of dropping it.

Both are idempotent: running them again changes nothing.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws import client

from .policies import WORKERS, function_name

WORKER_RETRIES = 2


class NotDeployed(RuntimeError):
    """What post-deploy configures is not there: `chalice deploy` has not run (or failed)."""


def post_deploy(stage: str, outputs: dict[str, str]) -> list[str]:
    """Apply the settings; returns what was done, a line each."""
    lam, done = client("lambda"), []
    mediator = function_name(stage, "mediate")
    queue = outputs["MediatorQueueArn"]
    # Found by the queue's ARN: a function name does not find a mapping made with the function's ARN.
    mappings = [m for m in lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"]
                if m["FunctionArn"].split(":")[6] == mediator]
    if not mappings:
        raise NotDeployed(f"no event source mapping from {queue} to {mediator}: run `chalice deploy --stage {stage}`")
    for mapping in mappings:
        if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
            lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
        done.append(f"{mediator}: the SQS event source {mapping['UUID']} reports batch item failures")
    for name in WORKERS:
        function = function_name(stage, name)
        settings: dict[str, Any] = {
            "FunctionName": function,
            "MaximumRetryAttempts": WORKER_RETRIES,
            "DestinationConfig": {"OnFailure": {"Destination": outputs["WorkerFailureQueueArn"]}},
        }
        try:
            lam.put_function_event_invoke_config(**settings)
        except lam.exceptions.ResourceNotFoundException:
            raise NotDeployed(f"no function {function}: run `chalice deploy --stage {stage}`") from None
        done.append(f"{function}: {WORKER_RETRIES} retries, then the worker failure queue")
    return done
