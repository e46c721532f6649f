"""Property tests of the REST API: generated path parameters, query strings, bodies and tokens at
every route of app.routes, through chalice.test.Client against the emulation.

What must hold for any input: no 5xx; every answer is one its route declares, valid against the
schema openapi.json declares for it; every 4xx is JSON, and the app's own carry `error` (and
`field` where a field is at fault); a read (GET, HEAD) changes nothing in the table; a
configuration that PUT accepts reads back as PUT answered it. The dead-letter routes (/failures,
being rebuilt) are only held to "no 5xx".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib.mediator import store
from chalicelib.mediator.decide import AlreadyDecided, Decision, RecordFailure
from tests import records
from tests import answers
from tests.answers import Answers
from chalicelib.messages import Location

TOKEN = "property-token"
EXAMPLES = int(os.environ.get("API_PROPERTY_EXAMPLES", "75"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # one emulated world per test, shared by its examples: what they do to it is part of what is tested
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG = {**answers.CONFIG, "email": {"to": ["desk@example.com"], "from": "Desk <wx@example.com>"}}


def routes(*methods: str) -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, entries in app.routes.items() for method in entries if method in methods)


# Strategies -------------------------------------------------------------------------------

# text a URL can carry (no unpaired surrogates); the separators of a path or query string left out
SAFE = st.characters(exclude_categories=["Cs"])
TEXT = st.text(SAFE, max_size=80)
SEGMENT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/?#"), min_size=1, max_size=80)
NUMBERS = st.one_of(
    st.integers(0, 200).map(str),
    st.integers(-(10**6), 10**20).map(str),
    st.sampled_from(["", "²", "①", "٣", "１", "۱۲", "1e2", "0x10", " 5", "5 ", "+5", "05", "0012", "9" * 5000, "1_0"]),
)


def mostly(good: str, *bad: str, other: st.SearchStrategy[str] = SEGMENT) -> st.SearchStrategy[str]:
    """The value the seeded world holds most of the time (to reach deep), else a bad one or anything."""
    return st.one_of(st.just(good), st.just(good), st.just(good), st.sampled_from(bad), other)


PARAMETERS = {
    "image_id": mostly("temps", "nope", "-temps", "..", "a" * 65, "%2F", "%"),
    "valid_time": mostly(
        "600", "1200", "0600", "6e2", "-600", "1234567890123", other=st.one_of(NUMBERS.filter(bool), SEGMENT)
    ),
    "label": mostly("80x60-cover", "32x32-contain", "0x60", "80x60-crop", "80x60-cover.jpg"),
    "run_id": mostly("run-1", "run-2", "nothing-here", "x" * 201),
}
NAMES = st.one_of(st.sampled_from(["limit", "after", "images"]), TEXT)
VALUES = st.one_of(NUMBERS, TEXT, st.sampled_from(["keep", "remove", "temps", "a", "-x"]))
QUERY = st.one_of(
    st.sampled_from(["", "limit=5", "limit=100", "after=a", "images=keep", "images=remove"]),
    st.lists(st.tuples(NAMES, VALUES), max_size=4).map(
        lambda pairs: "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs)
    ),
    st.sampled_from(["limit", "limit=", "=", "&&", "%zz=1", "limit=%ff", "limit=1&limit=2", "after=%00"]),
)
AUTHORIZATION = st.one_of(
    st.just(f"Bearer {TOKEN}"), st.sampled_from([None, "Bearer wrong", TOKEN, "Bearer ", "Basic abc"])
)
CONTENT_TYPE = st.sampled_from(
    ["application/json"] * 6
    + [None, "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "*/*"]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "layers",
        "width",
        "height",
        "center",
        "zoom",
        "interval",
        "frames",
        "every",
        "thumbnails",
        "gifDelay",
        "gifLastDelay",
        "gifLoop",
        "email",
        "linkExpiry",
        "enabled",
        "imageId",
        "gif_delay",
    ]
)
EMAIL_VALUES = st.one_of(
    JSON,
    st.sampled_from(
        [
            "desk@example.com",
            "not-an-address",
            "a@b.c, d@e.f",
            "Desk <desk@example.com>",
            "x@example.com\nBcc: y@z.com",
            "Ünïcode <ü@exämple.com>",
            "<>",
            "@",
            "a@b",
            '"quoted, name" <q@example.com>',
        ]
    ),
)
NEAR_CONFIGS = st.one_of(
    # a valid configuration with some fields replaced by anything
    st.dictionaries(FIELDS, JSON, max_size=3).map(lambda change: {**CONFIG, **change}),
    # ... or its email's
    st.fixed_dictionaries(
        {},
        optional={
            "to": st.one_of(st.lists(EMAIL_VALUES, max_size=3), EMAIL_VALUES),
            "from": EMAIL_VALUES,
            "subject": JSON | TEXT,
        },
    ).map(lambda e: {**CONFIG, "email": e}),
    # ... or its thumbnails'
    st.lists(st.dictionaries(st.sampled_from(["width", "height", "mode", "label"]), JSON, max_size=3), max_size=3).map(
        lambda t: {**CONFIG, "thumbnails": t}
    ),
)
SIDE, DELAY = st.integers(1, 4096), st.integers(20, 60_000)
VALID_CONFIGS = st.fixed_dictionaries(
    {
        "layers": st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_:.()\-]{0,20}", fullmatch=True), min_size=1, max_size=4
        ),
        "width": SIDE,
        "height": SIDE,
        "center": st.sampled_from(["tulsa,ok", "36.15,-95.99", "Paris"]),
        "zoom": st.integers(0, 22),
    },
    optional={
        "interval": st.integers(60, 86_400),
        "frames": st.integers(2, 100),
        "every": st.none() | st.integers(1, 100),
        "gifDelay": DELAY,
        "gifLastDelay": st.none() | DELAY,
        "gifLoop": st.integers(0, 65_535),
        "enabled": st.booleans(),
        "linkExpiry": st.integers(60, 604_800),
        "thumbnails": st.lists(
            st.fixed_dictionaries(
                {"width": SIDE, "height": SIDE}, optional={"mode": st.sampled_from(["cover", "contain"])}
            ),
            max_size=8,
        ),
        "email": st.none()
        | st.fixed_dictionaries(
            {"to": st.lists(st.emails(), min_size=1, max_size=3), "from": st.emails()},
            optional={
                "subject": st.text(
                    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), min_size=1, max_size=60
                )
            },
        ),
    },
)
BODIES = st.one_of(
    VALID_CONFIGS.map(lambda body: json.dumps(body).encode()),
    NEAR_CONFIGS.map(lambda body: json.dumps(body).encode()),
    JSON.map(lambda body: json.dumps(body).encode()),
    st.integers(1, 3000).flatmap(
        lambda n: st.sampled_from(
            [b"[" * n, b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b'{"layers":' + b"[" * n + b"]" * n + b"}"]
        )
    ),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"width": NaN}',
            b'{"width": 1, "width": 2}',
            b'{"center": "\\ud800"}',
            b'{"width": ' + b"9" * 5000 + b"}",
            json.dumps({**CONFIG, "center": "x" * 70_000}).encode(),
        ]
    ),
)


# The world the examples run in ------------------------------------------------------------


def seed(aws: Any) -> None:
    """An animation 'temps' with a frame, a thumbnail, a GIF, failures and a run's log (again, if deleted)."""
    from chalicelib.mediator.animation import Animation

    if store.get_animation("temps", consistent=True) is not None:
        return
    store.put_animation(Animation.from_dict({**CONFIG, "imageId": "temps"}))
    n = aws.names
    frame = aws.put(n.frames_bucket, "temps/320x240/600.png", b"frame")
    thumb = aws.put(n.thumbnails_bucket, "temps/80x60-cover/600.jpg", b"thumbnail")
    gif = aws.put(n.gifs_bucket, "temps/600.gif", b"GIF89a")
    failures = [
        RecordFailure("temps", 600, "send-email", "SES refused: desk@example.com is not verified", "run-1"),
        RecordFailure("temps", 1200, "fetch-amp-image", "answered 404", "run-2"),
    ]
    for put in [
        lambda: records.frame(store, "temps", 600, Location.from_dict(frame), "run-1"),
        lambda: records.thumbnail(store, "temps", 600, "80x60-cover", Location.from_dict(thumb)),
        lambda: records.gif(store, "temps", [600], Location.from_dict(gif), "run-1"),
        *[lambda failure=failure: store.apply(Decision(failure.action, (failure,))) for failure in failures],
    ]:
        with contextlib.suppress(AlreadyDecided):  # the records of an animation deleted before stay
            put()
    store.log_event("out", {"type": "please-send-email", "to": ["desk@example.com"], "body": "<p>hi</p>"}, "run-1")


@pytest.fixture
def world(chalice_client, aws, monkeypatch):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    seed(aws)
    answers = Answers(chalice_client, closed=False)

    class World:
        @staticmethod
        def seed() -> None:
            seed(aws)

        @staticmethod
        def request(method: str, path: str, authorization: str | None, content_type: str | None, body: bytes = b""):
            headers = {}
            if authorization is not None:
                headers["Authorization"] = authorization
            if content_type is not None:
                headers["Content-Type"] = content_type
            response = chalice_client.http.request(method, path, headers=headers, body=body)
            conforms(answers, method, path, response)
            return response

        @staticmethod
        def table() -> list[str]:
            from chalicelib.aws import client

            items, start = [], None
            while True:
                page = client("dynamodb").scan(
                    TableName=aws.names.table, **({"ExclusiveStartKey": start} if start else {})
                )
                items += [json.dumps(item, sort_keys=True) for item in page["Items"]]
                start = page.get("LastEvaluatedKey")
                if not start:
                    return sorted(items)

    return World


def url(template: str, values: dict[str, str], encode: bool, query: str) -> str:
    path = re.sub(
        r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe="") if encode else values[m.group(1)], template
    )
    return f"{path}?{query}" if query else path


def conforms(answers: Answers, method: str, path: str, response: Any) -> None:
    """What a route answers is an answer it declares, as openapi.json describes it: but Chalice's own
    405 and 415 (a method, a Content-Type a route does not take: declared by PUT /animations/{imageId}
    alone, the one route that takes a body) and the gateway's answers to a path no route has."""
    status = response.status_code
    if answers.path_of(path) is None or status == 405 or (status == 415 and not answers.declares(method, path, 415)):
        return
    answers.check(method, path, response)


def check(response: Any, template: str) -> Any:
    """No 5xx; a 4xx is JSON with the app's {error, field}, or the gateway's or Chalice's own shape."""
    status = response.status_code
    event(f"{template}: {status}")  # pytest --hypothesis-show-statistics shows what the examples reached
    assert status < 500, (template, status, response.body[:500])
    if status < 400:
        return None
    body = json.loads(response.body)
    assert isinstance(body, dict), body
    if status in (401, 403):  # API Gateway's: the authorizer's answer ("Message" for a denial), or no such route
        assert isinstance(body.get("message", body.get("Message")), str), body
    elif status in (405, 415):  # Chalice's: a method or a Content-Type the route does not take
        assert isinstance(body.get("Message"), str), body
    else:
        assert isinstance(body.get("error"), str) and body["error"], body
        if status in (400, 404, 413):
            assert isinstance(body.get("field"), str) and body["field"], body
    return body


# Properties -------------------------------------------------------------------------------


@pytest.mark.heavy
@SETTINGS
@given(data=st.data())
def test_reads_never_fail_and_change_nothing(world, data):
    template, method = data.draw(st.sampled_from(routes("GET")))
    method = data.draw(st.sampled_from([method] * 9 + ["HEAD"]))  # no route takes HEAD: 405, and nothing changes
    path = url(template, data.draw(st.builds(dict, **PARAMETERS)), data.draw(st.booleans()), data.draw(QUERY))
    world.seed()
    before = world.table()
    response = world.request(method, path, data.draw(AUTHORIZATION), data.draw(CONTENT_TYPE))
    check(response, template)
    assert world.table() == before, (method, path)


@SETTINGS
@given(data=st.data())
def test_puts_never_fail_and_what_is_accepted_reads_back(world, data):
    image_id = data.draw(st.one_of(st.sampled_from(["temps", "fresh", "other.1"]), PARAMETERS["image_id"]))
    path = url("/animations/{image_id}", {"image_id": image_id}, data.draw(st.booleans()), data.draw(QUERY))
    authorization, body = data.draw(AUTHORIZATION), data.draw(BODIES)
    world.seed()
    response = world.request("PUT", path, authorization, data.draw(CONTENT_TYPE), body)
    check(response, "/animations/{image_id}")
    if response.status_code in (200, 201):
        put = json.loads(response.body)
        got = world.request("GET", f"/animations/{put['imageId']}", f"Bearer {TOKEN}", None)
        assert got.status_code == 200 and json.loads(got.body) == put
        from chalicelib.mediator.animation import Animation

        sent = Animation.configured({**json.loads(body), "imageId": put["imageId"]})
        assert {key: value for key, value in put.items() if key != "state"} == sent.to_dict()
        assert response.status_code == 200 or image_id != "temps"  # it exists: replaced, not created


@SETTINGS
@given(data=st.data())
def test_other_writes_never_fail(world, data):
    template, method = data.draw(st.sampled_from(routes("POST", "DELETE")))
    path = url(template, data.draw(st.builds(dict, **PARAMETERS)), data.draw(st.booleans()), data.draw(QUERY))
    body = data.draw(st.one_of(st.just(b""), BODIES))
    world.seed()  # again, if an example deleted it
    check(world.request(method, path, data.draw(AUTHORIZATION), data.draw(CONTENT_TYPE), body), template)


@SETTINGS
@given(
    route=st.sampled_from(
        ["/animations", "/animations/temps/frames", "/animations/temps/gifs", "/animations/temps/failures"]
    ),
    limit=NUMBERS,
    authorization=AUTHORIZATION,
)
def test_limit_is_ascii_digits_in_range_or_400(world, route, limit, authorization):
    response = world.request("GET", f"{route}?limit={quote(limit, safe='')}", authorization, None)
    good = re.fullmatch(r"[0-9]{1,4}", limit) is not None and 1 <= int(limit) <= 100
    body = check(response, route)
    assert response.status_code == (200 if good else 400), (limit, body)
    if not good:
        assert body["field"] == "limit" and len(body["error"]) < 300


@SETTINGS
@given(data=st.data())
def test_strangers_never_see_addresses(world, data):
    """Whatever a stranger (no token, or a wrong one) reads, no email address of the configuration is in it."""
    template, _ = data.draw(st.sampled_from(routes("GET")))
    values = {**data.draw(st.builds(dict, **PARAMETERS)), "image_id": "temps"}
    response = world.request(
        "GET", url(template, values, False, ""), data.draw(st.sampled_from([None, "Bearer wrong"])), None
    )
    check(response, template)
    assert b"desk@example.com" not in response.body and b"wx@example.com" not in response.body, (
        template,
        response.body,
    )
