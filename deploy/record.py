"""The recorded step: a stage's stack outputs into .chalice/config.json, and its policies.

As Chalice's own samples do, the functions learn the resource names from environment
variables recorded in the stage's configuration. Also written, per stage:
`.chalice/policy-{stage}-{function}.json` (least privilege, see deploy/policies.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.provision import OUTPUT_ENVIRONMENT

from .policies import WORKERS, Stage, api_token_parameter, map_keys_parameter, policies

ROOT = Path(__file__).resolve().parent.parent
CHALICE = ROOT / ".chalice"
WORKER_RETRIES = 2


def record(stage: Stage, chalice_dir: Path = CHALICE) -> list[Path]:
    """Write the stage's configuration, policies and merge template; returns the files written."""
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    section = config["stages"].setdefault(stage.name, {})
    section.setdefault("environment_variables", {}).update(
        {
            "STAGE": stage.name,
            "MAP_KEYS_PARAMETER": map_keys_parameter(stage.name),
            "API_TOKEN_PARAMETER": api_token_parameter(stage.name),
            **{v: stage.outputs[o] for o, v in OUTPUT_ENVIRONMENT.items() if o in stage.outputs},
        }
    )
    section.update({"autogen_policy": False, "xray": True})  # log groups and their retention: the template
    functions = section.setdefault("lambda_functions", {})
    written = [config_path]
    for name, document in policies(stage).items():
        policy = chalice_dir / f"policy-{stage.name}-{name}.json"
        policy.write_text(json.dumps(document, indent=2) + "\n")
        functions.setdefault(name, {})["iam_policy_file"] = policy.name
        written.append(policy)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return written


def terraform_extras(stage_name: str) -> dict[str, dict[str, Any]]:
    """Files to put beside `chalice package --pkg-format terraform`'s chalice.tf.json, for what
    Chalice cannot say: partial batch failures on the mediator's event source (an override
    file, which Terraform merges into Chalice's resource), and retries then the failure queue
    for the asynchronously invoked workers (SNS and S3 invoke them asynchronously)."""
    failure_queue = (
        "arn:${data.aws_partition.chalice.partition}:sqs:${data.aws_region.chalice.name}:"
        f"${{data.aws_caller_identity.chalice.account_id}}:weathergif-{stage_name}-worker-failures"
    )
    return {
        "weathergif_override.tf.json": {
            "resource": {
                "aws_lambda_event_source_mapping": {
                    "mediate-sqs-event-source": {"function_response_types": ["ReportBatchItemFailures"]}
                }
            }
        },
        "weathergif.tf.json": {
            "resource": {
                "aws_lambda_function_event_invoke_config": {
                    f"{name}-on-failure": {
                        "function_name": f"${{aws_lambda_function.{name}.function_name}}",
                        "maximum_retry_attempts": WORKER_RETRIES,
                        "destination_config": {"on_failure": {"destination": failure_queue}},
                    }
                    for name in WORKERS
                }
            }
        },
    }


def defaults(name: str = "dev", account: str = "123456789012", region: str = "us-east-1") -> Stage:
    """A stage as the template names things by default (for checks without an account)."""
    prefix = f"weathergif-{name}"
    outputs = {
        "FramesBucket": f"{prefix}-frames", "ThumbnailsBucket": f"{prefix}-thumbnails", "GifsBucket": f"{prefix}-gifs",
        "UploadsBucket": f"{prefix}-uploads", "TableName": f"{prefix}-state", "MediatorQueue": f"{prefix}-mediator",
        "MediatorDeadLetterQueue": f"{prefix}-mediator-dlq",
        "MediatorQueueArn": f"arn:aws:sqs:{region}:{account}:{prefix}-mediator",
        "WorkerFailureQueueArn": f"arn:aws:sqs:{region}:{account}:{prefix}-worker-failures",
        "FetchTopic": f"{prefix}-please-fetch-amp-image", "ThumbnailTopic": f"{prefix}-please-create-thumbnail",
        "GifTopic": f"{prefix}-please-create-gif", "EmailTopic": f"{prefix}-please-send-email",
    }
    return Stage(name, account, region, outputs)


