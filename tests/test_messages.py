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
    reply = m.failure("create-gif", m.MessageError("'x' is required"), {"type": "please-create-gif"}, run_id="r")
    data = reply.to_dict()
    assert data["type"] == "did-fail-create-gif"
    assert data["errorType"] == "MessageError"
    assert data["request"] == {"type": "please-create-gif"}
    assert data["runId"] == "r"
    assert m.parse(data).action == "create-gif"
    with pytest.raises(m.MessageError):
        m.parse({"type": "did-fail-dance", "error": "x"})


# What hostile senders try (each found by a review of the contract's move to msgspec) ------------


@pytest.mark.parametrize(
    "change, named",
    [
        ({"width": "\ud800"}, "'width' holds an unpaired surrogate"),
        ({"location": {**LOC, "Key": "temps/\udfff.jpg"}}, "'location' holds an unpaired surrogate"),
        ({"note\ud800": 1}, "holds an unpaired surrogate"),
    ],
)
def test_half_a_surrogate_pair_is_no_text_and_refused(change, named):
    data = {"type": "please-create-thumbnail", **VALID["please-create-thumbnail"], **change}
    with pytest.raises(m.MessageError, match=named):
        m.parse(json.dumps(data))  # plain ASCII JSON, as SNS and SQS carry it


def test_an_extra_key_never_sets_a_field_of_what_it_is_passed_on_to():
    request = m.parse(
        {
            "type": "please-create-thumbnail",
            **VALID["please-create-thumbnail"],
            "correlation_id": "evil\r\nX-Injected: 1",
            "date_created": -1,
            "runId": "r1",
        }
    )
    assert request.extras == {"correlation_id": "evil\r\nX-Injected: 1", "date_created": -1}
    reply = m.DidCreateThumbnail.make(
        request.extras, image_id="temps", valid_time=1, location=m.Location(bucket="abc", key="k"), **request.run()
    )
    assert reply.correlation_id is None and reply.run_id == "r1" and reply.extras == {}
    assert reply.checked() is reply
    failed = m.failure("create-thumbnail", "no", request.to_dict(), extras=request.extras, **request.run())
    assert failed.correlation_id is None and failed.extras == {} and failed.checked() is failed
    assert m.parse(failed.to_json()).run_id == "r1"


@pytest.mark.parametrize("written, read", [(123, 123), (123.0, 123), ("123", 123), (" 77 ", 77)])
def test_date_created_is_read_as_senders_write_a_whole_number(written, read):
    data = {"type": "did-create-gif", **VALID["did-create-gif"], "dateCreated": written}
    assert m.parse(data).date_created == read


@pytest.mark.parametrize("written", [1.5, True, -1, "x", "1e3"])
def test_date_created_that_is_no_whole_number_is_refused(written):
    with pytest.raises(m.MessageError, match="'dateCreated'"):
        m.parse({"type": "did-create-gif", **VALID["did-create-gif"], "dateCreated": written})


def test_errors_say_what_is_wrong_in_words():
    data = {"type": "did-create-gif", **VALID["did-create-gif"], "frames": 1.5}
    with pytest.raises(m.MessageError, match="'frames' must be an integer or null, not a number"):
        m.parse(data)
    data = {"type": "please-fetch-amp-image", **VALID["please-fetch-amp-image"], "center": "a/b"}
    with pytest.raises(m.MessageError, match="'center' must be 1 to 100 letters, digits"):
        m.parse(data)


class TestSourcesAndRuns:
    """please-fetch-amp-image's optional source, runTime and basemap; did-fetch-amp-image echoes the first two."""

    FETCH = {"type": "please-fetch-amp-image", **VALID["please-fetch-amp-image"]}

    def test_the_seeds_messages_stay_valid_as_they_are(self):
        for message_type in ("please-fetch-amp-image", "did-fetch-amp-image"):
            data = {"type": message_type, "dateCreated": 5, **VALID[message_type]}
            assert m.parse(data).to_dict() == data  # nothing added to what they said
        request = m.parse(self.FETCH)
        assert (request.source, request.run_time, request.basemap) == (None, None, None)

    def test_a_forecast_frame_over_a_basemap(self):
        data = {
            **self.FETCH,
            "dateCreated": 5,
            "source": "model-wms",
            "runTime": 2345673600,
            "basemap": {"source": "xweather", "layers": ["flat-dk", "admin"]},
        }
        request = m.parse(data)
        assert isinstance(request, m.PleaseFetchAmpImage)
        assert (request.source, request.run_time) == ("model-wms", 2345673600)
        assert request.basemap == m.Basemap(source="xweather", layers=["flat-dk", "admin"])
        assert request.to_dict() == data and request.extras == {}
        reply = m.parse(
            {"type": "did-fetch-amp-image", **VALID["did-fetch-amp-image"], "source": "model-wms", "runTime": 1}
        )
        assert (reply.source, reply.run_time, reply.extras) == ("model-wms", 1, {})

    @pytest.mark.parametrize(
        "change, named",
        [
            ({"source": ""}, "'source' must be 1 to 64 letters"),
            ({"source": "a/b"}, "'source' must be 1 to 64 letters"),
            ({"source": 5}, "'source' must be a string or null, not an integer"),
            ({"runTime": "2345673600"}, "'runTime' must be an integer or null, not a string"),
            ({"runTime": True}, "'runTime'"),
            ({"runTime": -1}, "'runTime' must be at least 0"),
            ({"runTime": 2345678911}, "'runTime' must not be after validTime"),
            ({"basemap": "flat-dk"}, "'basemap' must be an object or null, not a string"),
            ({"basemap": {"layers": ["flat"]}}, "'basemap.source' is required"),
            ({"basemap": {"source": "x", "layers": []}}, "'basemap.layers' must not be empty"),
            ({"basemap": {"source": "x", "layers": ["f"], "zoom": 3}}, "'basemap.zoom' is not a known key"),
        ],
    )
    def test_each_is_typed_and_a_bad_one_named(self, change, named):
        with pytest.raises(m.MessageError) as error:
            m.parse({**self.FETCH, **change})
        assert named in str(error.value)

    def test_every_bad_one_is_named_at_once(self):
        with pytest.raises(m.MessageError) as error:
            m.parse({**self.FETCH, "source": "", "runTime": "x", "basemap": {"source": 1, "layers": ["ok"]}})
        text = str(error.value)
        assert "'source'" in text and "'runTime'" in text and "'basemap.source'" in text
