"""The clients of the app's services read botocore's data cut down (chalicelib/aws/data): the same
clients as boto3 makes from botocore's own files, and the data is what the installed botocore gives."""

from __future__ import annotations

import pytest

from chalicelib.aws import clients, reset, trimmed


@pytest.fixture
def aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    reset()  # every client and adapter made anew: none keeps a client of another setting
    yield
    reset()


def test_the_data_is_what_the_installed_botocore_gives():
    written = trimmed.files()
    on_disk = {str(path.relative_to(trimmed.DATA)): path.read_text() for path in trimmed.DATA.rglob("*.json")}
    assert on_disk == written, "run: python -m chalicelib.aws.trimmed"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_the_clients_are_boto3s_own(aws_region, monkeypatch, region):
    import boto3
    from botocore.config import Config

    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    plain = boto3.session.Session()
    for service in trimmed.SERVICES:
        lean = clients._make(service)
        config = Config(signature_version="s3v4") if service == "s3" else None
        ref = plain.client(service, config=config)
        assert type(lean).__name__ == type(ref).__name__
        assert lean.meta.service_model.operation_names == ref.meta.service_model.operation_names, service
        assert (lean.meta.endpoint_url, lean.meta.partition) == (ref.meta.endpoint_url, ref.meta.partition)
        assert lean.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
    s3 = clients._make("s3")
    ref = plain.client("s3", config=Config(signature_version="s3v4"))
    wanted = {"Bucket": "weathergif-frames", "Key": "a/b c.png"}
    assert (
        s3.generate_presigned_url("get_object", Params=wanted).split("?")[0]
        == ref.generate_presigned_url("get_object", Params=wanted).split("?")[0]
    )


def test_a_service_outside_the_data_comes_from_botocores_files(aws_region, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    iam = clients._make("iam")
    assert iam.meta.endpoint_url == "https://iam.amazonaws.com"
    assert "CreateRole" in iam.meta.service_model.operation_names


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
