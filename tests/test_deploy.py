"""The AWS deployment: the template, the committed policies, and `make deploy` run to the
end against the embedded emulation (then `make destroy`, which leaves nothing behind)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


from chalicelib.settings import API_TOKEN_PARAMETER, MAP_KEYS_PARAMETER, PUBLIC_URL_VARIABLE, RESOURCES, STAGE_VARIABLE
from deploy.policies import FUNCTIONS, NEEDED_WILDCARDS, WORKERS, Stage, function_name, policies
from deploy.record import STAGE_VARIABLES, environment, record, terraform_extras, write_policies
from tests.bundle import fresh_clone
from tests.conftest import ROOT
from tests.template import template

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGES = sorted(CONFIG["stages"])


TEMPLATE = template(plain=True)


# The template -------------------------------------------------------------------------


@pytest.mark.integration  # a subprocess of two seconds
def test_the_template_passes_cfn_lint():
    run = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(ROOT / "resources" / "template.yaml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


# CloudFormation's quota on a template sent in the request (TemplateBody), as deploy/stack.py sends it:
# 51,200 bytes ("CloudFormation quotas", AWS CloudFormation User Guide). A larger one must go by S3
# (TemplateURL); moto takes any size, so only this test would notice before an AWS deploy failed.
TEMPLATE_BODY_QUOTA = 51_200


def test_the_template_fits_cloudformations_quota_on_a_template_in_the_request():
    from deploy.stack import TEMPLATE

    size = len(TEMPLATE.read_text().encode())
    assert size <= TEMPLATE_BODY_QUOTA, f"{TEMPLATE.name} is {size:,} bytes: deploy it by S3 (TemplateURL)"


def test_the_template_holds_what_the_app_needs():
    from app import app

    resources = TEMPLATE["Resources"]
    kinds = [r["Type"] for r in resources.values()]
    assert kinds.count("AWS::S3::Bucket") == 4 and kinds.count("AWS::SNS::Topic") == 4 + 1  # the workers', alarms
    assert resources["StateTable"]["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert resources["StateTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expiresAt",
        "Enabled": True,
    }
    for name, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket":
            assert resource["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True, name
            assert resource["Properties"]["BucketEncryption"], name
    assert resources["MediatorQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == "MaxReceives"
    functions = {source.name for source in app.event_sources} | {"api_handler", "token"}
    assert set(FUNCTIONS) == functions
    log_groups = {r["Properties"]["LogGroupName"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups == {f"/aws/lambda/{function_name('${Stage}', name)}" for name in functions}  # Chalice's names
    assert "/aws/lambda/weathergif-${Stage}" in log_groups  # the REST API's function is named after the app
    assert {"MediatorQueueArn", "WorkerFailureQueueArn"} <= set(TEMPLATE["Outputs"])


def test_the_template_reports_every_resource_of_the_table():
    """Each resource of chalicelib/settings.py's table is an output of the template, and the table
    gives each output and each variable once."""
    outputs = [resource.output for resource in RESOURCES]
    variables = [resource.variable for resource in RESOURCES]
    assert set(outputs) <= set(TEMPLATE["Outputs"])
    assert len(set(outputs)) == len(outputs) and len(STAGE_VARIABLES) == len(variables) + 3
    recorded = environment({output: f"name-of-{output}" for output in TEMPLATE["Outputs"]})
    assert recorded == {resource.variable: f"name-of-{resource.output}" for resource in RESOURCES}


@pytest.mark.parametrize("stage", STAGES)
def test_each_variable_a_stage_sets_is_one_the_table_knows(stage):
    """.chalice/config.json holds the values; chalicelib/settings.py names the variables. A stage sets
    each variable of the table (the policies read them all) and no other."""
    section = CONFIG["stages"][stage]
    assert set(section["environment_variables"]) == STAGE_VARIABLES
    for name, function in section["lambda_functions"].items():
        assert set(function.get("environment_variables", {})) <= {PUBLIC_URL_VARIABLE}, name  # by make deploy
    assert section["environment_variables"][STAGE_VARIABLE] == stage
    for variable, leaf in ((MAP_KEYS_PARAMETER, "map-keys"), (API_TOKEN_PARAMETER, "api-token")):
        assert section["environment_variables"][variable] == f"/weathergif/{stage}/{leaf}"


def test_the_mediator_queue_hides_a_message_six_times_the_mediators_timeout():
    visibility = TEMPLATE["Parameters"]["MediatorVisibilityTimeout"]["Default"]
    for stage in STAGES:
        section = CONFIG["stages"][stage]
        timeout = section["lambda_functions"]["mediate"].get("lambda_timeout", section.get("lambda_timeout"))
        assert visibility >= 6 * timeout, stage


# The stages and their committed policies -----------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
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


def test_every_stage_names_resources_of_its_own():
    """Two stages in one account never share a bucket, table, queue, topic, parameter or rule."""
    seen: dict[str, str] = {}
    for stage in STAGES:
        environment = CONFIG["stages"][stage]["environment_variables"]
        assert environment["STAGE"] == stage
        for variable, value in environment.items():
            if variable.endswith(("_BUCKET", "_QUEUE", "_TOPIC", "_PARAMETER", "TABLE_NAME")):
                assert f"{stage}" in value and value not in seen, (stage, variable, value)
                seen[value] = stage
    override = terraform_extras()["weathergif_override.tf.json"]["resource"]["aws_cloudwatch_event_rule"]
    assert all("${aws_lambda_function." in rule["name"] for rule in override.values())  # stage-named, as deployed


@pytest.mark.parametrize("stage", STAGES)
def test_the_committed_policy_files_are_what_policies_py_generates(stage):
    """`chalice deploy` on a fresh clone reads these; a change to deploy/policies.py must rewrite
    them (`python -m deploy policies`)."""
    functions = CONFIG["stages"][stage]["lambda_functions"]
    for name, document in policies(Stage.from_config(CONFIG, stage)).items():
        path = ROOT / ".chalice" / functions[name]["iam_policy_file"]
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True)
        assert tracked.returncode == 0, f"{path.name} is not in the repository: a fresh clone would not have it"
        assert json.loads(path.read_text()) == document, f"{path.name}: run `python -m deploy policies`"


def test_nothing_committed_or_generated_carries_an_account_id(tmp_path):
    files = [
        *(ROOT / ".chalice").glob("*.json"),
        *(ROOT / "deploy" / "terraform").glob("*.json"),
        ROOT / "resources" / "template.yaml",
    ]
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    files += write_policies(tmp_path, partition="aws")
    for path in files:
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text()), path


# Policies: least privilege -----------------------------------------------------------

STAGE = Stage.from_config(CONFIG, "dev")
POLICIES = policies(STAGE)


def statements(function: str):
    for statement in POLICIES[function]["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"]:
            for resource in resources:
                yield action, resource


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_wildcard_a_function_does_not_need(function):
    names = set(STAGE.env.values()) | {f"{STAGE.env['MEDIATOR_QUEUE']}-dlq"}
    for action, resource in statements(function):
        assert "*" not in action, (function, action)
        if resource == "*":
            assert (action, resource) in NEEDED_WILDCARDS, (function, action)
            continue
        if action == "ses:SendEmail":  # the sender is each animation's: any verified identity of the account
            assert function == "send_email" and resource.endswith(":identity/*")
            continue
        if not resource.startswith("arn:aws:s3:::"):  # regional: any region and account, this name
            assert resource.split(":")[3:5] == ["*", "*"], resource
        if action == "ssm:GetParameter":  # a secret of its own, and nothing else
            secret = {"fetch_amp_image": "map-keys", "token": "api-token", "api_handler": "api-token"}[function]
            # the map sources' keys: the one source's of old, and each configured source's (map-keys/NAME)
            assert resource.endswith((f":parameter/weathergif/dev/{secret}", ":parameter/weathergif/dev/map-keys/*"))
            assert resource.endswith(f":parameter/weathergif/dev/{secret}") or function == "fetch_amp_image"
            continue
        if action.startswith("logs:"):
            assert resource.endswith(f"log-group:/aws/lambda/{function_name('dev', function)}:*"), resource
            continue
        if resource.startswith("arn:aws:s3:::"):  # a bucket, or keys in it
            named = resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        else:
            named = re.split(r"[:/]", resource)[-1]
        assert named in names, (function, action, resource)  # one of the stage's resources, by its name


@pytest.mark.parametrize("worker", WORKERS)
def test_workers_write_only_their_own_buckets_and_answer_only_the_mediator(worker):
    own = {
        "fetch_amp_image": "frames",
        "create_thumbnail": "thumbnails",
        "thumbnail_upload": "thumbnails/uploads",
        "create_gif": "gifs",
        "send_email": None,
    }[worker]
    writes = {r for a, r in statements(worker) if a == "s3:PutObject"}
    assert writes == ({f"arn:aws:s3:::weathergif-dev-{own}/*"} if own else set())
    sends = {r for a, r in statements(worker) if a == "sqs:SendMessage"}
    assert sends == {STAGE.mediator_queue, STAGE.worker_failure_queue}
    assert not any(a.startswith(("sns:", "dynamodb:Query", "s3:Delete")) for a, _ in statements(worker))


def test_the_mediator_publishes_to_the_worker_topics_and_writes_no_objects():
    published = {r for a, r in statements("mediate") if a == "sns:Publish"}
    published_to = (RESOURCES.fetch_topic, RESOURCES.thumbnail_topic, RESOURCES.gif_topic, RESOURCES.email_topic)
    assert published == {STAGE.topic(t) for t in published_to}
    assert {r for a, r in statements("mediate") if a.startswith("dynamodb:")} == {STAGE.table}
    assert not any(a in ("s3:PutObject", "s3:DeleteObject") for a, _ in statements("mediate"))
    assert {a for a, _ in statements("token")} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_recording_a_stack_with_a_bucket_prefix_rewrites_names_and_policies(tmp_path, emulator):
    from deploy.stack import deploy_stack

    emulator.reset()
    outputs = deploy_stack("weathergif-dev", {"Stage": "dev", "BucketPrefix": "acme-wx-dev"})
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    written = record("dev", outputs, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())["stages"]
    assert config["dev"]["environment_variables"]["FRAMES_BUCKET"] == outputs["FramesBucket"] == "acme-wx-dev-frames"
    assert config["prod"] == CONFIG["stages"]["prod"]  # another stage is left alone
    policy = json.loads((tmp_path / "policy-dev-create_gif.json").read_text())
    assert {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::acme-wx-dev-gifs/*"} in policy[
        "Statement"
    ]
    assert len(written) == 1 + len(FUNCTIONS)


# post-deploy ---------------------------------------------------------------------------


def _function(lam, name: str, role: str) -> str:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": code.getvalue()}
    )["FunctionArn"]


def test_post_deploy_finds_the_mapping_by_its_queue_and_fails_loudly_without_one(emulator):
    from chalicelib.aws import client
    from deploy.post_deploy import NotDeployed, post_deploy
    from local.provision import provision

    emulator.reset()
    outputs = provision(stage="dev")
    role = client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    lam = client("lambda")
    arns = {name: _function(lam, function_name("dev", name), role) for name in (*WORKERS, "mediate")}
    with pytest.raises(NotDeployed, match="no event source mapping"):
        post_deploy("dev", outputs)
    # As Chalice makes it: with the function's ARN (which moto's FunctionName filter then misses).
    lam.create_event_source_mapping(
        EventSourceArn=outputs["MediatorQueueArn"], FunctionName=arns["mediate"], BatchSize=10
    )
    done = post_deploy("dev", outputs)
    assert len(done) == 1 + len(WORKERS)
    [mapping] = lam.list_event_source_mappings(EventSourceArn=outputs["MediatorQueueArn"])["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    invoke = lam.get_function_event_invoke_config(FunctionName=function_name("dev", "create_gif"))
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == outputs["WorkerFailureQueueArn"]
    assert post_deploy("dev", outputs) == done  # again: nothing changes


# make deploy, chalice deploy and make destroy, against the emulation ---------------------------


class Clone:
    """A fresh clone of the project, and commands run in it against the embedded AWS."""

    def __init__(self, path: Path, environment: dict[str, str]):
        self.path = path
        self.environment = environment

    def run(self, *command: str, timeout: float = 900) -> str:
        done = subprocess.run(
            list(command), cwd=self.path, env=self.environment, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return done.stdout


@pytest.fixture
def clone(tmp_path, emulator, built, ffmpeg_zip) -> Clone:
    """A fresh clone whose Chalice cache holds the dependency layer the session's bundle was made with
    (tests/test_bundle.py checks it), and whose build/ holds the ffmpeg layer's zip: Chalice reuses a
    layer zip of the same requirements, and the deploy the ffmpeg zip of the same binary, as on a
    developer's machine after its first deploy, so this test runs each deploy step, not pip again."""
    emulator.reset()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAP_", "FETCH_", "STAGE"))}
    environment.update(emulator.environment())
    environment.pop("AWS_SESSION_TOKEN")  # as a developer's long-lived keys
    path = fresh_clone(tmp_path / "weathergif")
    cache = path / ".chalice" / "deployments"
    cache.mkdir(parents=True)
    for layer in (built.project / ".chalice" / "deployments").glob("managed-layer-*.zip"):
        shutil.copyfile(layer, cache / layer.name)
    (path / "build").mkdir()
    shutil.copyfile(ffmpeg_zip, path / "build" / ffmpeg_zip.name)
    return Clone(path, environment)


@pytest.mark.heavy
def test_make_deploy_then_chalice_deploy_prod_then_make_destroy(clone):
    """Every step of `make deploy` on the emulation; a second stage with Chalice's own command beside
    it; then `make destroy` of both, which leaves nothing behind."""
    from chalicelib.aws import client

    python, chalice = sys.executable, str(Path(sys.executable).with_name("chalice"))
    out = clone.run(python, "-m", "deploy", "deploy", "dev")
    assert "6. the public URL" in out and "done: https://" in out
    clone.run(python, "-m", "deploy", "resources", "prod")  # `make resources STAGE=prod`
    assert len(list((clone.path / "build").glob("ffmpeg-layer-*"))) == 1  # the one zip, both stages'
    clone.run(chalice, "deploy", "--stage", "prod")  # as Chalice documents it, nothing else

    lam, config = client("lambda"), json.loads((clone.path / ".chalice" / "config.json").read_text())
    deployed = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    for stage in ("dev", "prod"):
        names = {function_name(stage, f) for f in FUNCTIONS}
        assert names <= set(deployed)
        stage_config = CONFIG["stages"][stage]
        for name in FUNCTIONS:
            function = lam.get_function(FunctionName=function_name(stage, name))["Configuration"]
            expected_env = {**CONFIG["environment_variables"], **stage_config["environment_variables"]}
            assert expected_env.items() <= function["Environment"]["Variables"].items()
            layers = [layer["Arn"].split(":")[6] for layer in function["Layers"]]
            own = [f"weathergif-{stage}-ffmpeg"] if name == "create_gif" else []  # the MP4 encoder's, its alone
            assert layers == [f"weathergif-{stage}-managed-layer", *own], (stage, name)
            role = function["Role"].split("/")[-1]
            [policy_name] = client("iam").list_role_policies(RoleName=role)["PolicyNames"]
            document = client("iam").get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
            committed = json.loads(
                (ROOT / ".chalice" / stage_config["lambda_functions"][name]["iam_policy_file"]).read_text()
            )
            assert document == committed, (stage, name)
    rules = {r["Name"]: r["ScheduleExpression"] for r in client("events").list_rules()["Rules"]}
    assert rules == {
        f"weathergif-{s}-{n}-event": e
        for s in ("dev", "prod")
        for n, e in (("fetch_due_frames", "rate(1 minute)"), ("rebuild_gifs", "rate(1 hour)"))
    }
    groups = {g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]}
    assert {f"/aws/lambda/{name}" for name in deployed} <= groups  # every function's log group, from the template
    mappings = {m["FunctionArn"].split(":")[6]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    assert mappings["weathergif-dev-mediate"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "weathergif-prod-mediate" in mappings  # plain chalice deploy: the handler copes without it
    invoke = lam.get_function_event_invoke_config(FunctionName="weathergif-dev-create_gif")
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith(":weathergif-dev-worker-failures")
    subscribed = {
        s["TopicArn"].split(":")[-1]: s["Endpoint"].split(":")[-1]
        for s in client("sns").list_subscriptions()["Subscriptions"]
    }
    assert subscribed["weathergif-prod-please-create-gif"] == "weathergif-prod-create_gif"
    notification = client("s3").get_bucket_notification_configuration(Bucket="weathergif-dev-uploads")
    [upload] = notification["LambdaFunctionConfigurations"]
    assert upload["LambdaFunctionArn"].endswith(":weathergif-dev-thumbnail_upload")
    url = config["stages"]["dev"]["lambda_functions"]["mediate"]["environment_variables"]["PUBLIC_URL"]
    assert re.fullmatch(r"https://\w+\.execute-api\.us-east-1\.amazonaws\.com/api/", url)
    assert deployed["weathergif-dev-mediate"]["Environment"]["Variables"]["PUBLIC_URL"] == url  # deployed again

    for stage in ("dev", "prod"):
        clone.run(python, "-m", "deploy", "destroy", stage, "--yes")
    left = {
        "functions": lam.list_functions()["Functions"],
        "layers": lam.list_layers()["Layers"],
        "mappings": lam.list_event_source_mappings()["EventSourceMappings"],
        "roles": [r for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith("weathergif")],
        "rules": client("events").list_rules()["Rules"],
        "apis": client("apigateway").get_rest_apis()["items"],
        "buckets": client("s3").list_buckets()["Buckets"],
        "queues": client("sqs").list_queues().get("QueueUrls", []),
        "topics": client("sns").list_topics()["Topics"],
        "subscriptions": client("sns").list_subscriptions()["Subscriptions"],
        "tables": client("dynamodb").list_tables()["TableNames"],
        "log groups": client("logs").describe_log_groups()["logGroups"],
        "stacks": [
            s for s in client("cloudformation").list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
        ],
    }
    assert {kind: found for kind, found in left.items() if found} == {}
