"""The fetcher with several map sources: each request to its own source, with that source's keys,
hosts and runs; a basemap kept per view under transparent frames; and no URL in a failure, however
the key is spelled in it."""

from __future__ import annotations

import io
import json
import logging
import re
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from chalicelib.workers import fetcher
from tests.images import encode, radar_frame
from tests.mapsource import FETCH, Answer, MapSource

RADAR_ID, RADAR_SECRET = "radar-id-4242", "Rk/7+w=Pq9~zS"
BASE_ID, BASE_SECRET = "base-id-5151", "Bm#4?v&Lc8*yQ"
RADAR_KEYS, BASE_KEYS = "/weathergif/dev/map-keys/radar", "/weathergif/dev/map-keys/base"
FRAME = encode(radar_frame(0))
RUN = 1_699_992_000  # 20Z, on the hourly grid; FETCH's validTime is 22:13:20 the same day


def template(server: MapSource, keyed: bool, query: str = "") -> str:
    keys = "{client_id}_{client_secret}" if keyed else "open"
    return (
        f"http://127.0.0.1:{server.port}/{keys}/{{layers}}/{{width}}x{{height}}/{{center}},{{zoom}}/{{time}}.png{query}"
    )


@pytest.fixture
def servers(monkeypatch, aws):
    """Three sources on three servers: "radar" (keyed, the default), "model" (a keyless forecast whose
    URL names its run) and "base" (keyed, for basemaps); their keys in the emulated SSM."""
    from chalicelib.aws import client, parameters

    found = {name: MapSource() for name in ("radar", "model", "base")}
    config = {
        "default": "radar",
        "sources": {
            "radar": {"urlTemplate": template(found["radar"], True), "step": 300},
            "model": {
                "urlTemplate": template(found["model"], False, "?run={run_time}&ref={run_iso_time}"),
                "step": 900,
                "ahead": 6 * 3600,
                "runEvery": 3600,
            },
            "base": {"urlTemplate": template(found["base"], True), "step": 300},
        },
    }
    monkeypatch.setenv("MAP_SOURCES", json.dumps(config))
    for name in ("MAP_CLIENT_ID", "MAP_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FETCH_READ_TIMEOUT", "5")
    monkeypatch.setenv("FETCH_RETRIES", "1")
    ssm = client("ssm")
    ssm.put_parameter(Name=RADAR_KEYS, Type="SecureString", Value=f"{RADAR_ID}:{RADAR_SECRET}")
    ssm.put_parameter(Name=BASE_KEYS, Type="SecureString", Value=f"{BASE_ID}:{BASE_SECRET}")
    parameters.cache_clear()  # secrets are read once per container: this test's container starts now
    for server in found.values():
        server.start()
    yield found
    for server in found.values():
        server.stop()
    parameters.cache_clear()


@pytest.fixture
def reads(servers):
    """The SSM parameters read (GetParameter calls), in order."""
    from chalicelib.aws import parameters

    names: list[str] = []
    events = parameters()._ssm.meta.events
    handler = lambda params, **kwargs: names.append(params["Name"])  # noqa: E731
    events.register("provide-client-params.ssm.GetParameter", handler)
    yield names
    events.unregister("provide-client-params.ssm.GetParameter", handler)


def failed(aws, *needles: str) -> dict:
    reply = aws.reply()
    assert reply["type"] == "did-fail-fetch-amp-image", reply
    for needle in needles:
        assert needle in reply["error"], reply["error"]
    return reply


class TestSources:
    def test_a_request_goes_to_its_source_and_one_naming_none_to_the_default(self, aws, invoke_sns, servers):
        servers["radar"].answer(Answer(body=FRAME))
        servers["model"].answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        invoke_sns("fetch_amp_image", {**FETCH, "source": "model", "runTime": RUN})
        default, model = aws.replies()
        assert servers["radar"].paths == [
            f"/{RADAR_ID}_{quote(RADAR_SECRET, safe='')}/flat-dk,radar/320x240/tulsa,ok,4/20231114221320.png"
        ]
        assert servers["model"].paths == [
            "/open/flat-dk,radar/320x240/tulsa,ok,4/20231114221320.png?run=20231114200000&ref=2023-11-14T20:00:00Z"
        ]
        assert "source" not in default and "runTime" not in default  # the seed's request, the seed's reply
        assert default["location"]["Key"] == "temps/320x240/1700000000.png"
        assert (model["source"], model["runTime"]) == ("model", RUN)
        assert model["location"]["Key"] == f"temps/320x240/run-{RUN}/1700000000.png"

    def test_two_runs_of_one_valid_time_are_kept_apart(self, aws, invoke_sns, servers):
        servers["model"].respond = lambda path: Answer(body=encode(radar_frame(len(path))))
        for run in (RUN, RUN + 3600):
            invoke_sns("fetch_amp_image", {**FETCH, "source": "model", "runTime": run})
        assert aws.keys(aws.names.frames_bucket) == [
            f"temps/320x240/run-{RUN}/1700000000.png",
            f"temps/320x240/run-{RUN + 3600}/1700000000.png",
        ]

    def test_an_unknown_source_is_a_did_fail_naming_it(self, aws, invoke_sns, servers):
        invoke_sns("fetch_amp_image", {**FETCH, "source": "gibs"})
        reply = failed(aws, "there is no map source named 'gibs': this stage has base, model, radar")
        assert reply["request"]["source"] == "gibs"
        assert all(server.paths == [] for server in servers.values())

    @pytest.mark.parametrize(
        "changes, error",
        [
            ({"source": "model"}, "map source 'model' names the model run in its URL: the request needs runTime"),
            ({"runTime": RUN}, "map source 'radar' serves observations, which have no model run (runTime)"),
            ({"source": "model", "runTime": 1_700_000_100}, "'runTime' must not be after validTime"),
        ],
    )
    def test_runs_where_they_belong(self, aws, invoke_sns, servers, changes, error):
        invoke_sns("fetch_amp_image", {**FETCH, **changes})
        failed(aws, error)
        assert all(server.paths == [] for server in servers.values())

    def test_keys_are_read_once_per_container_per_source_and_only_when_needed(self, aws, invoke_sns, servers, reads):
        servers["radar"].respond = servers["model"].respond = lambda path: Answer(body=FRAME)
        for valid_time in (1_700_000_000, 1_700_000_300):
            invoke_sns("fetch_amp_image", {**FETCH, "validTime": valid_time})
            invoke_sns("fetch_amp_image", {**FETCH, "validTime": valid_time, "source": "model", "runTime": RUN})
        assert [reply["type"] for reply in aws.replies()] == ["did-fetch-amp-image"] * 4
        assert reads == [RADAR_KEYS]  # the keyless source's never; the other's once

    def test_missing_keys_of_a_source_are_a_did_fail_naming_the_source(self, aws, invoke_sns, servers):
        from chalicelib.aws import client

        client("ssm").delete_parameter(Name=RADAR_KEYS)
        invoke_sns("fetch_amp_image", FETCH)
        failed(aws, "the keys of map source 'radar' cannot be read from its SSM parameter (keysParameter)")
        assert servers["radar"].paths == []

    def test_a_source_is_never_fetched_from_another_sources_host(self, aws, invoke_sns, servers):
        other = servers["model"].port
        servers["radar"].answer(Answer(302, b"", {"Location": f"http://127.0.0.1:{other}/frame.png"}))
        invoke_sns("fetch_amp_image", FETCH)
        failed(aws, f"http://127.0.0.1:{other} is not on the fetch allow-list (the source's hosts)")
        assert servers["model"].paths == []

    def test_each_sources_keys_are_kept_out_of_what_it_answers(self, aws, invoke_sns, servers, capsys):
        page = f"<p>{RADAR_SECRET} {quote(RADAR_SECRET, safe='')} {BASE_SECRET}</p>".encode()
        servers["radar"].answer(Answer(404, page, {"Content-Type": "text/html"}))
        invoke_sns("fetch_amp_image", FETCH)
        reply = failed(aws, f"map source 'radar' at http://127.0.0.1:{servers['radar'].port} answered 404")
        out = capsys.readouterr()
        published = json.dumps(reply) + out.out + out.err
        assert RADAR_SECRET not in published and quote(RADAR_SECRET, safe="") not in published
        # The base source's keys were not read for this request: what it never had, it cannot leak.
        assert reply["error"].count("***") == 2


def transparent_overlay(width: int = 320, height: int = 240) -> Image.Image:
    """Left half clear, right half opaque red, a band of half-transparent green in the middle rows."""
    pixels = np.zeros((height, width, 4), np.uint8)
    pixels[:, width // 2 :] = (220, 20, 20, 255)
    pixels[100:140, : width // 2] = (0, 200, 0, 128)
    return Image.fromarray(pixels, "RGBA")


BASEMAP = Image.new("RGB", (320, 240), (30, 60, 110))


class TestBasemap:
    BASE = {"source": "base", "layers": ["flat-dk"]}

    def request(self, **changes) -> dict:
        return {**FETCH, "layers": ["radar"], "basemap": self.BASE, **changes}

    def test_fetched_once_for_the_frames_of_a_view_and_drawn_under_each(self, aws, invoke_sns, servers):
        servers["base"].respond = lambda path: Answer(body=encode(BASEMAP))
        servers["radar"].respond = lambda path: Answer(body=encode(transparent_overlay()))
        for valid_time in (1_700_000_000, 1_700_000_300, 1_700_000_600):
            invoke_sns("fetch_amp_image", self.request(validTime=valid_time))
        replies = aws.replies()
        assert [reply["type"] for reply in replies] == ["did-fetch-amp-image"] * 3
        assert servers["base"].paths == [
            f"/{BASE_ID}_{quote(BASE_SECRET, safe='')}/flat-dk/320x240/tulsa,ok,4/20231114221320.png"
        ]
        assert len(servers["radar"].paths) == 3
        keys = aws.keys(aws.names.frames_bucket)
        [kept] = [key for key in keys if "/basemap-" in key]
        assert re.fullmatch(r"temps/320x240/basemap-[0-9a-f]{20}\.png", kept)
        composed = np.asarray(Image.open(io.BytesIO(aws.get(**replies[0]["location"]))))
        assert composed.shape == (240, 320, 3)  # the basemap is opaque: so is the frame
        assert tuple(composed[10, 10]) == (30, 60, 110)  # clear overlay: the basemap's pixels
        assert tuple(composed[10, 300]) == (220, 20, 20)  # opaque overlay: the overlay's
        blended = np.asarray(
            Image.alpha_composite(
                Image.new("RGBA", (1, 1), (30, 60, 110, 255)), Image.new("RGBA", (1, 1), (0, 200, 0, 128))
            )
        )[0, 0, :3]
        assert tuple(composed[120, 10]) == tuple(blended)  # half-transparent: alpha compositing

    def test_a_new_view_fetches_its_own(self, aws, invoke_sns, servers):
        servers["base"].respond = lambda path: Answer(body=encode(BASEMAP))
        servers["radar"].respond = lambda path: Answer(body=encode(transparent_overlay()))
        invoke_sns("fetch_amp_image", self.request())
        invoke_sns("fetch_amp_image", self.request(zoom=5))
        invoke_sns("fetch_amp_image", self.request(center="denver,co"))
        invoke_sns("fetch_amp_image", self.request(basemap={"source": "base", "layers": ["terrain"]}))
        invoke_sns("fetch_amp_image", self.request(validTime=1_700_000_900))  # the first view again
        assert len(servers["base"].paths) == 4
        assert len([key for key in aws.keys(aws.names.frames_bucket) if "/basemap-" in key]) == 4

    def test_a_basemap_already_kept_is_not_fetched(self, aws, invoke_sns, servers):
        servers["radar"].respond = lambda path: Answer(body=encode(transparent_overlay()))
        servers["base"].respond = lambda path: Answer(body=encode(BASEMAP))
        invoke_sns("fetch_amp_image", self.request())
        [kept] = [key for key in aws.keys(aws.names.frames_bucket) if "/basemap-" in key]
        aws.put(aws.names.frames_bucket, kept, encode(Image.new("RGB", (320, 240), (1, 2, 3))))
        invoke_sns("fetch_amp_image", self.request(validTime=1_700_000_300))
        replies = aws.replies()
        assert len(servers["base"].paths) == 1
        assert np.asarray(Image.open(io.BytesIO(aws.get(**replies[-1]["location"]))))[10, 10].tolist() == [1, 2, 3]

    def test_an_overlay_without_transparency_is_a_did_fail(self, aws, invoke_sns, servers):
        servers["radar"].answer(Answer(body=FRAME))  # RGB: it would hide the basemap
        invoke_sns("fetch_amp_image", self.request())
        failed(aws, "has no transparency (RGB): it would hide the basemap")
        assert servers["base"].paths == [] and aws.keys(aws.names.frames_bucket) == []

    def test_a_basemap_of_another_size_is_a_did_fail(self, aws, invoke_sns, servers):
        servers["radar"].answer(Answer(body=encode(transparent_overlay())))
        servers["base"].answer(Answer(body=encode(Image.new("RGB", (640, 480)))))
        invoke_sns("fetch_amp_image", self.request())
        failed(aws, "the basemap of map source 'base'", "is 640x480, but 320x240 was asked")
        assert aws.keys(aws.names.frames_bucket) == []

    def test_a_kept_basemap_of_another_size_is_a_did_fail(self, aws, invoke_sns, servers):
        servers["radar"].respond = lambda path: Answer(body=encode(transparent_overlay()))
        servers["base"].respond = lambda path: Answer(body=encode(BASEMAP))
        invoke_sns("fetch_amp_image", self.request())
        [kept] = [key for key in aws.keys(aws.names.frames_bucket) if "/basemap-" in key]
        aws.put(aws.names.frames_bucket, kept, encode(Image.new("RGB", (100, 100))))
        aws.replies()
        invoke_sns("fetch_amp_image", self.request(validTime=1_700_000_300))
        failed(aws, "the basemap is 100x100 and the answer of map source 'radar'", "they cannot be stacked")

    def test_an_unknown_basemap_source_is_a_did_fail(self, aws, invoke_sns, servers):
        servers["radar"].answer(Answer(body=encode(transparent_overlay())))
        invoke_sns("fetch_amp_image", self.request(basemap={"source": "nowhere", "layers": ["flat"]}))
        failed(aws, "there is no map source named 'nowhere'")

    def test_without_a_basemap_a_transparent_frame_is_kept_with_its_transparency(self, aws, invoke_sns, servers):
        body = encode(transparent_overlay())
        servers["radar"].answer(Answer(body=body))
        invoke_sns("fetch_amp_image", {**FETCH, "layers": ["radar"]})
        reply = aws.reply()
        stored = aws.get(**reply["location"])
        assert stored == body and Image.open(io.BytesIO(stored)).mode == "RGBA"


# No URL in a failure ---------------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "id-7f3a-client", "Sk/9+q=Zw8~xT"


def percent(char: str, upper: bool = True) -> str:
    text = f"%{ord(char):02X}"
    return text if upper else text.lower()


def spellings(secret: str) -> list[str]:
    """Equal spellings of `secret` in a URL's path: each character encoded in turn, all of them (in
    either hex case), encoded twice, and a mixture of plain, once- and twice-encoded characters."""
    out = [secret[:i] + percent(char) + secret[i + 1 :] for i, char in enumerate(secret)]
    out.append("".join(percent(char) for char in secret))
    out.append("".join(percent(char, upper=False) for char in secret))
    out.append(quote(quote(secret, safe=""), safe=""))
    out.append(
        "".join(
            char if i % 3 == 0 else percent(char, i % 2 == 0) if i % 3 == 1 else "%25" + percent(char)[1:]
            for i, char in enumerate(secret)
        )
    )
    return out


def forms(secret: str) -> list[str]:
    """What must appear nowhere: the secret, any spelling of it, and the encodings a page may use."""
    import base64

    return [
        secret,
        secret.lower(),
        quote(secret, safe=""),
        quote(secret),
        quote(quote(secret, safe=""), safe=""),
        base64.b64encode(secret.encode()).decode().rstrip("="),
        *spellings(secret),
    ]


def keyed_path(secret_spelled: str) -> str:
    return f"/{CLIENT_ID}_{secret_spelled}/flat-dk,radar/320x240/tulsa,ok,4/20231114221320.png"


def redirect_to_spelled(spelled: str):
    """The source redirects its first request (the keyed URL) to the keyed URL with the key spelled
    otherwise (the HTTP library may send it back in the first spelling), then answers 404 with a page
    that shows the path it was asked for."""
    asked: list[str] = []

    def respond(path: str) -> Answer:
        asked.append(path)
        if len(asked) == 1:
            return Answer(302, b"", {"Location": keyed_path(spelled)})
        return Answer(404, f"<h1>Not found</h1><p>{path}</p><a href='{path}'>".encode(), {"Content-Type": "text/html"})

    return respond


@pytest.fixture
def legacy(monkeypatch):
    server = MapSource()
    for name, value in server.environment(CLIENT_ID, CLIENT_SECRET).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MAP_SOURCES", raising=False)
    monkeypatch.setenv("FETCH_READ_TIMEOUT", "5")
    monkeypatch.setenv("FETCH_RETRIES", "1")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def every_log_line(caplog):
    """Every record of every logger, at every level, as its handlers would write it."""
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    yield lambda: stream.getvalue() + caplog.text
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("spelled", spellings(CLIENT_SECRET))
def test_a_redirect_to_the_keyed_url_spelled_otherwise_leaks_no_key(
    aws, invoke_sns, legacy, every_log_line, capsys, spelled
):
    legacy.respond = redirect_to_spelled(spelled)
    invoke_sns("fetch_amp_image", FETCH)
    reply = failed(aws, f"map source 'default' at http://127.0.0.1:{legacy.port} (after 1 redirect) answered 404")
    assert len(legacy.paths) == 2
    out = capsys.readouterr()
    logs = every_log_line()
    assert "\"GET <map source 'default'> HTTP/1.1\" 302" in logs  # urllib3's request line, without its path
    published = {"error": reply["error"], "reply": json.dumps(reply), "logs": logs + out.out + out.err}
    for where, text in published.items():
        assert "flat-dk,radar/320x240" not in text.split("</p>")[0].split("<p>")[0], where  # no path outside the page
        for form in forms(CLIENT_SECRET):
            assert form not in text, (where, form)
            assert form.lower() not in text.lower() or form.lower() in ("***",), (where, form)


@pytest.mark.heavy
def test_the_stored_failures_and_the_public_route_hold_no_form_of_the_key(runtime, monkeypatch, every_log_line, capsys):
    """Through the mediator: a spelling a fetch, each fetch's did-fail recorded; the table, the public
    GET /animations/{id}/failures and every log line hold no form of the key."""
    from chalice.test import Client

    from app import app
    from chalicelib.aws import client
    from chalicelib.mediator import service, store
    from chalicelib.mediator.animation import Animation
    from tests.conftest import ROOT

    server = MapSource()
    for name, value in server.environment(CLIENT_ID, CLIENT_SECRET).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MAP_SOURCES", raising=False)
    monkeypatch.setenv("FETCH_RETRIES", "0")
    server.start()
    try:
        spelled = spellings(CLIENT_SECRET)
        asked: list[str] = []

        def respond(path: str) -> Answer:  # fetches one after another: the keyed URL, then where it went
            asked.append(path)
            if len(asked) % 2:
                spelling = spelled[len(asked) // 2]
                return Answer(302, b"", {"Location": path.replace(quote(CLIENT_SECRET, safe=""), spelling)})
            return Answer(404, f"<p>{path}</p>".encode(), {"Content-Type": "text/html"})

        server.respond = respond
        store.put_animation(
            Animation.from_dict(
                dict(imageId="temps", layers=["radar"], width=320, height=240, center="tulsa,ok", zoom=4, interval=600)
            )
        )
        t0 = 1_700_000_400
        for tick in range(len(spelled)):  # a fetch asked for now, each a minute on: one fetch each
            service.fetch_now("temps", t0 + tick * 60)
            runtime.drain()
        assert len(asked) == 2 * len(spelled)
        failures = store.failures("temps", limit=100)
        assert len(failures) == len(spelled) and all("answered 404" in f.error for f in failures)
        table = json.dumps(client("dynamodb").scan(TableName=runtime_table())["Items"])
        with Client(app, stage_name="dev", project_dir=str(ROOT)) as api:
            route = api.http.get("/animations/temps/failures?limit=100").body.decode()
        assert route.count("answered 404") == len(spelled)
        out = capsys.readouterr()
        for where, text in {"table": table, "route": route, "logs": every_log_line() + out.out + out.err}.items():
            for form in forms(CLIENT_SECRET):
                assert form not in text, (where, form)
    finally:
        server.stop()


def runtime_table() -> str:
    from chalicelib.settings import names

    return names().table


def test_the_fetchers_texts_name_a_source_by_its_origin(servers):
    """named() says the source, its origin and where redirects went: never a path."""
    from chalicelib import safehttp, sources

    radar = sources.source("radar")
    port = servers["radar"].port
    assert fetcher.named(radar) == f"map source 'radar' at http://127.0.0.1:{port}"
    assert fetcher.named(radar, safehttp.Origin("http", "127.0.0.1", port), 1) == (
        f"map source 'radar' at http://127.0.0.1:{port} (after 1 redirect)"
    )
    assert fetcher.named(radar, safehttp.Origin("https", "cdn.example.com", 443), 2) == (
        f"map source 'radar' at http://127.0.0.1:{port} (after 2 redirects, to https://cdn.example.com:443)"
    )


def test_the_http_librarys_request_lines_name_no_target_whichever_filter_comes_first():
    """urllib3's record of a request line loses its target to the Client's label, before or after
    the redactor has masked the keys in it."""
    from chalicelib import redaction, safehttp

    assert logging.getLogger("urllib3.connectionpool").filters[0] is safehttp.TARGETS
    target = f"/{CLIENT_ID}_{quote(CLIENT_SECRET, safe='')}/radar/1x1/a,1/20231114221320.png?k={CLIENT_SECRET}"
    scope = redaction.scoped()
    try:
        redaction.activate(redaction.Redactor([CLIENT_ID, CLIENT_SECRET]))
        guard = safehttp.Guard(safehttp.Policy(frozenset()), 5, label="map source 'radar'")
        with guard:
            guard.targets.add(target)
            for filters in ((safehttp.TARGETS, redaction.FILTER), (redaction.FILTER, safehttp.TARGETS)):
                record = logging.LogRecord(
                    "urllib3.connectionpool",
                    logging.DEBUG,
                    "x",
                    1,
                    '%s "GET %s HTTP/1.1" %s',
                    ("http://h:1", target, 302),
                    None,
                )
                for each in filters:
                    each.filter(record)
                assert record.getMessage() == "http://h:1 \"GET <map source 'radar'> HTTP/1.1\" 302"
    finally:
        redaction.end_scope(scope)
