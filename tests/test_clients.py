"""The app's clients: boto3's own, from the models of the botocore they run on, with the app's
retries, timeouts and S3 signing; and the account for topic ARNs."""

from __future__ import annotations

import functools

import pytest

from chalicelib.aws import clients, reset

SERVICES = ("cloudwatch", "dynamodb", "s3", "ses", "sns", "sqs", "ssm", "sts")


@pytest.fixture
def aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    reset()  # every client and adapter made anew: none keeps a client of another setting
    yield
    reset()


def test_no_service_model_of_its_own_is_in_the_bundle():
    """Service models come from the botocore the code runs on (on Lambda, the runtime's): a model read
    by another botocore than its own can declare a protocol that botocore cannot speak."""
    from tests.conftest import ROOT

    found = [p for p in (ROOT / "chalicelib").rglob("*.json*") if p.name.startswith(("service-2", "endpoints"))]
    assert found == []


@functools.cache
def reference_sessions():
    """boto3's own session and botocore's, each reading its models once for every region's test."""
    import boto3
    import botocore.session

    return boto3.session.Session(), botocore.session.Session()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_the_clients_are_boto3s_own_with_the_apps_settings(aws_region, monkeypatch, region):
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    plain, models = reference_sessions()
    for service in SERVICES:
        made = clients._make(service)
        ref = plain.client(service, region_name=region)
        assert type(made).__name__ == type(ref).__name__
        model = models.get_service_model(service)
        assert made.meta.service_model.operation_names == model.operation_names, service
        assert made.meta.service_model.protocol == model.protocol, service
        assert (made.meta.endpoint_url, made.meta.partition) == (ref.meta.endpoint_url, ref.meta.partition)
        assert made.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
    s3 = clients._make("s3")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "weathergif-frames", "Key": "a/b c.png"})
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "/a/b%20c.png?" in url


def test_an_emulator_is_reached_by_path(aws_region, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
    s3 = clients._make("s3")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "weathergif-frames", "Key": "k.png"})
    assert url.startswith("http://127.0.0.1:4567/weathergif-frames/k.png?")
    assert clients._make("sqs").meta.endpoint_url == "http://127.0.0.1:4567"


@pytest.mark.parametrize(
    "code, permanent",
    [
        ("NoSuchKey", True),
        ("NoSuchBucket", True),
        ("AccessDenied", False),  # the role may not read it: Lambda's retries, then the failure queue (alarmed)
        ("SlowDown", False),
        ("InternalError", False),
        ("ServiceUnavailable", False),
    ],
)
def test_an_s3_read_takes_only_a_missing_object_for_good(code, permanent, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib.aws import s3
    from chalicelib.aws.s3 import Objects
    from chalicelib.errors import MissingObject
    from chalicelib.messages import Location

    class S3:
        def get_object(self, **_):
            raise ClientError({"Error": {"Code": code, "Message": code}}, "GetObject")

    monkeypatch.setattr(s3, "knows", lambda *_: True)  # a client of no botocore
    read = Objects(S3())
    with pytest.raises(MissingObject if permanent else ClientError):
        read.get(Location(bucket="weathergif-dev-frames", key="sdk/320x240/1.png"))


class TestAccount:
    """The account in topic ARNs: read off the ARN Lambda invoked the function by, STS asked only
    where there is none (local runs)."""

    class Context:
        def __init__(self, arn: str):
            self.invoked_function_arn = arn
            self.memory_limit_in_mb = 256

    @pytest.fixture(autouse=True)
    def fresh(self):
        reset()
        yield
        reset()

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:lambda:eu-west-1:210987654321:function:weathergif-dev-mediate",
            "arn:aws:lambda:eu-west-1:210987654321:function:weathergif-dev-mediate:live",  # an alias
            "arn:aws-cn:lambda:cn-north-1:210987654321:function:weathergif-dev-mediate",
        ],
    )
    def test_the_invoking_arn_names_it_without_sts(self, monkeypatch, arn):
        from chalicelib import aws, telemetry

        monkeypatch.setattr(aws, "client", lambda service: pytest.fail(f"a {service} client was made"))
        with telemetry.invocation("mediate", self.Context(arn)):
            assert aws.account_id() == "210987654321"

    @pytest.mark.parametrize(
        "arn",
        ["", "arn:aws:lambda:eu-west-1:21098765432:function:f", "arn:aws:s3:::bucket", "210987654321", None],
    )
    def test_otherwise_sts_answers(self, monkeypatch, arn):
        from chalicelib import aws

        asked = []

        class Sts:
            def get_caller_identity(self):
                asked.append(True)
                return {"Account": "123456789012"}

        monkeypatch.setattr(aws, "client", lambda service: Sts())
        aws.learn_account(self.Context(arn) if arn is not None else object())
        assert aws.account_id() == "123456789012" and asked == [True]


def test_a_conditional_put_works_on_a_botocore_that_knows_no_if_none_match(aws, monkeypatch):
    """botocore 1.34 (the python3.11 runtime's) has no IfNoneMatch on PutObject: the header is sent
    all the same (tests/test_sdk.py makes the put on that botocore; here, as if on it)."""
    from chalicelib.aws import s3

    monkeypatch.setattr(s3, "knows", lambda *_: False)
    client = clients._make("s3")  # a client of its own: the hooks on it alone
    sent: list[str | None] = []

    def note(request, **_):
        value = request.headers.get("If-None-Match")
        sent.append(value.decode() if isinstance(value, bytes) else value)

    client.meta.events.register("before-send.s3.PutObject", note)
    objects, bucket = s3.Objects(client), aws.names.frames_bucket
    assert objects.put_new(bucket, "sdk/basemap.png", b"first", "image/png") is True
    assert objects.put_new(bucket, "sdk/basemap.png", b"second", "image/png") is False
    objects.put(bucket, "sdk/frame.png", b"frame", "image/png")  # a plain put sends no condition
    assert sent == ["*", "*", None]
    assert aws.get(Bucket=bucket, Key="sdk/basemap.png") == b"first"
