"""The REST API through chalice.test.Client against moto: every route, every error, authentication."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pytest

from chalicelib.mediator import store
from chalicelib.mediator.decide import Decision, FinishGif, RecordFailure
from tests import records
from chalicelib.messages import Location

from tests.answers import AUTH, CONFIG

TOKEN = AUTH["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def api(chalice_client, monkeypatch):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.delenv("PUBLIC_URL", raising=False)  # links start at the address asked

    def call(method: str, path: str, body=None, headers=None):
        response = chalice_client.http.request(
            method,
            path,
            headers=headers if headers is not None else AUTH,
            body=json.dumps(body).encode() if body is not None else b"",
        )
        try:
            payload = json.loads(response.body) if response.body else None
        except ValueError:
            payload = response.body.decode()
        return response.status_code, payload

    return call


def create(api, image_id="temps", **changes):
    status, body = api("PUT", f"/animations/{image_id}", {**CONFIG, **changes})
    assert status in (200, 201), body
    return body


class TestAnimations:
    def test_create_get_replace_list(self, api):
        status, body = api("PUT", "/animations/temps", CONFIG)
        assert status == 201 and body["imageId"] == "temps" and body["state"]["frameCount"] == 0
        assert body["interval"] == 600 and body["enabled"] is True
        status, body = api("PUT", "/animations/temps", {**CONFIG, "zoom": 7})
        assert status == 200 and body["zoom"] == 7
        assert api("GET", "/animations/temps")[1]["zoom"] == 7

    def test_list_is_paginated(self, api):
        for name in ("c", "a", "b"):
            create(api, name)
        seen, after = [], ""
        for _ in range(5):
            status, page = api("GET", f"/animations?limit=2{after}")
            assert status == 200 and len(page["animations"]) <= 2
            seen += [a["imageId"] for a in page["animations"]]
            if page["next"] is None:
                break
            after = f"&after={page['next']}"
        assert sorted(seen) == ["a", "b", "c"] and len(seen) == 3  # each once, in shard order
        assert api("GET", "/animations?after=b")[0] == 400  # not a place in the listing

    @pytest.mark.parametrize(
        "change, field",
        [
            ({"width": 0}, "width"),
            ({"width": "wide"}, "width"),
            ({"zoom": 40}, "zoom"),
            ({"interval": 5}, "interval"),
            ({"frames": 1}, "frames"),
            ({"frames": 4, "every": 9}, None),
            ({"thumbnails": [{"width": 5000, "height": 10}]}, "thumbnails.0.width"),
            ({"email": {"to": ["x@example.com\nBcc: y@example.com"], "from": "a@example.com"}}, "email.to.0"),
            ({"layers": []}, "layers"),
            ({"color": "blue"}, "color"),
            ({"imageId": "other"}, "imageId"),
        ],
    )
    def test_bad_bodies_name_the_field(self, api, change, field):
        status, body = api("PUT", "/animations/temps", {**CONFIG, **change})
        assert status == 400, body
        assert body["error"]
        if field:
            assert body["field"] == field
        assert api("GET", "/animations/temps")[0] == 404  # nothing half-written

    @pytest.mark.parametrize(
        "raw, reason", [(b"", "a JSON object is required"), (b"{nope", "not JSON"), (b"[1]", "must be a JSON object")]
    )
    def test_bodies_that_are_not_objects(self, api, chalice_client, raw, reason):
        response = chalice_client.http.request("PUT", "/animations/temps", headers=AUTH, body=raw)
        assert response.status_code == 400 and reason in json.loads(response.body)["error"]

    def test_unknown_and_malformed_ids(self, api):
        assert api("GET", "/animations/nope") == (404, {"error": "no animation 'nope'", "field": "imageId"})
        status, body = api("GET", "/animations/..%2Fetc")
        assert status in (400, 404)
        status, body = api("GET", "/animations?limit=0")
        assert status == 400 and body["field"] == "limit"

    def test_delete_keeps_or_removes_images(self, api, aws, monkeypatch):
        from chalicelib.mediator import service

        monkeypatch.setattr(service, "start", lambda image_id: None)  # no window asked for: one frame each
        create(api, "keep")
        create(api, "drop")
        for image_id in ("keep", "drop"):
            aws.put(aws.names.frames_bucket, f"{image_id}/320x240/600.png", b"x")
            records.frame(
                store, image_id, 600, Location(bucket=aws.names.frames_bucket, key=f"{image_id}/320x240/600.png"), None
            )
        assert api("DELETE", "/animations/keep")[1]["removed"] == {"records": 0, "objects": 0}
        status, body = api("DELETE", "/animations/drop?images=remove")
        assert status == 200 and body["removed"] == {"records": 2, "objects": 1}
        assert aws.keys(aws.names.frames_bucket) == ["keep/320x240/600.png"]
        assert api("GET", "/animations/keep")[0] == 404
        assert api("DELETE", "/animations/keep")[0] == 404
        assert api("DELETE", "/animations/x?images=maybe")[1]["field"] == "images"


class TestStrictInput:
    """Every malformed input is a 4xx naming the field, never a 500; no type is coerced."""

    @pytest.mark.parametrize(
        "change, field",
        [
            ({"width": True}, "width"),
            ({"width": "800"}, "width"),
            ({"width": 800.0}, "width"),
            ({"width": 800.5}, "width"),
            ({"zoom": None}, "zoom"),
            ({"enabled": "yes"}, "enabled"),
            ({"enabled": 1}, "enabled"),
            ({"every": "2"}, "every"),
            ({"layers": "radar"}, "layers"),
            ({"layers": [1]}, "layers.0"),
            ({"thumbnails": [{"width": True, "height": 60}]}, "thumbnails.0.width"),
            ({"thumbnails": [{"width": 80, "height": "60"}]}, "thumbnails.0.height"),
            ({"thumbnails": {"width": 80, "height": 60}}, "thumbnails"),
            ({"gifLoop": False}, "gifLoop"),
            ({"frames": 4, "every": 9}, "every"),
            ({"gif_delay": 100}, "gif_delay"),  # camelCase keys only
            ({"email": {"to": ["not-an-address"], "from": "wx@example.com"}}, "email.to.0"),
            ({"email": {"to": ["a@example.com, b@example.com"], "from": "wx@example.com"}}, "email.to.0"),
            ({"email": {"to": ["desk@example.com"], "from": "Weather Desk"}}, "email.from"),
            ({"email": {"to": ["desk@example.com"], "from": "wx@example.com", "subject": 5}}, "email.subject"),
            ({"email": {"to": "desk@example.com", "from": "wx@example.com"}}, "email.to"),
            ({"email": {"to": [True], "from": "wx@example.com"}}, "email.to.0"),
        ],
    )
    def test_types_are_strict_and_addresses_checked(self, api, change, field):
        status, body = api("PUT", "/animations/temps", {**CONFIG, **change})
        assert (status, body["field"]) == (400, field), body
        assert api("GET", "/animations/temps")[0] == 404

    def test_display_names_are_allowed_and_addresses_kept_as_given(self, api):
        email = {"to": ["Forecast Desk <desk@example.com>", "ops@example.com"], "from": "Weather Desk <wx@example.com>"}
        status, body = api("PUT", "/animations/temps", {**CONFIG, "email": email})
        assert status == 201 and body["email"]["to"] == email["to"] and body["email"]["from"] == email["from"]

    def test_a_stored_configuration_reads_back_as_it_was_put(self, api):
        config = {
            **CONFIG,
            "gifLastDelay": None,
            "every": 1,
            "enabled": False,
            "email": {"to": ["d@example.com"], "from": "w@example.com"},
        }
        put = api("PUT", "/animations/temps", config)[1]
        got = api("GET", "/animations/temps")[1]
        assert got == put and got["gifLastDelay"] is None and got["every"] == 1 and got["enabled"] is False

    @pytest.mark.parametrize(
        "raw, field, reason",
        [
            (b"[" * 1000, "body", "nested too deeply"),
            (b'{"a":' * 1000 + b"1" + b"}" * 1000, "body", "nested too deeply"),
            (
                b'{"layers": ' + b"[" * 50 + b"]" * 50 + b"}",
                "layers.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
                "nested too deeply",
            ),
            (b'{"width": 1, "width": 2}', "width", "given twice"),
            (b'{"email": {"to": [], "to": []}}', "email.to", "given twice"),
            (b'{"width": NaN}', "body", "not JSON"),
            (b'{"width": Infinity}', "body", "not JSON"),
            (b'{"width": ' + b"9" * 5000 + b"}", "body", "not JSON"),
            (b'{"center": "\\ud800"}', "center", "unpaired surrogate"),
            (b'{"\\udc00": 1}', "body", "unpaired surrogate"),
            (b"\xff\xfe\x00", "body", "not JSON"),
            (b'"a string"', "body", "must be a JSON object"),
            (b"null", "body", "must be a JSON object"),
        ],
    )
    def test_malformed_bodies(self, api, chalice_client, raw, field, reason):
        response = chalice_client.http.request("PUT", "/animations/temps", headers=AUTH, body=raw)
        body = json.loads(response.body)
        assert (response.status_code, body["field"]) == (400, field), body
        assert reason in body["error"]

    def test_a_body_over_64_kb_is_413(self, api, chalice_client):
        raw = json.dumps({**CONFIG, "center": "x" * 70_000}).encode()
        response = chalice_client.http.request("PUT", "/animations/temps", headers=AUTH, body=raw)
        assert response.status_code == 413 and json.loads(response.body)["field"] == "body"

    @pytest.mark.parametrize(
        "path", ["/animations", "/animations/temps/frames", "/animations/temps/gifs", "/animations/temps/failures"]
    )
    @pytest.mark.parametrize(
        "query, field",
        [
            ("limit=%C2%B2", "limit"),  # '²'
            ("limit=%E2%91%A0", "limit"),  # '①'
            ("limit=%D9%A3", "limit"),  # an Arabic-Indic three
            ("limit=%EF%BC%91", "limit"),  # a fullwidth one
            ("limit=" + "9" * 5000, "limit"),
            ("limit=", "limit"),
            ("limit", "limit"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=+5", "limit"),
            ("limit=5&limit=6", "limit"),
            ("lmit=5", "lmit"),
            ("=5", "query"),
        ],
    )
    def test_malformed_query_strings(self, api, path, query, field):
        create(api)
        status, body = api("GET", f"{path}?{query}", headers={})
        assert (status, body["field"]) == (400, field), body
        assert len(body["error"]) < 300

    def test_other_parameters(self, api):
        create(api)
        assert api("GET", "/animations?after=-x")[1]["field"] == "after"
        assert api("GET", "/animations?after=a&after=b")[1]["field"] == "after"
        assert api("DELETE", "/animations/temps?images=keep&images=remove")[1]["field"] == "images"
        assert api("DELETE", "/animations/temps?image=remove")[1]["field"] == "image"
        assert api("GET", "/animations/temps/frames?limit=0012")[0] == 200  # ASCII digits, up to 4
        assert api("GET", "/animations/temps?cachebuster=1")[0] == 200  # a route that takes none ignores them

    def test_concurrent_creates_answer_201_once(self, api, chalice_client):
        import threading

        start, statuses = threading.Barrier(10), []

        def put():
            start.wait()
            statuses.append(api("PUT", "/animations/race", CONFIG)[0])

        threads = [threading.Thread(target=put) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200] * 9 + [201]

    def test_the_store_tells_exactly_one_concurrent_writer_it_created(self, aws):
        from concurrent.futures import ThreadPoolExecutor

        from chalicelib.mediator.animation import Animation

        animation = Animation.from_dict({**CONFIG, "imageId": "race"})
        with ThreadPoolExecutor(10) as pool:
            created = list(pool.map(lambda _: store.put_animation(animation), range(10)))
        assert created.count(True) == 1
        assert store.put_animation(animation) is False

    def test_replacing_keeps_the_counts(self, api):
        create(api)
        records.frame(store, "temps", 600, Location(bucket="b-b", key="temps/600.png"), None)
        status, body = api("PUT", "/animations/temps", {**CONFIG, "zoom": 3})
        assert status == 200 and body["state"]["frameCount"] == 1


class TestActions:
    def test_fetch_now_answers_202_with_the_request(self, api):
        create(api)
        status, body = api("POST", "/animations/temps/fetch")
        assert status == 202 and body["asked"]["type"] == "please-fetch-amp-image"
        assert body["asked"]["validTime"] % 60 == 0
        assert api("POST", "/animations/temps/fetch")[0] == 409  # the same minute, asked twice

    def test_fetch_now_of_a_disabled_animation_conflicts(self, api):
        create(api, enabled=False)
        status, body = api("POST", "/animations/temps/fetch")
        assert status == 409 and "disabled" in body["error"]

    def test_gif_now_needs_frames_and_never_builds_a_window_twice(self, api, aws):
        create(api)
        status, body = api("POST", "/animations/temps/gif")
        assert status == 409 and "only 0 of 2 frames so far" in body["error"]
        for t in (600, 1200):
            records.frame(store, "temps", t, Location(bucket="b-b", key=f"temps/{t}.png"), None)
        status, body = api("POST", "/animations/temps/gif")
        assert status == 202 and body["asked"]["validTime"] == 1200 and len(body["asked"]["locations"]) == 2
        status, body = api("POST", "/animations/temps/gif")  # asked for and sent: the worker is at it
        assert status == 409 and "is being made" in body["error"]
        done = Location(bucket="b-b", key="temps/1200.gif")
        store.apply(Decision("d", (FinishGif("temps", 1200, done, None),)))
        status, body = api("POST", "/animations/temps/gif")
        assert status == 409 and "exists already: no newer frame since" in body["error"]

    def test_gif_now_of_a_disabled_animation_says_so(self, api, aws):
        create(api, enabled=False)
        for t in (600, 1200):
            records.frame(store, "temps", t, Location(bucket="b-b", key=f"temps/{t}.png"), None)
        status, body = api("POST", "/animations/temps/gif")
        assert status == 409 and "disabled" in body["error"]

    def test_unknown_animations(self, api):
        assert api("POST", "/animations/nope/fetch")[0] == 404
        assert api("POST", "/animations/nope/gif")[0] == 404


class TestAuthentication:
    @pytest.mark.parametrize(
        "method, path",
        [
            ("PUT", "/animations/temps"),
            ("DELETE", "/animations/temps"),
            ("POST", "/animations/temps/fetch"),
            ("POST", "/animations/temps/gif"),
            ("POST", "/failures/redrive"),
        ],
    )
    def test_changes_need_the_token(self, api, method, path):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN[:-1]}):
            status, _ = api(method, path, CONFIG, headers={**headers, "Content-Type": "application/json"})
            assert status in (401, 403), (headers, status)
        assert api("GET", "/animations/temps")[0] == 404  # nothing was created

    def test_no_token_configured_allows_no_changes(self, api, monkeypatch):
        monkeypatch.setenv("API_TOKEN", "")
        assert api("PUT", "/animations/temps", CONFIG)[0] in (401, 403)

    def test_an_anonymous_read_reads_no_secret(self, api, monkeypatch):
        """A public read checks the token only when a request carries one (each check may cost a
        call to SSM)."""
        from chalicelib.api import auth

        create(api)
        monkeypatch.setattr(auth, "api_token", lambda: pytest.fail("read the token for a request that carries none"))
        assert api("GET", "/animations/temps", headers={})[0] == 200

    def test_the_token_can_come_from_a_secure_parameter(self, api, monkeypatch):
        from chalicelib.aws import parameters
        from chalicelib.aws import client

        monkeypatch.setenv("API_TOKEN", "")
        monkeypatch.setenv("API_TOKEN_PARAMETER", "/weathergif/dev/api-token")
        parameters.cache_clear()  # secrets are read once per container
        client("ssm").put_parameter(Name="/weathergif/dev/api-token", Type="SecureString", Value=TOKEN)
        assert api("PUT", "/animations/temps", CONFIG)[0] == 201
        parameters.cache_clear()  # secrets are read once per container

    def test_reading_is_open(self, api):
        create(api)
        assert api("GET", "/animations/temps", headers={})[0] == 200


class TestWhoReadsWhat:
    """A stranger sees the gallery; addresses, email failures' reasons and run timelines need the token."""

    EMAIL = {"to": ["desk@example.com"], "from": "Weather Desk <wx@example.com>"}

    @pytest.mark.parametrize(
        "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN[:-1]}"}]
    )
    def test_recipients_only_with_the_token(self, api, headers):
        create(api, email=self.EMAIL)
        assert "email" not in api("GET", "/animations/temps", headers=headers)[1]
        assert "email" not in api("GET", "/animations", headers=headers)[1]["animations"][0]
        assert api("GET", "/animations/temps")[1]["email"]["to"] == self.EMAIL["to"]
        assert api("GET", "/animations")[1]["animations"][0]["email"]["from"] == self.EMAIL["from"]

    def test_a_runs_timeline_needs_the_token(self, api):
        create(api)
        store.log_event("out", {"type": "please-send-email", "to": ["desk@example.com"], "body": "<p>hi</p>"}, "run-1")
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert api("GET", "/runs/run-1", headers=headers)[0] in (401, 403)
        status, body = api("GET", "/runs/run-1")
        assert status == 200 and body["events"][0]["message"]["to"] == ["desk@example.com"]

    def test_an_email_failures_reason_only_with_the_token(self, api, aws):
        put_images(api, aws)  # a GIF to 600, whose email fails
        store.apply(
            Decision(
                "x",
                (
                    RecordFailure(
                        "temps", 600, "send-email", "SES refused the email: desk@example.com is not verified", "run-1"
                    ),
                ),
            )
        )
        store.apply(Decision("y", (RecordFailure("temps", 1200, "fetch-amp-image", "answered 404", "run-2"),)))
        public = {f["action"]: f for f in api("GET", "/animations/temps/failures", headers={})[1]["failures"]}
        assert public["send-email"]["error"] is None and "token" in public["send-email"]["errorHidden"]
        assert public["fetch-amp-image"]["error"] == "answered 404"
        private = {f["action"]: f for f in api("GET", "/animations/temps/failures")[1]["failures"]}
        assert "desk@example.com" in private["send-email"]["error"] and "errorHidden" not in private["send-email"]

    def test_reads_change_nothing(self, api, aws):
        from chalicelib.aws import client

        put_images(api, aws)

        def items():
            return sorted(
                json.dumps(i, sort_keys=True) for i in client("dynamodb").scan(TableName=aws.names.table)["Items"]
            )

        before = items()
        for path in [
            "/",
            "/health",
            "/openapi.json",
            "/sources",
            "/animations",
            "/animations/temps",
            "/animations/temps/frames",
            "/animations/temps/gifs",
            "/animations/temps/failures",
            "/runs/run-1",
            "/animations/temps/gifs/600/image",
            "/animations/temps/frames/600/image",
            "/animations/temps/frames/600/thumbnails/80x60-cover",
        ]:
            for headers in ({}, AUTH):
                assert api("GET", path, headers=headers)[0] < 500
        assert items() == before


class TestResults:
    def test_frames_gifs_failures_and_a_runs_timeline(self, api, aws):
        create(api)
        thumb = Location(bucket=aws.names.thumbnails_bucket, key="temps/80x60-cover/600.jpg")
        records.frame(store, "temps", 600, Location(bucket=aws.names.frames_bucket, key="temps/600.png"), "run-1")
        records.thumbnail(store, "temps", 600, "80x60-cover", thumb)
        store.apply(Decision("x", (RecordFailure("temps", 1200, "fetch-amp-image", "answered 404", "run-2"),)))
        store.log_event("out", {"type": "please-fetch-amp-image"}, "run-1")
        store.log_event("in", {"type": "did-fetch-amp-image"}, "run-1")

        [frame] = api("GET", "/animations/temps/frames")[1]["frames"]
        assert frame["validTime"] == 600 and frame["time"] == "1970-01-01T00:10:00Z" and frame["runId"] == "run-1"
        assert frame["thumbnails"] == {
            "80x60-cover": "http://localhost/animations/temps/frames/600/thumbnails/80x60-cover"
        }
        assert frame["url"] == "http://localhost/animations/temps/frames/600/image"  # routes that redirect
        assert api("GET", "/animations/temps/gifs")[1]["gifs"] == []
        [failure] = api("GET", "/animations/temps/failures")[1]["failures"]
        assert (failure["action"], failure["error"], failure["runId"]) == ("fetch-amp-image", "answered 404", "run-2")
        run = api("GET", "/runs/run-1")[1]
        assert [(e["direction"], e["type"]) for e in run["events"]] == [
            ("out", "please-fetch-amp-image"),
            ("in", "did-fetch-amp-image"),
        ]
        assert run["events"][0]["sinceStartMs"] == 0 and run["events"][1]["sincePreviousMs"] >= 0
        assert api("GET", "/runs/nothing-here")[0] == 404

    def test_links_redirect_to_the_image_in_the_emulation(self, api, aws, chalice_client):
        import urllib.request

        create(api)
        aws.put(aws.names.frames_bucket, "temps/600.png", b"frame bytes")
        records.frame(store, "temps", 600, Location(bucket=aws.names.frames_bucket, key="temps/600.png"), None)
        [frame] = api("GET", "/animations/temps/frames")[1]["frames"]
        response = chalice_client.http.get(urlsplit(frame["url"]).path)
        assert response.status_code == 302
        assert urllib.request.urlopen(response.headers["Location"], timeout=10).read() == b"frame bytes"


def put_images(api, aws) -> dict[str, bytes]:
    """An animation 'temps' with a frame at 600, its 80x60-cover thumbnail and a finished GIF to 600."""
    create(api)
    n = aws.names
    frame = aws.put(n.frames_bucket, "temps/320x240/600.png", b"frame bytes")
    thumb = aws.put(n.thumbnails_bucket, "temps/80x60-cover/600.jpg", b"thumbnail bytes")
    gif = aws.put(n.gifs_bucket, "temps/600.gif", b"GIF89a and more")
    records.frame(store, "temps", 600, Location.from_dict(frame), "run-1")
    records.thumbnail(store, "temps", 600, "80x60-cover", Location.from_dict(thumb))
    records.gif(store, "temps", [600], Location.from_dict(gif))
    return {"frame": b"frame bytes", "thumbnail": b"thumbnail bytes", "gif": b"GIF89a and more"}


SIGNED = ("X-Amz-Security-Token", "X-Amz-Credential", "X-Amz-Signature")


class TestProgress:
    """A card's way to its next GIF: frames k of N (then K new of `every`), when the next frame is
    due on the grid, when the next GIF is expected."""

    def test_a_new_animation_counts_toward_its_first_gif(self, api, aws):
        create(api, frames=3, interval=600)
        records.frame(store, "temps", 1_800_000_000, Location(bucket="b-b", key="temps/a.png"), None)
        [card] = api("GET", "/summary")[1]["animations"]
        progress = card["progress"]
        assert (progress["rule"], progress["have"], progress["need"], progress["gifDue"]) == ("first", 1, 3, False)
        assert progress["newestFrame"] == "2027-01-15T08:00:00Z"
        assert progress["nextFrame"] and progress["nextGif"] > progress["nextFrame"]

    def test_a_forecasts_card_counts_its_newest_run_and_names_its_work(self, api, monkeypatch):
        from datetime import datetime

        from chalicelib.mediator import service
        from chalicelib.mediator.store import keys
        from chalicelib.mediator.ticks import TickSlice

        stage = {"default": "obs", "sources": {"obs": {"preset": "demo"}, "fc": {"preset": "demo-forecast"}}}
        monkeypatch.setenv("MAP_SOURCES", json.dumps(stage))
        create(api, kind="forecast", source="fc", interval=900, frames=4)
        now = int(time.time())  # its newest run asked for at once: the tick's slice the API put on the queue
        service.run_slice(TickSlice(kind="fetch", time=now, shard=keys.shard("temps"), only=["temps"]))
        [card] = api("GET", "/summary")[1]["animations"]
        progress = card["progress"]
        assert (progress["rule"], progress["have"], progress["need"], progress["failed"]) == ("run", 0, 4, 0)
        run = int(datetime.fromisoformat(progress["run"].replace("Z", "+00:00")).timestamp())
        assert card["runId"] == f"forecast-temps-{run}"  # the run's timeline: its fetches, frames and GIF

    def test_the_estimate_follows_the_interval_grid(self):
        from chalicelib.api.animations import progress
        from chalicelib.mediator.animation import Animation
        from chalicelib.mediator.decide import AnimationState

        config = Animation(image_id="t", layers=["radar"], width=8, height=8, center="0,0", zoom=1, frames=12)
        now = 1_800_000_000 + 90  # 90 s into a 10-minute slot asked for already
        seven = AnimationState(config, frame_count=7, last_requested=1_800_000_000, newest_frame=1_800_000_000)
        p = progress(seven, now)
        assert (p["have"], p["need"]) == (7, 12)
        assert p["frameAgeSeconds"] == 90  # the newest frame's age, which the stale alarm watches
        assert p["nextFrame"] == "2027-01-15T08:10:00Z"  # the next slot
        assert p["nextGif"] == "2027-01-15T08:50:00Z"  # five more frames: the fifth is valid 40 min after it
        due = progress(seven._replace(last_requested=1_800_000_000 - 600), now)
        assert due["nextFrame"] == "2027-01-15T08:00:00Z"  # this slot's frame is due, not asked for yet
        later = AnimationState(config.replace(every=3), frame_count=14, gif_frame_count=13, latest_gif=1_799_999_400)
        p = progress(later, now)
        assert (p["rule"], p["have"], p["need"]) == ("every", 1, 3)
        off = progress(seven._replace(animation=config.replace(enabled=False)), now)
        assert off["nextFrame"] is None and off["nextGif"] is None and off["have"] == 7
        full = progress(seven._replace(frame_count=12), now)
        assert full["gifDue"] is True and full["nextGif"] is None


class TestGifHistory:
    def test_each_gif_says_what_became_of_its_email(self, api, aws):
        put_images(api, aws)  # a GIF to 600, made with no email configured
        for t in (1200, 1800):
            records.frame(store, "temps", t, Location(bucket="b-b", key=f"temps/{t}.png"), None)
        records.gif(store, "temps", [600, 1200], Location(bucket="b-b", key="temps/1200.gif"))
        store.apply(
            Decision("f", (RecordFailure("temps", 1200, "send-email", "SES: desk@example.com is not verified", "r"),))
        )
        records.gif_claim(store, "temps", [1200, 1800])
        emails = {g["validTime"]: g["email"] for g in api("GET", "/animations/temps/gifs")[1]["gifs"]}
        assert emails[600] == {"status": "none", "detail": "no email was configured when it was made"}
        assert emails[1200] == {"status": "failed", "detail": "SES: desk@example.com is not verified"}
        assert emails[1800] == {"status": "waiting", "detail": "the GIF is not made yet"}
        public = {g["validTime"]: g["email"] for g in api("GET", "/animations/temps/gifs", headers={})[1]["gifs"]}
        assert public[1200]["status"] == "failed" and public[1200]["detail"] is None
        assert "token" in public[1200]["detailHidden"]


class TestImageLinks:
    def test_links_carry_no_credentials_and_redirect_to_the_exact_bytes(self, api, aws, chalice_client):
        import os
        import urllib.request

        assert os.environ["AWS_SESSION_TOKEN"]  # session credentials, as on Lambda: they sign every presigned URL
        data = put_images(api, aws)
        [frame] = api("GET", "/animations/temps/frames")[1]["frames"]
        [gif] = api("GET", "/animations/temps/gifs")[1]["gifs"]
        links = {"frame": frame["url"], "thumbnail": frame["thumbnails"]["80x60-cover"], "gif": gif["url"]}
        assert links["gif"] == "http://localhost/animations/temps/gifs/600/image"
        for name, link in links.items():
            assert not any(word in link for word in SIGNED), link
            response = chalice_client.http.get(urlsplit(link).path)
            assert response.status_code == 302, (name, response.body)
            assert response.headers["Cache-Control"] == "private, max-age=840"
            location = response.headers["Location"]
            assert "X-Amz-Expires=900" in location and "X-Amz-Security-Token=" in location  # signed now, briefly
            assert urllib.request.urlopen(location, timeout=10).read() == data[name], name

    def test_missing_images_are_404(self, api, aws):
        put_images(api, aws)
        records.gif_claim(store, "temps", [600, 1200], "count")  # claimed, not made
        for path, field in [
            ("/animations/temps/gifs/1800/image", "validTime"),
            ("/animations/temps/gifs/1200/image", "validTime"),  # not done yet
            ("/animations/temps/frames/1200/image", "validTime"),
            ("/animations/temps/frames/1200/thumbnails/80x60-cover", "validTime"),
            ("/animations/temps/frames/600/thumbnails/32x32-cover", "label"),
            ("/animations/other/gifs/600/image", "validTime"),
        ]:
            status, body = api("GET", path, headers={})
            assert (status, body["field"]) == (404, field), (path, body)

    @pytest.mark.parametrize(
        "path, field",
        [
            ("/animations/temps/gifs/abc/image", "validTime"),
            ("/animations/temps/gifs/0600/image", "validTime"),
            ("/animations/temps/gifs/1234567890123/image", "validTime"),
            ("/animations/temps/gifs/-600/image", "validTime"),
            ("/animations/temps/frames/6e2/image", "validTime"),
            ("/animations/temps/frames/600/thumbnails/80x60-crop", "label"),
            ("/animations/temps/frames/600/thumbnails/..", "label"),
            ("/animations/temps/frames/600/thumbnails/80x60-cover.jpg", "label"),
            ("/animations/temps/frames/600/thumbnails/0x60", "label"),
            ("/animations/-temps/frames/600/image", "imageId"),
        ],
    )
    def test_malformed_parameters_are_400(self, api, aws, path, field):
        put_images(api, aws)
        status, body = api("GET", path, headers={})
        assert (status, body["field"]) == (400, field), body

    def test_links_survive_deleting_the_animation_with_its_images_kept(self, api, aws, chalice_client):
        put_images(api, aws)
        assert api("DELETE", "/animations/temps")[0] == 200
        assert chalice_client.http.get("/animations/temps/gifs/600/image").status_code == 302
        assert api("DELETE", "/animations/temps", headers=AUTH)[0] == 404
        store.delete_records("temps")
        assert chalice_client.http.get("/animations/temps/gifs/600/image").status_code == 404

    def test_public_url_is_the_base_of_every_link(self, api, aws, monkeypatch):
        put_images(api, aws)
        monkeypatch.setenv("PUBLIC_URL", "https://wx.example.com/weather")
        [frame] = api("GET", "/animations/temps/frames")[1]["frames"]
        [gif] = api("GET", "/animations/temps/gifs")[1]["gifs"]
        assert frame["url"] == "https://wx.example.com/weather/animations/temps/frames/600/image"
        assert (
            frame["thumbnails"]["80x60-cover"]
            == "https://wx.example.com/weather/animations/temps/frames/600/thumbnails/80x60-cover"
        )
        assert gif["url"] == "https://wx.example.com/weather/animations/temps/gifs/600/image"


def request_of(context_path: str, resource: str, params: dict, headers: dict, **context):
    from chalice.app import Request

    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": headers,
            "pathParameters": params,
            "body": None,
            "stageVariables": None,
            "requestContext": {"httpMethod": "GET", "resourcePath": resource, "path": context_path, **context},
        }
    )


class TestBaseUrl:
    """Where links start when PUBLIC_URL is unset: the address the request came to."""

    @pytest.fixture(autouse=True)
    def _no_public_url(self, monkeypatch):
        monkeypatch.delenv("PUBLIC_URL", raising=False)

    def test_api_gateway_puts_the_stage_before_the_route(self):
        from chalicelib.api.params import base_url

        request = request_of(
            "/api/animations/temps/frames",
            "/animations/{image_id}/frames",
            {"image_id": "temps"},
            {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"},
            stage="api",
            domainName="abc123.execute-api.us-east-1.amazonaws.com",
            apiId="abc123",
        )
        assert base_url(request) == "https://abc123.execute-api.us-east-1.amazonaws.com/api/"

    def test_a_custom_domain_puts_its_base_path_or_nothing(self):
        from chalicelib.api.params import base_url

        headers = {"Host": "wx.example.com", "X-Forwarded-Proto": "https"}
        mapped = request_of(
            "/weather/animations/t/gifs", "/animations/{image_id}/gifs", {"image_id": "t"}, headers, stage="api"
        )
        assert base_url(mapped) == "https://wx.example.com/weather/"
        root = request_of("/animations/t/gifs", "/animations/{image_id}/gifs", {"image_id": "t"}, headers, stage="api")
        assert base_url(root) == "https://wx.example.com/"

    def test_chalice_local_has_no_stage(self):
        from chalicelib.api.params import base_url

        # what chalice.local's LambdaEventConverter makes of GET /animations/temps/frames?limit=3
        request = request_of(
            "/animations/temps/frames",
            "/animations/{image_id}/frames",
            {"image_id": "temps"},
            {"host": "127.0.0.1:8000", "accept": "*/*"},
            identity={"sourceIp": "127.0.0.1"},
        )
        assert base_url(request) == "http://127.0.0.1:8000/"

    def test_a_bad_host_is_refused(self):
        from chalicelib.api.errors import BadRequest
        from chalicelib.api.params import base_url

        request = request_of(
            "/animations/t/frames", "/animations/{image_id}/frames", {"image_id": "t"}, {"Host": "evil.example/x?"}
        )
        with pytest.raises(BadRequest):
            base_url(request)

    def test_public_url_wins_and_ends_in_a_slash(self, monkeypatch):
        from chalicelib.api.params import base_url

        monkeypatch.setenv("PUBLIC_URL", "https://wx.example.com/api")
        request = request_of("/animations/t/frames", "/animations/{image_id}/frames", {"image_id": "t"}, {"Host": "x"})
        assert base_url(request) == "https://wx.example.com/api/"

    @pytest.mark.parametrize("value", ["ftp://wx.example.com/", "wx.example.com/api", "https://wx.example.com/?a=1"])
    def test_a_malformed_public_url_is_a_configuration_error(self, monkeypatch, value):
        from chalicelib.settings import public_url

        monkeypatch.setenv("PUBLIC_URL", value)
        with pytest.raises(ValueError, match="PUBLIC_URL"):
            public_url()


class TestDeadLetters:
    def test_listed_with_their_errors_and_redriven(self, api, aws):
        store.log_event("error", {"type": "error", "error": "TimeoutError: throttled"}, "sqs-m-1")
        store.record_dead_letter("m-1", '{"type": "did-create-gif"}', 1_700_000_000, store.last_error("m-1"))
        [letter] = api("GET", "/failures")[1]["deadLetters"]
        assert letter == {
            "messageId": "m-1",
            "message": {"type": "did-create-gif"},
            "error": "TimeoutError: throttled",
            "sent": "2023-11-14T22:13:20Z",
            "dead": letter["dead"],
        }
        assert api("GET", "/failures", headers={})[0] == 401  # whole messages: the token's holder only
        assert api("GET", "/failures")[1]["deadLetters"] == [letter]  # reading changes nothing
        assert api("POST", "/failures/redrive") == (202, {"redriven": 1})
        assert api("GET", "/failures")[1]["deadLetters"] == []
        assert [m["type"] for m in aws.replies()] == ["did-create-gif"]

    def test_failures_that_name_no_animation_are_listed_with_them(self, api, aws):
        from chalicelib.mediator import service
        from chalicelib.messages import DidFail

        upload = {"source": {"Bucket": "u-p", "Key": "canyon-400x400.jpg"}}
        service.handle(DidFail(type="did-fail-create-thumbnail", error="not an image", request=upload), 700)
        [failure] = api("GET", "/failures")[1]["unattributed"]
        assert (failure["action"], failure["error"], failure["request"]) == ("create-thumbnail", "not an image", upload)

    def test_an_animations_failures_are_redriven(self, api, aws):
        from chalicelib.mediator import service
        from chalicelib.messages import DidFail

        api(
            "PUT",
            "/animations/temps",
            {"layers": ["radar"], "width": 64, "height": 48, "center": "tulsa,ok", "zoom": 4},
        )
        request = {
            "type": "please-fetch-amp-image",
            "imageId": "temps",
            "layers": ["radar"],
            "width": 64,
            "height": 48,
            "center": "tulsa,ok",
            "zoom": 4,
            "validTime": 600,
        }
        service.handle(DidFail(type="did-fail-fetch-amp-image", error="timed out", request=request), 700)
        failures = api("GET", "/animations/temps/failures")[1]["failures"]
        assert [f["redrivable"] for f in failures] == [True]
        assert api("POST", "/animations/temps/failures/redrive", headers={})[0] == 401
        assert api("POST", "/animations/temps/failures/redrive") == (202, {"redriven": 1, "kept": 0})
        assert api("GET", "/animations/temps/failures")[1]["failures"] == []
        assert api("POST", "/animations/nope/failures/redrive")[0] == 404


class TestService:
    def test_health_names_what_answers(self, api, aws):
        status, body = api("GET", "/health")
        assert status == 200 and body["ok"] is True and body["version"]
        assert set(body["checks"]) >= {"table", "queue", aws.names.gifs_bucket}
        aws.s3.delete_bucket(Bucket=aws.names.uploads_bucket)
        status, body = api("GET", "/health")
        assert status == 503 and body["checks"][aws.names.uploads_bucket] == "404"  # the error's code, no text

    def test_the_page_is_html_with_no_outside_resources(self, chalice_client):
        response = chalice_client.http.get("/")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
        page = response.body.decode()
        assert "<title>weathergif</title>" in page
        assert "http://" not in page and "https://" not in page and 'src="//' not in page

    def test_the_page_sends_a_content_security_policy(self, chalice_client, monkeypatch):
        import base64
        import hashlib
        import re

        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
        response = chalice_client.http.get("/")
        headers = response.headers
        policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
        page = response.body.decode()
        [script] = re.findall(r"<script>(.*?)</script>", page, re.S)
        [style] = re.findall(r"<style>(.*?)</style>", page, re.S)

        def sha(text):
            return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"

        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == sha(script) and policy["style-src"] == sha(style)
        assert policy["img-src"] == "'self' data: https: http://127.0.0.1:4567" and policy["connect-src"] == "'self'"
        assert policy["media-src"] == "'self' https: http://127.0.0.1:4567"  # the MP4s, played as video
        assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
        assert "unsafe" not in headers["Content-Security-Policy"]
        assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"], headers["Referrer-Policy"]) == (
            "DENY",
            "nosniff",
            "no-referrer",
        )
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        policy = chalice_client.http.get("/").headers["Content-Security-Policy"]
        assert "img-src 'self' data: https:;" in policy and "media-src 'self' https:;" in policy


def _camel(path: str) -> str:
    return path.replace("{image_id}", "{imageId}").replace("{run_id}", "{runId}").replace("{valid_time}", "{validTime}")


def _operations(document):
    return {
        (path, method.upper()): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_the_openapi_document_is_valid_and_made_from_the_routes(chalice_client):
    from openapi_spec_validator import validate  # comes with moto[server]

    from app import app

    document = json.loads(chalice_client.http.get("/openapi.json").body)
    validate(document)  # OpenAPI 3.1, its schemas JSON Schema 2020-12
    assert document["openapi"] == "3.1.0"
    patterns = re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', json.dumps(document))
    assert patterns and not any("(?" in json.loads(p) for p in patterns)  # plain ECMA-262: RE2 and Rust read them
    operations = _operations(document)
    declared = {(_camel(path), method) for path, methods in app.routes.items() for method in methods}
    assert set(operations) == declared
    secured = {key for key, operation in operations.items() if operation.get("security")}
    needs_token = {
        (_camel(path), method)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if entry.authorizer
    }
    assert secured == needs_token
    assert ("/runs/{runId}", "GET") in needs_token  # a run's timeline holds whole messages: addresses, bodies
    assert all(set(operations[key]["responses"]) >= {"401", "403"} for key in needs_token)
    for key, operation in operations.items():
        assert operation["summary"], key
        assert any(status < "400" for status in operation["responses"]), key  # what it answers when it works
    for path, item in document["paths"].items():  # every path parameter, with a schema that bounds it
        assert [p["name"] for p in item.get("parameters", [])] == re.findall(r"\{(\w+)\}", path)
        for parameter in item.get("parameters", []):
            schema = parameter["schema"]
            assert parameter["required"] and ("pattern" in schema or "maxLength" in schema), (path, parameter)
    image_id = document["paths"]["/animations/{imageId}"]["parameters"][0]["schema"]["pattern"]
    assert re.fullmatch(image_id, "temps") and not re.fullmatch(image_id, "-temps")
    label = document["paths"]["/animations/{imageId}/frames/{validTime}/thumbnails/{label}"]["parameters"][2]
    assert re.fullmatch(label["schema"]["pattern"], "200x150-cover") and not re.fullmatch(
        label["schema"]["pattern"], "0x1"
    )
    put = operations[("/animations/{imageId}", "PUT")]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Animation"}
    assert {"400", "413"} <= set(put["responses"])
    assert document["components"]["schemas"]["Animation"]["properties"]["imageId"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    _every_answer_has_its_schema(document, operations)


def _every_answer_has_its_schema(document, operations):
    """Each answer of each route says what it holds: JSON described by a schema of the components (a
    redirect's too, beside its Location header), the page as HTML text; and every object those schemas
    describe is closed, a map of typed values, or one of the few that hold something whole (a message,
    a request, the document's own parts), each of which says it is open."""
    import msgspec

    from chalicelib.mediator.animation import Animation

    schemas = document["components"]["schemas"]
    for key, operation in operations.items():
        for status, response in operation["responses"].items():
            assert response.get("content"), (key, status)
            for media, body in response["content"].items():
                if media == "application/json":
                    name = body["schema"]["$ref"].removeprefix("#/components/schemas/")
                    assert set(body["schema"]) == {"$ref"} and name in schemas, (key, status, body)
                else:
                    assert (media, body["schema"]) == ("text/html", {"type": "string"}), (key, status)
            if status.startswith("3"):
                assert response["headers"]["Location"]["required"], (key, status)
    opened = []

    def objects(schema, at):
        if isinstance(schema, dict):
            if schema.get("type") == "object" or "properties" in schema:
                closed = schema.get("additionalProperties")
                assert closed is False or isinstance(closed, dict) or closed is True, (at, schema)
                if closed is True:
                    opened.append(at)
                if closed is False:
                    assert set(schema.get("required", [])) <= set(schema["properties"]), at
            for name, item in schema.items():
                objects(item, f"{at}.{name}")
        elif isinstance(schema, list):
            for index, item in enumerate(schema):
                objects(item, f"{at}.{index}")

    objects(schemas, "schemas")
    assert sorted(opened) == [
        "schemas.Event.properties.message",
        "schemas.OpenApi.properties.components",
        "schemas.OpenApi.properties.paths",
        "schemas.PleaseCreateGif",  # keys the message contract does not define are carried on
        "schemas.PleaseFetchAmpImage",
        "schemas.Unattributed.properties.request.anyOf.0",
    ]
    answered = schemas["AnimationAnswer"]
    assert set(answered["properties"]) == {*schemas["Animation"]["properties"], "state"}
    unset = {f.encode_name for f in msgspec.structs.fields(Animation) if f.default is None}  # left out when None
    assert {"every", "email"} <= unset and set(answered["properties"]) - set(answered["required"]) == unset
    formats = schemas["Format"]
    assert formats["required"] == ["format", "type", "bytes", "url"] and "error" in formats["properties"]
    assert schemas["Source"]["properties"]["serving"] == {"$ref": "#/components/schemas/Serving"}


def test_the_documented_query_parameters_are_the_ones_each_route_takes(api):
    """What openapi.json lists for a route is what it accepts: each documented parameter is taken,
    anything else refused (400 naming it); a route that documents none ignores the query string."""
    create(api)
    document = api("GET", "/openapi.json")[1]
    filled = {"imageId": "temps", "validTime": "600", "label": "80x60-cover", "runId": "run-1"}
    for (path, method), operation in _operations(document).items():
        if method not in ("GET", "DELETE"):
            continue  # the others act: asked nothing here
        target = re.sub(r"\{(\w+)\}", lambda m: filled[m.group(1)], path)
        if method == "DELETE":
            target = target.replace("temps", "nope")  # refuses the query first, then finds no such animation
        documented = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
        status, body = api(method, f"{target}?unknown=1")
        if documented:
            assert (status, body["field"]) == (400, "unknown"), (path, method, status, body)
        else:
            assert status != 400, (path, method, body)
        for name, schema in documented.items():
            value = schema.get("default", schema.get("example", schema.get("enum", ["a"])[0]))
            status, body = api(method, f"{target}?{name}={value}")
            assert status < 400 or status == 404, (path, method, name, status, body)


def test_the_gateways_refusals_are_as_the_openapi_document_says(api, chalice_client):
    """A missing token is API Gateway's 401 {"message"}; a wrong one, its 403 {"Message"} (a capital M):
    the gateway answers an authorizer's denial itself, and Chalice's local gateway copies both."""
    from jsonschema import Draft202012Validator

    document = json.loads(chalice_client.http.get("/openapi.json").body)
    responses = document["paths"]["/animations/{imageId}"]["put"]["responses"]
    for status, headers, key in [("401", {}, "message"), ("403", {"Authorization": "Bearer wrong"}, "Message")]:
        got, body = api("PUT", "/animations/temps", CONFIG, headers={**headers, "Content-Type": "application/json"})
        assert str(got) == status and set(body) == {key}, (status, body)
        described = responses[status]["content"]["application/json"]["schema"]  # a $ref into the components
        schema = Draft202012Validator({**described, "components": document["components"]})
        assert schema.is_valid(body), (status, body, described)
        other = "Message" if key == "message" else "message"
        assert not schema.is_valid({other: body[key]})  # the key's case is what a client reads
