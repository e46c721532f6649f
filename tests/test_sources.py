"""Map sources: the configuration (presets, overrides, every bad field named), today's variables as
the default source, the times a source serves, and what anyone may know of them (GET /sources)."""

from __future__ import annotations

import json

import pytest

from chalicelib import sources
from chalicelib.settings import AMP_URL_TEMPLATE
from chalicelib.sources import LEGACY_NAME, PRESETS, Times

HOUR = 3600
NOW = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def configure(monkeypatch, config: object) -> None:
    monkeypatch.setenv("MAP_SOURCES", config if isinstance(config, str) else json.dumps(config))


THREE = {
    "default": "radar",
    "sources": {
        "radar": {"preset": "xweather"},
        "forecast": {"preset": "xweather-forecast", "ahead": 12 * HOUR},
        "nexrad": {"preset": "iem-nexrad"},
    },
}


class TestConfiguration:
    def test_three_sources_from_presets(self, monkeypatch):
        configure(monkeypatch, THREE)
        found = sources.sources()
        assert sorted(found) == ["forecast", "nexrad", "radar"] and sources.default_name() == "radar"
        radar, forecast, nexrad = found["radar"], found["forecast"], found["nexrad"]
        assert radar.url_template == PRESETS["xweather"].url_template
        assert radar.hosts == {("maps.api.xweather.com", None)}  # the template's own host
        assert radar.keyed and radar.keys_parameter == "/weathergif/dev/map-keys/radar"
        assert forecast.times == PRESETS["xweather-forecast"].times._replace(ahead=12 * HOUR)
        assert forecast.kind == "forecast" and radar.kind == "observations"
        assert not nexrad.keyed and nexrad.keys_parameter is None
        assert nexrad.hosts == {("mesonet.agron.iastate.edu", None)}
        assert sources.source(None) is radar and sources.source("nexrad") is nexrad

    def test_an_origin_puts_a_preset_on_another_host(self, monkeypatch):
        configure(monkeypatch, {"sources": {"demo": {"preset": "demo-forecast", "origin": "http://127.0.0.1:4567"}}})
        demo = sources.source(None)
        assert demo.url_template.startswith("http://127.0.0.1:4567/demo/{layers}/")
        assert demo.url_template.endswith("?run={run_time}") and demo.selects_run
        assert demo.hosts == {("127.0.0.1", 4567)} and sources.default_name() == "demo"  # the only one

    def test_a_source_written_out_whole(self, monkeypatch):
        template = (
            "https://wms.example.com/wms?LAYERS={layers}&BBOX={bbox}&WIDTH={width}&HEIGHT={height}"
            "&TIME={iso_time}&DIM_REFERENCE_TIME={run_iso_time}&KEY={client_secret}"
        )
        config = {
            "urlTemplate": template,
            "hosts": ["wms.example.com", "tiles.example.com:8443"],
            "keysParameter": "/custom/keys",
            "step": 3600,
            "ahead": 48 * HOUR,
            "runEvery": 6 * HOUR,
            "runDelay": 4 * HOUR,
        }
        configure(monkeypatch, {"sources": {"model": config}})
        model = sources.source("model")
        assert model.hosts == {("wms.example.com", None), ("tiles.example.com", 8443)}
        assert model.keys_parameter == "/custom/keys" and model.preset is None
        assert model.times == Times(back=86400, step=3600, ahead=48 * HOUR, run_every=6 * HOUR, run_delay=4 * HOUR)

    def test_every_bad_field_is_named(self, monkeypatch):
        configure(
            monkeypatch,
            {
                "default": "nowhere",
                "extra": 1,
                "sources": {
                    "a": {"preset": "nope", "step": 0, "hosts": ["a/b"]},
                    "b": {"urlTemplate": "https://{host}.example/{what}.png", "step": 60},
                    "c": {"preset": "xweather", "ahead": 3600, "keysParameter": "no-slash"},
                    "d": {"preset": "iem-nexrad", "keysParameter": "/x", "hosts": ["elsewhere.example"]},
                    "e": {"urlTemplate": "ftp://x.example/{time}"},
                    "-bad": {},
                },
            },
        )
        with pytest.raises(ValueError) as raised:
            sources.sources()
        text = str(raised.value)
        for needle in [
            "MAP_SOURCES: ",
            "'extra' is not a known key",
            "'sources.a.preset' must be one of 'xweather'",
            "'sources.a.step' must be at least 1",
            "'sources.a.hosts.0' must be host or host:port",
            "'sources.b.urlTemplate' has unknown or unnamed placeholders: ['host', 'what']",
            "'sources.b.urlTemplate' must write its host out",
            "'sources.c.keysParameter' must be an SSM parameter name",
            "'sources.d.keysParameter' is set, but the template has no {client_id} or {client_secret}",
            "'sources.d.hosts' must allow the template's own host, https://mesonet.agron.iastate.edu",
            "'sources.e.urlTemplate' must be an http or https URL",
            "'sources.e.step' is required without a preset",
            "'sources.-bad' is not a source name",
            "'default' names no source of 'sources'",
        ]:
            assert needle in text, (needle, text)

    @pytest.mark.parametrize(
        "config, error",
        [
            ({"sources": {"x": {"preset": "demo", "ahead": 60}}}, "'sources.x.runEvery' is required when 'ahead'"),
            ({"sources": {"x": {"preset": "demo", "runEvery": 60}}}, "'sources.x.ahead' must be above 0"),
            ({"sources": {"x": {"preset": "demo", "runDelay": 60}}}, "'sources.x.runDelay' is for a forecast"),
            ({"sources": {"x": {"preset": "demo-forecast", "latency": 60}}}, "'sources.x.latency' is for observations"),
            (
                {"sources": {"x": {"urlTemplate": "https://a.example/{run_time}.png", "step": 60}}},
                "'sources.x.urlTemplate' names a run ({run_time} or {run_iso_time}): set 'runEvery'",
            ),
            ({"sources": {"a": {"preset": "demo"}, "b": {"preset": "demo"}}}, "'default' is required"),
            ({"sources": {}}, "'sources' must be an object of at least one source"),
            ('{"sources": {"a": {}, "a": {}}}', "names 'a' twice"),
            ("[1]", "must be a JSON object"),
            ("{not json", "is not JSON"),
        ],
    )
    def test_what_is_refused(self, monkeypatch, config, error):
        configure(monkeypatch, config)
        with pytest.raises(ValueError, match=re_escape(error)):
            sources.sources()

    def test_an_unknown_name_says_which_there_are(self, monkeypatch):
        configure(monkeypatch, THREE)
        with pytest.raises(
            sources.UnknownSource, match="no map source named 'gibs': this stage has forecast, nexrad, radar"
        ):
            sources.source("gibs")

    def test_every_preset_is_usable_as_it_is(self, monkeypatch):
        configure(monkeypatch, {"default": "xweather", "sources": {name: {"preset": name} for name in PRESETS}})
        assert sorted(sources.sources()) == sorted(PRESETS)
        assert all(not source.problems() for source in sources.sources().values())


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


class TestToday:
    """With no MAP_SOURCES, today's variables define the default source exactly as before."""

    def test_the_default_is_aeris_amp_with_todays_allow_list_and_keys(self, monkeypatch):
        for name in ("MAP_SOURCES", "MAP_URL_TEMPLATE", "FETCH_ALLOWED_HOSTS"):
            monkeypatch.delenv(name, raising=False)
        assert sources.default_name() == LEGACY_NAME == "default"
        default = sources.source(None)
        assert default.url_template == AMP_URL_TEMPLATE and default.legacy and default.keyed
        assert default.hosts == {
            ("maps.api.xweather.com", None),
            ("maps.aerisapi.com", None),
            ("mesonet.agron.iastate.edu", None),
            ("gibs.earthdata.nasa.gov", None),
        }
        assert default.preset == "aeris-amp" and default.kind == "observations"

    def test_a_template_of_its_own_and_its_port(self, monkeypatch):
        monkeypatch.delenv("MAP_SOURCES", raising=False)
        monkeypatch.setenv("MAP_URL_TEMPLATE", "http://maps.example.test:8080/{layers}/{time}.png")
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", "maps.example.test,other.example.test:81")
        default = sources.source(None)
        assert default.hosts == {("maps.example.test", None), ("maps.example.test", 8080), ("other.example.test", 81)}
        assert not default.keyed and default.preset is None

    def test_a_wrong_allow_list_is_refused_as_before(self, monkeypatch):
        monkeypatch.delenv("MAP_SOURCES", raising=False)
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", "a.example/x")
        with pytest.raises(ValueError, match="FETCH_ALLOWED_HOSTS: 'a.example/x' is not host or host:port"):
            sources.sources()


class TestPublic:
    def test_never_a_key_a_parameter_or_a_template(self, monkeypatch):
        configure(
            monkeypatch,
            {
                "default": "radar",
                "sources": {
                    "radar": {"preset": "xweather", "keysParameter": "/secret/place"},
                    "wms": {"urlTemplate": "https://w.example/wms?KEY=literal-key-1234&T={time}", "step": 600},
                },
            },
        )
        listed = sources.public()
        assert [(s["name"], s["default"]) for s in listed] == [("radar", True), ("wms", False)]
        text = json.dumps(listed)
        assert "/secret/place" not in text and "literal-key-1234" not in text and "{client_id}" not in text
        assert listed[0] == {
            "name": "radar",
            "preset": "xweather",
            "kind": "observations",
            "hosts": ["maps.api.xweather.com"],
            "keyed": True,
            "selectsRun": False,
            "times": {"back": 7 * 86400, "ahead": 0, "step": 300, "latency": 0, "runEvery": 0, "runDelay": 0},
            "default": True,
        }


class TestTimes:
    OBSERVED = Times(back=2 * HOUR, step=300, latency=600)
    # Runs every 6 hours (0Z, 6Z, ...), out 4 hours later, reaching 48 hours; a frame an hour.
    FORECAST = Times(back=HOUR, step=HOUR, ahead=48 * HOUR, run_every=6 * HOUR, run_delay=4 * HOUR)

    def test_observations(self):
        times = self.OBSERVED
        assert times.latest_run(NOW) is None and times.run_for(NOW, NOW) is None and list(times.runs(NOW)) == []
        assert times.newest(NOW) == 1_699_999_200  # 22:00: out by now (10 minutes' latency), on the 5-minute grid
        assert times.oldest(NOW) == 1_699_992_900  # 20:15: two hours back, rounded up onto the grid
        assert len(times.valid_times(NOW)) == 22 and times.valid_times(NOW)[-1] == times.newest(NOW)
        assert times.serves(1_699_999_200, NOW) and not times.serves(1_699_999_500, NOW)  # not out yet
        assert not times.serves(1_699_999_201, NOW)  # off the grid

    def test_forecasts(self):
        times = self.FORECAST
        # 22:13 now: the 18Z run is out (18Z + 4 h = 22Z), the 0Z run not yet.
        run_18z = 1_699_984_800
        assert times.latest_run(NOW) == run_18z
        assert times.newest(NOW) == run_18z + 48 * HOUR
        assert times.oldest(NOW) == 1_699_999_200  # 21Z: an hour back, on the hourly grid
        assert times.run_for(NOW + 5 * HOUR, NOW) == run_18z  # the future from the newest run
        assert times.run_for(1_699_970_400, NOW) == 1_699_963_200  # 14Z: from the 12Z run (the newest reaching it)
        assert times.run_for(run_18z + 49 * HOUR, NOW) is None  # beyond every run's reach
        assert list(times.run_times(run_18z, NOW))[:2] == [1_699_999_200, 1_700_002_800]
        assert times.run_times(run_18z, NOW)[-1] == run_18z + 48 * HOUR
        assert list(times.runs(NOW))[-1] == run_18z and len(times.runs(NOW)) == 8  # each reaching 21Z or later
        assert run_18z - 7 * 6 * HOUR in times.runs(NOW) and run_18z - 8 * 6 * HOUR not in times.runs(NOW)
        assert times.serves(NOW - NOW % HOUR + HOUR, NOW, run=run_18z)
        assert not times.serves(NOW - NOW % HOUR + HOUR, NOW, run=run_18z + 6 * HOUR)  # not out yet
        assert not times.serves(run_18z + 50 * HOUR, NOW)


class TestRoute:
    def test_get_sources_lists_them_the_default_marked_never_a_key(self, chalice_client, monkeypatch):
        configure(monkeypatch, THREE)
        response = chalice_client.http.get("/sources")
        assert response.status_code == 200
        body = json.loads(response.body)
        assert body["default"] == "radar"
        assert [(s["name"], s["default"], s["kind"]) for s in body["sources"]] == [
            ("forecast", False, "forecast"),
            ("nexrad", False, "observations"),
            ("radar", True, "observations"),
        ]
        forecast = body["sources"][0]
        assert forecast["serving"]["latestRun"] and forecast["times"]["ahead"] == 12 * HOUR
        assert body["sources"][1]["serving"]["latestRun"] is None
        assert "map-keys" not in response.body.decode() and "client_id" not in response.body.decode()

    def test_a_wrong_configuration_is_a_503_that_says_why(self, chalice_client, monkeypatch):
        configure(monkeypatch, {"sources": {"x": {"preset": "nope"}}})
        response = chalice_client.http.get("/sources")
        assert response.status_code == 503
        assert "'sources.x.preset' must be one of" in json.loads(response.body)["error"]
