"""The IAM policies against the code: deploy/operations.py's table names every AWS operation the code
calls (read off chalicelib/aws statically), and each function's committed policy allows what IAM
checks for the operations the function declares (tests/iam.py evaluates the policy: wildcards and
conditions). tests/test_sdk.py checks the same of every operation the functions made in a run."""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy import operations
from deploy.policies import FUNCTIONS, Stage, Use, policies, uses
from tests.conftest import ROOT
from tests.iam import allowed

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGES = sorted(CONFIG["stages"])
AWS = ROOT / "chalicelib" / "aws"
REGION, ACCOUNT = "eu-west-1", "210987654321"


# The table against the code -----------------------------------------------------------


@functools.cache
def _botocore() -> Any:
    import botocore.session

    return botocore.session.Session()


@functools.cache
def _methods(service: str) -> dict[str, str]:
    """A client's method names and the operations they call (botocore's own mapping)."""
    client = _botocore().create_client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    return dict(client.meta.method_to_api_mapping)


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def called(source: str, service: str | None) -> set[tuple[str, str]]:
    """The (service, operation) pairs a module of chalicelib/aws calls: every client method of the
    module's service it names (called, or handed on: `self._write(self.client.put_item, ...)`), its
    paginators (get_paginator("list_objects_v2")), its presigned URLs (generate_presigned_url
    ("get_object")), and a method of a client made in place (client("sts").get_caller_identity())."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, owner = node.func.attr, node.func.value
            of = service
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "client":
                of = _literal(owner.args[0] if owner.args else None)
                if of is not None and method in _methods(of):
                    found.add((of, _methods(of)[method]))
            if of is not None and method in ("get_paginator", "generate_presigned_url"):
                name = _literal(node.args[0] if node.args else None)
                assert name in _methods(of), f"{of}: {method}({name!r}) names no operation"
                found.add((of, _methods(of)[name]))
        elif isinstance(node, ast.Attribute) and service is not None and node.attr in _methods(service):
            found.add((service, _methods(service)[node.attr]))
    return found


def code_operations() -> dict[tuple[str, str], list[str]]:
    """Every operation the modules of chalicelib/aws call, and which modules call it."""
    services = set(_botocore().get_available_services())
    out: dict[tuple[str, str], list[str]] = {}
    for module in sorted(AWS.glob("*.py")):
        service = module.stem if module.stem in services else None
        for pair in called(module.read_text(), service):
            out.setdefault(pair, []).append(module.name)
    return out


def test_the_table_names_every_operation_the_code_calls_and_no_other():
    found = code_operations()
    assert set(found) - set(operations.OPERATIONS) == set(), "add them to deploy/operations.py"
    assert set(operations.OPERATIONS) - set(found) == set(), "the code no longer calls these"


def test_the_scan_finds_paginators_presigned_urls_and_clients_made_in_place():
    source = """
def f(self, s3):
    s3.get_paginator("list_objects_v2").paginate(Bucket="b")
    self._s3.generate_presigned_url("get_object", Params={})
    self._s3.put_object(Bucket="b", Key="k", Body=b"")
    page.get("Contents")  # not a client method
    client("sts").get_caller_identity()
    self._write(self.client.delete_object, request)  # handed on, called there
"""
    assert called(source, "s3") == {
        ("s3", "ListObjectsV2"),
        ("s3", "GetObject"),
        ("s3", "PutObject"),
        ("s3", "DeleteObject"),
        ("sts", "GetCallerIdentity"),
    }


def _dict_keys_returned(source: str, function: str) -> set[str]:
    tree = ast.parse(source)
    [found] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
    return {
        key
        for node in ast.walk(found)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict)
        for key in map(_literal, node.value.keys)
        if key
    }


def test_transactions_and_batch_writes_hold_only_items_the_table_allows_for():
    """TransactWriteItems has no action of its own: each item kind needs its own (the table names
    those the app's transactions hold). The same for a batch write's requests."""
    source = (AWS / "dynamodb.py").read_text()
    kinds = _dict_keys_returned(source, "_transact_item")
    assert kinds == {"Put", "Update", "Delete"}
    transact = operations.OPERATIONS[("dynamodb", "TransactWriteItems")].actions
    assert {operations.TRANSACT_ITEMS[kind] for kind in kinds} == set(transact)
    batch = {_literal(k) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Dict) for k in node.keys}
    requests = batch & set(operations.BATCH_WRITES)
    assert requests == {"PutRequest", "DeleteRequest"}
    writes = operations.OPERATIONS[("dynamodb", "BatchWriteItem")].actions
    assert {operations.BATCH_WRITES[kind] for kind in requests} <= set(writes)


# The policies against the table ---------------------------------------------------------


def _concrete(arn: str) -> str:
    """A resource of the pattern: this account and region, a key or name for each wildcard."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[3:5] == ["*", "*"]:
        parts[3:5] = [REGION, ACCOUNT]
    return ":".join(parts).replace("*", "sample")


def samples(use: Use) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """A call of each of the use's operations on each of its resources, as the code makes them:
    (service, operation, parameters, presigned)."""
    for operation in use.operations:
        service, name = operation.split(".", 1)
        for resource in use.resources:
            arn = _concrete(resource)
            params: dict[str, Any]
            if service == "s3":
                bucket = arn.split(":::", 1)[1]
                key = use.keys.replace("*", "sdk/320x240/1700000000", 1).replace("*", ".png")
                params = {"Bucket": bucket, "Key": key}
                if name == "ListObjectsV2":
                    params = {"Bucket": bucket, "Prefix": use.keys.split("*", 1)[0] + "sdk/"}
                elif name == "HeadBucket":
                    params = {"Bucket": bucket}
                elif name == "DeleteObjects":
                    params = {"Bucket": bucket, "Delete": {"Objects": [{"Key": key}]}}
            elif service == "dynamodb":
                table = arn.rsplit("/", 1)[1]
                params = {"TableName": table}
                if name == "TransactWriteItems":
                    params = {"TransactItems": [{kind: {"TableName": table}} for kind in ("Put", "Update", "Delete")]}
                elif name in ("BatchGetItem", "BatchWriteItem"):
                    params = {"RequestItems": {table: [{"PutRequest": {}}, {"DeleteRequest": {}}]}}
                    if name == "BatchGetItem":
                        params = {"RequestItems": {table: {"Keys": []}}}
            elif service == "sqs":
                queue = arn.rsplit(":", 1)[1]
                url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue}"
                params = {"QueueName": queue} if name == "GetQueueUrl" else {"QueueUrl": url}
            elif service == "sns":
                params = {"TopicArn": arn}
            elif service == "ses":
                params = {"Source": "Weather Desk <wx@example.com>"}
            elif service == "ssm":
                params = {"Name": arn.split(":parameter", 1)[1]}
            else:
                params = {}
            yield service, name, params, use.presigned


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_committed_policy_allows_what_the_table_says_for_its_functions_operations(stage, function):
    config = CONFIG["stages"][stage]
    committed = json.loads((ROOT / ".chalice" / config["lambda_functions"][function]["iam_policy_file"]).read_text())
    denied = []
    for use in uses(Stage.from_config(CONFIG, stage))[function]:
        for service, name, params, presigned in samples(use):
            for request in operations.requests(
                service, name, params, region=REGION, account=ACCOUNT, presigned=presigned
            ):
                if not allowed(committed, request.action, request.resource, request.context):
                    denied.append((name, request))
    assert denied == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_reader_that_takes_a_missing_object_for_good_is_told_it_is_missing(stage):
    """The workers that read S3 (a did-fail for a missing key) may list the buckets they read, so
    that S3 answers 404 NoSuchKey and not 403 AccessDenied; a listing of their own is held to the
    prefix they read."""
    generated = policies(Stage.from_config(CONFIG, stage))
    readers = {}
    for function, used in uses(Stage.from_config(CONFIG, stage)).items():
        for use in used:
            if "s3.GetObject" in use.operations and not use.presigned:
                readers.setdefault(function, []).extend(use.resources)
    assert set(readers) == {"create_thumbnail", "create_gif", "thumbnail_upload", "fetch_amp_image"}  # its basemaps
    for function, buckets in readers.items():
        for bucket in buckets:
            arn = _concrete(bucket)
            assert allowed(generated[function], "s3:ListBucket", arn), (function, arn)  # a GetObject's 404 check


def test_a_get_object_without_list_bucket_is_told_access_denied():
    """What the policies were: s3:GetObject alone. And a condition that does not say IfExists fails
    the 404 check, which carries no s3:prefix, while it allows a listing of its prefix."""
    get_only = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::frames/*"}]}
    read = operations.requests("s3", "GetObject", {"Bucket": "frames", "Key": "a.png"}, region=REGION, account=ACCOUNT)
    assert [allowed(get_only, r.action, r.resource, r.context) for r in read] == [True, False]
    plain_like = {
        "Statement": [
            *get_only["Statement"],
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::frames",
                "Condition": {"StringLike": {"s3:prefix": ["a/*"]}},
            },
        ]
    }
    assert not allowed(plain_like, *read[1][:2], read[1].context)
    assert allowed(plain_like, "s3:ListBucket", "arn:aws:s3:::frames", {"s3:prefix": "a/b"})
    if_exists = json.loads(json.dumps(plain_like).replace('"StringLike"', '"StringLikeIfExists"'))
    assert allowed(if_exists, *read[1][:2], read[1].context)
    assert not allowed(if_exists, "s3:ListBucket", "arn:aws:s3:::frames", {"s3:prefix": "b/"})
    presigned = operations.requests(
        "s3", "GetObject", {"Bucket": "frames", "Key": "a.png"}, region=REGION, account=ACCOUNT, presigned=True
    )
    assert [r.action for r in presigned] == ["s3:GetObject"]


def test_the_iam_evaluation():
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": ["sqs:Send*", "SNS:publish"], "Resource": "arn:aws:sqs:*:*:queue-?"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": ["arn:aws:sns:*:*:t1", "arn:aws:sns:*:*:t2"]},
            {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:*:queue-x"},
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::b",
                "Condition": {"StringNotLike": {"s3:prefix": "private/*"}},
            },
        ]
    }
    assert allowed(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:queue-a")
    assert allowed(policy, "sqs:sendmessagebatch", "arn:aws:sqs:us-east-1:1:queue-b")  # actions ignore case
    assert not allowed(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:queue-ab")  # ? is one character
    assert not allowed(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:queue-x")  # denied
    assert allowed(policy, "sns:Publish", "arn:aws:sns:eu-west-1:1:t2")
    assert not allowed(policy, "sns:Publish", "arn:aws:sns:eu-west-1:1:T2")  # resources do not
    assert not allowed(policy, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:queue-a")
    assert allowed(policy, "s3:ListBucket", "arn:aws:s3:::b")  # a negated operator holds without the key
    assert allowed(policy, "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "public/"})
    assert not allowed(policy, "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "private/x"})
    with pytest.raises(ValueError):
        allowed({"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}, "s3:GetObject", "*")


def test_requests_of_calls_as_iam_sees_them():
    def of(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
        return [
            (r.action, r.resource, dict(r.context))
            for r in operations.requests(service, operation, params, region="us-east-1", account="123456789012")
        ]

    assert of("dynamodb", "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t"}}]}) == [
        ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", {})
    ]
    assert of("sqs", "SendMessageBatch", {"QueueUrl": "http://127.0.0.1:4567/123456789012/q", "Entries": []}) == [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", {})
    ]
    assert of("sqs", "GetQueueUrl", {"QueueName": "q", "QueueOwnerAWSAccountId": "210987654321"}) == [
        ("sqs:GetQueueUrl", "arn:aws:sqs:us-east-1:210987654321:q", {})
    ]
    assert of("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "x/"}) == [
        ("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "x/"})
    ]
    assert of("s3", "HeadBucket", {"Bucket": "b"}) == [("s3:ListBucket", "arn:aws:s3:::b", {})]
    assert of("ssm", "GetParameter", {"Name": "/weathergif/dev/api-token"}) == [
        ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/weathergif/dev/api-token", {})
    ]
    assert of("cloudwatch", "GetMetricData", {}) == [("cloudwatch:GetMetricData", "*", {})]
    assert of("sts", "GetCallerIdentity", {}) == []
    assert of("ses", "SendEmail", {"Source": "Desk <wx@example.com>"}) == [
        ("ses:SendEmail", "arn:aws:ses:us-east-1:123456789012:identity/wx@example.com", {})
    ]
    with pytest.raises(KeyError):
        of("s3", "PutBucketPolicy", {"Bucket": "b"})


def test_the_policies_are_made_of_the_table_and_lambdas_own_needs():
    """Every action of every policy is an action of the table or one Lambda needs of the role."""
    own = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    own |= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"}
    table = {action for entry in operations.OPERATIONS.values() for action in entry.actions}
    table.add(operations.MISSING_KEY)
    for stage in STAGES:
        for function, document in policies(Stage.from_config(CONFIG, stage)).items():
            for statement in document["Statement"]:
                assert set(statement["Action"]) <= table | own, (function, statement)


def test_the_operations_read_off_the_code_are_botocores(tmp_path: Path):
    """A call added to chalicelib/aws that the table lacks fails the first test: so shown here."""
    added = (AWS / "s3.py").read_text() + "\n\ndef tag(s3):\n    s3.put_object_tagging(Bucket='b', Key='k')\n"
    assert ("s3", "PutObjectTagging") in called(added, "s3") - set(operations.OPERATIONS)
