"""What can be checked of the AWS deployment without an account."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from deploy.policies import FUNCTIONS, NEEDED_WILDCARDS, WORKERS, policies
from deploy.record import defaults, record, terraform_extras
from tests.conftest import ROOT

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


class _Loader(yaml.SafeLoader):
    pass


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    """CloudFormation's !Ref, !Sub, ... read as their plain argument."""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _short_form)
TEMPLATE = yaml.load((ROOT / "resources" / "template.yaml").read_text(), Loader=_Loader)


def test_the_template_passes_cfn_lint():
    run = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(ROOT / "resources" / "template.yaml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_template_holds_what_the_app_needs():
    from app import app

    resources = TEMPLATE["Resources"]
    kinds = [r["Type"] for r in resources.values()]
    assert kinds.count("AWS::S3::Bucket") == 4 and kinds.count("AWS::SNS::Topic") == 4
    assert resources["StateTable"]["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert resources["StateTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket":
            assert resource["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True, name
            assert resource["Properties"]["BucketEncryption"], name
    assert resources["MediatorQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == "MaxReceives"
    functions = {source.name for source in app.event_sources} | {"api_handler", "token"}
    assert set(FUNCTIONS) == functions
    log_groups = {r["Properties"]["LogGroupName"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups == {f"/aws/lambda/weathergif-${{Stage}}-{name}" for name in functions}  # Chalice's names
    outputs = set(TEMPLATE["Outputs"])
    from local.provision import OUTPUT_ENVIRONMENT

    assert set(OUTPUT_ENVIRONMENT) <= outputs and "WorkerFailureQueueArn" in outputs


def test_the_mediator_queue_hides_a_message_six_times_the_mediators_timeout():
    visibility = TEMPLATE["Parameters"]["MediatorVisibilityTimeout"]["Default"]
    for stage in ("dev", "prod"):
        section = CONFIG["stages"][stage]
        timeout = section["lambda_functions"]["mediate"].get("lambda_timeout", section.get("lambda_timeout"))
        assert visibility >= 6 * timeout, stage


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stages_are_configured_for_least_privilege_tracing_and_size(stage):
    section = CONFIG["stages"][stage]
    assert section["autogen_policy"] is False and section["xray"] is True
    functions = section["lambda_functions"]
    assert set(functions) == set(FUNCTIONS)
    assert all(f["iam_policy_file"] == f"policy-{stage}-{name}.json" for name, f in functions.items())
    for thumbnailer in ("create_thumbnail", "thumbnail_upload"):
        assert functions[thumbnailer]["lambda_memory_size"] >= 512 and functions[thumbnailer]["lambda_timeout"] >= 10
    assert functions["create_gif"]["lambda_memory_size"] >= 1024  # 48 frames peak near 170 MB: bench/gif_bench.py
    assert functions["create_gif"]["lambda_timeout"] >= 60
    assert section["environment_variables"]["TABLE_NAME"] == f"weathergif-{stage}-state"


STAGE = defaults("dev")
POLICIES = policies(STAGE)


def statements(function: str):
    for statement in POLICIES[function]["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"]:
            for resource in resources:
                yield action, resource


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_wildcard_a_function_does_not_need(function):
    names = {value.split(":")[-1] for value in STAGE.outputs.values()}
    for action, resource in statements(function):
        assert "*" not in action, (function, action)
        if resource == "*":
            assert (action, resource) in NEEDED_WILDCARDS, (function, action)
            continue
        if action == "ses:SendEmail":  # the sender is each animation's: any verified identity of the account
            assert function == "send_email" and resource.endswith(":identity/*")
            continue
        if action == "ssm:GetParameter":  # a secret of its own, and nothing else
            secret = {"fetch_amp_image": "map-keys", "token": "api-token"}[function]
            assert resource.endswith(f":parameter/weathergif/dev/{secret}")
            continue
        if action.startswith("logs:"):
            assert resource.endswith(f"log-group:/aws/lambda/weathergif-dev-{function}:*"), resource
            continue
        named = re.split(r"[:/]", resource.removesuffix("/*").removesuffix("/uploads"))[-1]
        assert named in names, (function, action, resource)  # one of the stack's resources, by its name


@pytest.mark.parametrize("worker", WORKERS)
def test_workers_write_only_their_own_buckets_and_answer_only_the_mediator(worker):
    own = {"fetch_amp_image": "frames", "create_thumbnail": "thumbnails", "thumbnail_upload": "thumbnails/uploads",
           "create_gif": "gifs", "send_email": None}[worker]
    writes = {r for a, r in statements(worker) if a == "s3:PutObject"}
    assert writes == ({f"arn:aws:s3:::weathergif-dev-{own}/*"} if own else set())
    sends = {r for a, r in statements(worker) if a == "sqs:SendMessage"}
    assert sends == {STAGE.mediator_queue, STAGE.outputs["WorkerFailureQueueArn"]}
    assert not any(a.startswith(("sns:", "dynamodb:Query", "s3:Delete")) for a, _ in statements(worker))


def test_the_mediator_publishes_to_the_worker_topics_and_writes_no_objects():
    published = {r for a, r in statements("mediate") if a == "sns:Publish"}
    assert published == {STAGE.topic(t) for t in ("FetchTopic", "ThumbnailTopic", "GifTopic", "EmailTopic")}
    assert {r for a, r in statements("mediate") if a.startswith("dynamodb:")} == {STAGE.table}
    assert not any(a in ("s3:PutObject", "s3:DeleteObject") for a, _ in statements("mediate"))
    assert {a for a, _ in statements("token")} == {"logs:CreateLogStream", "logs:PutLogEvents", "ssm:GetParameter",
                                                    "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_recording_a_stack_writes_its_names_and_policies(tmp_path, emulator):
    from local.provision import provision

    emulator.reset()
    outputs = provision(stage="qa")
    chalice = tmp_path / ".chalice"
    chalice.mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", chalice / "config.json")
    record(STAGE._replace(name="qa", outputs=outputs), chalice)
    config = json.loads((chalice / "config.json").read_text())["stages"]["qa"]
    assert config["environment_variables"]["FRAMES_BUCKET"] == outputs["FramesBucket"] == "weathergif-qa-frames"
    assert config["lambda_functions"]["mediate"]["iam_policy_file"] == "policy-qa-mediate.json"
    assert json.loads((chalice / "policy-qa-mediate.json").read_text())["Statement"]


def test_post_deploy_switches_on_batch_item_failures_and_worker_failure_destinations(emulator):
    from chalicelib.aws import client
    from deploy.post_deploy import post_deploy
    from local.provision import provision

    emulator.reset()
    outputs = provision(stage="dev")
    role = client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    lam = client("lambda")
    for name in (*WORKERS, "mediate"):
        lam.create_function(FunctionName=f"weathergif-dev-{name}", Runtime="python3.11", Role=role,
                            Handler="app.handler", Code={"ZipFile": code.getvalue()})
    lam.create_event_source_mapping(EventSourceArn=outputs["MediatorQueueArn"], FunctionName="weathergif-dev-mediate",
                                    BatchSize=10)
    done = post_deploy("dev", outputs)
    assert len(done) == 1 + len(WORKERS)
    [mapping] = lam.list_event_source_mappings(FunctionName="weathergif-dev-mediate")["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    invoke = lam.get_function_event_invoke_config(FunctionName="weathergif-dev-create_gif")
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == outputs["WorkerFailureQueueArn"]
    assert post_deploy("dev", outputs) == done  # again: nothing changes


def test_chalice_package_builds_the_lambda_bundle(tmp_path):
    """chalice package --pkg-format terraform, as `python -m deploy package` runs it, on a copy."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("app.py", "requirements.txt", "chalicelib", ".chalice/config.json", "deploy", "local", "resources"):
        source, target = ROOT / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    record(defaults("dev"), project / ".chalice")
    out = tmp_path / "terraform"
    run = subprocess.run([sys.executable, "-m", "deploy", "package", "dev", "--out", str(out)], cwd=project,
                         capture_output=True, text=True, timeout=600, env={**_env(), "AWS_DEFAULT_REGION": "us-east-1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    print(run.stdout.strip().splitlines()[-1])  # the bundle's size
    size = (out / "deployment.zip").stat().st_size
    assert size < 50e6
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        files = set(bundle.namelist())
    assert {"app.py", "chalicelib/web/index.html", "chalicelib/mediator/service.py"} <= files
    assert any(f.startswith("PIL/") for f in files) and any(f.startswith("numpy/") for f in files)
    assert not any(f.startswith(("local/", "tests/", "deploy/", "boto3/")) for f in files)
    terraform = json.loads((out / "chalice.tf.json").read_text())["resource"]
    assert set(terraform["aws_iam_role"]) == {f"{name}_role" for name in FUNCTIONS}
    assert terraform["aws_lambda_function"]["create_gif"]["tracing_config"] == {"mode": "Active"}
    override = json.loads((out / "weathergif_override.tf.json").read_text())["resource"]
    for kind, resources in override.items():
        assert set(resources) <= set(terraform[kind])  # an override names resources Chalice made
    extras = json.loads((out / "weathergif.tf.json").read_text())["resource"]["aws_lambda_function_event_invoke_config"]
    assert {config["function_name"].split(".")[1] for config in extras.values()} == set(WORKERS)
    assert terraform_extras("dev") == {name: json.loads((out / name).read_text()) for name in terraform_extras("dev")}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
