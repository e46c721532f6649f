"""The message contract: every type parses, serialises back, and fails clearly."""

from __future__ import annotations

import json

import pytest

from chalicelib import messages as m

LOC = {"Bucket": "weathergif-dev-frames", "Key": "temps/800x600/2345678910.png"}
VALID = {
    "please-fetch-amp-image": {
        "imageId": "temps",
        "layers": ["flat-dk", "temperatures"],
        "width": 800,
        "height": 600,
        "center": "tulsa,ok",
        "zoom": 4,
        "validTime": 2345678910,
    },
    "did-fetch-amp-image": {"imageId": "temps", "validTime": 2345678910, "location": LOC},
    "please-create-thumbnail": {"imageId": "temps", "location": LOC, "width": 200, "height": 150, "validTime": 1},
    "did-create-thumbnail": {"imageId": "temps", "validTime": 1, "location": LOC},
    "please-create-gif": {"imageId": "temps", "locations": [LOC, LOC], "validTime": 1},
    "did-create-gif": {"imageId": "temps", "validTime": 1, "location": LOC},
    "please-send-email": {"to": ["a@example.com"], "from": "wx@example.com", "subject": "Temps", "body": "<p>hi</p>"},
    "did-send-email": {"to": ["a@example.com"], "from": "wx@example.com", "subject": "Temps", "body": "<p>hi</p>"},
}


def test_the_designs_example_is_accepted_verbatim():
    text = (
        '{"type": "please-fetch-amp-image", "dateCreated": 123456789, "imageId": "temps",'
        ' "layers": ["flat-dk", "temperatures"], "width": 800, "height": 600,'
        ' "center": "tulsa,ok", "zoom": 4, "validTime": 2345678910}'
    )
    message = m.parse(text)
    assert isinstance(message, m.PleaseFetchAmpImage)
    assert (message.image_id, message.width, message.zoom, message.valid_time) == ("temps", 800, 4, 2345678910)
    assert message.to_dict() == json.loads(text)


@pytest.mark.parametrize("message_type", sorted(VALID))
def test_every_type_round_trips_with_camel_case_keys(message_type):
    data = {"type": message_type, "dateCreated": 5, **VALID[message_type]}
    message = m.parse(data)
    assert type(message) is m.MODELS[message_type]
    out = message.to_dict()
    assert {key: out[key] for key in data} == data
    assert "lastDelay" not in out
    assert m.parse(message.to_json()) == message


@pytest.mark.parametrize("message_type", sorted(VALID))
def test_every_required_key_is_named_when_missing(message_type):
    for key in VALID[message_type]:
        data = {"type": message_type, **{k: v for k, v in VALID[message_type].items() if k != key}}
        with pytest.raises(m.MessageError, match=f"'{key}' is required"):
            m.parse(data)


def test_date_created_defaults_to_now():
    message = m.parse({"type": "did-create-gif", **VALID["did-create-gif"]})
    import time

    assert abs(message.date_created - time.time()) < 5


def test_extra_keys_pass_through_untouched():
    data = {"type": "did-create-gif", **VALID["did-create-gif"], "runId": "r-1", "trace": {"a": [1, 2]}}
    message = m.parse(data)
    assert message.extras == {"trace": {"a": [1, 2]}} and message.run_id == "r-1"  # the run ids are fields
    assert message.to_dict()["trace"] == {"a": [1, 2]} and message.to_dict()["runId"] == "r-1"


def test_every_key_the_contract_reads_is_typed():
    """What crosses a boundary and is read is a field: nothing the mediator or a worker reads is an extra."""
    frame = m.parse(
        {
            "type": "did-fetch-amp-image",
            "imageId": "t",
            "validTime": 600,
            "requestedValidTime": 300,
            "location": {"Bucket": "b-b", "Key": "k"},
            "correlationId": "run-1",
        }
    )
    assert (frame.requested_valid_time, frame.correlation_id, frame.extras) == (300, "run-1", {})
    thumb = m.parse(
        {
            "type": "did-create-thumbnail",
            "imageId": "upload",
            "validTime": 1,
            "label": "40x30-cover",
            "location": {"Bucket": "b-b", "Key": "k"},
            "source": {"Bucket": "u-p", "Key": "c-4x4.jpg"},
        }
    )
    assert thumb.label == "40x30-cover" and thumb.source.key == "c-4x4.jpg" and thumb.extras == {}
    with pytest.raises(m.MessageError, match="correlationId"):
        m.parse(
            {"type": "did-create-gif", **VALID["did-create-gif"], "correlationId": 42}
        )  # a run id that is none is refused, not carried on


@pytest.mark.parametrize(
    "change, named",
    [
        ({"width": "800"}, "'width' must be an integer, not a string"),
        ({"width": 800.5}, "'width'"),
        ({"width": True}, "'width'"),
        ({"width": 0}, "'width' must be at least 1"),
        ({"height": 5000}, "'height' must be at most 4096"),
        ({"layers": []}, "'layers'"),
        ({"layers": "radar"}, "'layers' must be an array, not a string"),
        ({"layers": ["a/../b"]}, "'layers.0'"),
        ({"imageId": "../etc"}, "'imageId'"),
        ({"center": "x/y?z"}, "'center'"),
        ({"validTime": -1}, "'validTime'"),
    ],
)
def test_wrong_keys_name_the_field(change, named):
    data = {"type": "please-fetch-amp-image", **VALID["please-fetch-amp-image"], **change}
    with pytest.raises(m.MessageError) as error:
        m.parse(data)
    assert named in str(error.value)
    assert str(error.value).startswith("please-fetch-amp-image: ")


def test_a_bad_location_is_named_by_its_path():
    data = {"type": "please-create-gif", **VALID["please-create-gif"], "locations": [LOC, {"Bucket": "b"}]}
    with pytest.raises(m.MessageError, match=r"'locations\.1\.Key' is required"):
        m.parse(data)


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"type": "please-dance"}, "unknown message type 'please-dance'"),
        ({"imageId": "x"}, "'type' is required"),
        ([1, 2], "a message is a JSON object, not list"),
        ("{not json", "not JSON"),
    ],
)
def test_unusable_messages(data, reason):
    with pytest.raises(m.MessageError, match=reason):
        m.parse(data)


def test_a_worker_refuses_another_workers_message():
    with pytest.raises(m.MessageError, match="expected a please-create-gif message"):
        m.parse({"type": "please-create-thumbnail", **VALID["please-create-thumbnail"]}, expect=m.PleaseCreateGif)


@pytest.mark.parametrize("field", ["subject", "from"])
def test_no_header_injection_through_line_breaks(field):
    data = {"type": "please-send-email", **VALID["please-send-email"], field: "x@example.com\r\nBcc: all@example.com"}
    with pytest.raises(m.MessageError, match=f"'{field}' must not contain line breaks"):
        m.parse(data)


def test_optional_keys_have_defaults_and_bounds():
    gif = m.parse({"type": "please-create-gif", **VALID["please-create-gif"]})
    assert (gif.delay, gif.loop, gif.last_delay) == (250, 0, None)
    thumb = m.parse({"type": "please-create-thumbnail", **VALID["please-create-thumbnail"]})
    assert (thumb.mode, thumb.format) == ("cover", "auto")
    with pytest.raises(m.MessageError, match="'mode'"):
        m.parse({"type": "please-create-thumbnail", **VALID["please-create-thumbnail"], "mode": "stretch"})
    with pytest.raises(m.MessageError, match="'delay'"):
        m.parse({"type": "please-create-gif", **VALID["please-create-gif"], "delay": 5})


def test_failure_replies_carry_the_error_and_the_request():
    reply = m.failure("create-gif", m.MessageError("'x' is required"), {"type": "please-create-gif"}, runId="r")
    data = reply.to_dict()
    assert data["type"] == "did-fail-create-gif"
    assert data["errorType"] == "MessageError"
    assert data["request"] == {"type": "please-create-gif"}
    assert data["runId"] == "r"
    assert m.parse(data).action == "create-gif"
    with pytest.raises(m.MessageError):
        m.parse({"type": "did-fail-dance", "error": "x"})
