"""Generated messages at every handler: whatever arrives, each one answers (a did-message, or is
recorded and dropped) and nothing escapes but a transient error; a message that can never
succeed never loops. The fetcher's own generated requests are in tests/test_fetcher.py."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.mediator import handler, store

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
TYPES = [
    "please-create-thumbnail",
    "please-create-gif",
    "please-send-email",
    "please-fetch-amp-image",
    "did-fetch-amp-image",
    "did-create-thumbnail",
    "did-create-gif",
    "did-send-email",
    "did-fail-create-gif",
    "did-fail-nothing",
    "",
    "unknown",
]
FIELDS = [
    "imageId",
    "validTime",
    "location",
    "locations",
    "width",
    "height",
    "mode",
    "format",
    "delay",
    "loop",
    "to",
    "from",
    "subject",
    "body",
    "error",
    "request",
    "correlationId",
    "dateCreated",
]


@st.composite
def messages(draw: Any) -> str:
    """A JSON text: mostly objects with a known type and known fields holding anything, sometimes
    not an object at all, sometimes not JSON."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=60))
    if kind == 1:
        return json.dumps(draw(json_values))
    message = {"type": draw(st.sampled_from(TYPES))}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=8, unique=True)):
        message[field] = draw(json_values | st.sampled_from(["temps", 1_700_000_000, {"Bucket": "b-b", "Key": "k"}]))
    return json.dumps(message)


def sqs_event(body: str, index: int = 0) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
        ]
    }


@pytest.mark.parametrize("worker", ["create_thumbnail", "create_gif", "send_email"])
def test_a_worker_answers_every_generated_request_with_one_did_message(worker, aws, invoke_sns):
    @PROPERTY
    @given(body=messages())
    def check(body: str) -> None:
        result = invoke_sns(worker, body)
        assert result["type"].startswith("did-")  # a did-fail when it can never work
        aws.reply_to(result)

    check()


def test_the_upload_thumbnailer_takes_any_key(aws, chalice_client):
    @PROPERTY
    @given(
        key=st.text(alphabet=string.printable + "éü☃%+", min_size=1, max_size=80),
        suffix=st.sampled_from(["", "-400x400.jpg", "-0x10.png", "-99999x2.jpeg", ".jpg"]),
    )
    def check(key: str, suffix: str) -> None:
        event = chalice_client.events.generate_s3_event(bucket=aws.names.uploads_bucket, key=key + suffix)
        chalice_client.lambda_.invoke("thumbnail_upload", event)  # raises only if the handler raised
        for reply in aws.replies():  # skipped names answer nothing; others a did-fail (no such object)
            assert reply["type"] in ("did-fail-create-thumbnail", "did-create-thumbnail")

    check()


def test_the_mediator_records_and_drops_what_it_cannot_read(aws):
    @PROPERTY
    @given(body=messages())
    def check(body: str) -> None:
        assert handler.handle_messages(sqs_event(body)) == {"batchItemFailures": []}  # never a retry loop

    check()


def test_the_dead_letter_keeper_keeps_anything(aws):
    @PROPERTY
    @given(body=st.text(max_size=300))
    def check(body: str) -> None:
        handler.handle_dead_letters(sqs_event(body, index=len(body)))

    check()
    assert store.dead_letters()


def test_the_worker_failure_handler_drops_what_is_no_invocation_record(aws, chalice_client):
    @PROPERTY
    @given(body=messages() | st.builds(lambda v: json.dumps({"requestContext": v, "requestPayload": v}), json_values))
    def check(body: str) -> None:
        event = chalice_client.events.generate_sqs_event(
            message_bodies=[body], queue_name=aws.names.worker_failure_queue
        )
        chalice_client.lambda_.invoke("worker_failed", event)
        for reply in aws.replies():
            assert reply["type"].startswith("did-fail-")

    check()
