"""The recorded step: a stage's stack outputs into .chalice/config.json, and its policies.

As Chalice's own samples do, the functions learn the resource names from environment
variables recorded in the stage's configuration. The template's default names are
recorded already (in the repository), so `chalice deploy` works on a fresh clone once
the stack exists; a stack made with other names (a bucket prefix) is recorded over them.
The policies, `.chalice/policy-{stage}-{function}.json`, are written from those names
(see deploy/policies.py): recording a stack with other names rewrites them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.settings import API_TOKEN_PARAMETER, MAP_KEYS_PARAMETER, RESOURCES, STAGE_VARIABLE

from .policies import FUNCTIONS, Stage, policies

ROOT = Path(__file__).resolve().parent.parent
CHALICE = ROOT / ".chalice"
TERRAFORM = Path(__file__).resolve().parent / "terraform"  # files to put beside chalice.tf.json
# What a stage's section of .chalice/config.json sets: the stage, its resources' names, its secrets' names.
STAGE_VARIABLES = frozenset((STAGE_VARIABLE, *(r.variable for r in RESOURCES), MAP_KEYS_PARAMETER, API_TOKEN_PARAMETER))


def environment(outputs: dict[str, str]) -> dict[str, str]:
    """The functions' environment variables for a stack's outputs: each resource's variable, from the
    output that reports it (chalicelib/settings.py's RESOURCES)."""
    return {resource.variable: outputs[resource.output] for resource in RESOURCES if resource.output in outputs}


def record(stage: str, outputs: dict[str, str], chalice_dir: Path = CHALICE, partition: str = "aws") -> list[Path]:
    """Record a stack's outputs as the stage's environment, then its policies; the files written."""
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"][stage]["environment_variables"].update(environment(outputs))
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return [config_path, *write_policies(chalice_dir, [stage], partition)]


def record_layers(stage: str, layers: dict[str, list[str]], chalice_dir: Path = CHALICE) -> list[Path]:
    """Record each function's own layers (ARNs, after the one Chalice manages) in the stage's
    configuration, where `chalice deploy` reads them: {function: [ARN, ...]}; the files written."""
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    functions = config["stages"][stage]["lambda_functions"]
    for function, arns in layers.items():
        functions[function]["layers"] = list(arns)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return [config_path]


def write_policies(chalice_dir: Path = CHALICE, stages: list[str] | None = None, partition: str = "aws") -> list[Path]:
    """Each stage's policy files, from its recorded names; the files written."""
    config = json.loads((chalice_dir / "config.json").read_text())
    written = []
    for stage in stages or sorted(config["stages"]):
        functions = config["stages"][stage]["lambda_functions"]
        for name, document in policies(Stage.from_config(config, stage, partition)).items():
            path = chalice_dir / functions[name]["iam_policy_file"]
            path.write_text(json.dumps(document, indent=2) + "\n")
            written.append(path)
    return written


def policy_files(config: dict[str, Any], stage: str) -> dict[str, str]:
    """{function: its policy file name} as the stage's configuration names them."""
    functions = config["stages"][stage]["lambda_functions"]
    return {name: functions[name]["iam_policy_file"] for name in FUNCTIONS}


def terraform_extras() -> dict[str, dict[str, Any]]:
    """The files in deploy/terraform/, by name: what Chalice's Terraform cannot say."""
    return {path.name: json.loads(path.read_text()) for path in sorted(TERRAFORM.glob("*.tf.json"))}
