"""After `chalice deploy`: what Chalice has no setting for.

- The mediator's SQS event source reports batch item failures, so the handler's
  {"batchItemFailures": [...]} retries only the records that failed.
- The asynchronously invoked workers (SNS topics, the S3 upload) retry twice, then
  leave the event in the worker failure queue instead of dropping it.

Both are idempotent: running them again changes nothing.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws import client

from .policies import WORKERS
from .record import WORKER_RETRIES


def post_deploy(stage: str, outputs: dict[str, str], app_name: str = "weathergif") -> list[str]:
    """Apply the settings; returns what was done, a line each."""
    lam, done = client("lambda"), []
    mediator = f"{app_name}-{stage}-mediate"
    for mapping in lam.list_event_source_mappings(FunctionName=mediator)["EventSourceMappings"]:
        if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
            lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
        done.append(f"{mediator}: the SQS event source {mapping['UUID']} reports batch item failures")
    for name in WORKERS:
        function = f"{app_name}-{stage}-{name}"
        settings: dict[str, Any] = {
            "FunctionName": function,
            "MaximumRetryAttempts": WORKER_RETRIES,
            "DestinationConfig": {"OnFailure": {"Destination": outputs["WorkerFailureQueueArn"]}},
        }
        lam.put_function_event_invoke_config(**settings)
        done.append(f"{function}: {WORKER_RETRIES} retries, then the worker failure queue")
    return done
