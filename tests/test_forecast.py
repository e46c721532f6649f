"""Forecast loops and loops of both: a forecast animates one model run of its source (N frames from
its run, one interval apart), a GIF per run once its frames are in or at its deadline with what came
(the gaps said); a newer run's GIF supersedes an older one's. A loop shows the newest N observed
frames, then the next M of the newest settled run. Exactly once holds as for observed frames: one
GIF per run or window, one email each; on both stores (memory and DynamoDB)."""

from __future__ import annotations

import json
import random

import pytest

from chalicelib.mediator import decide, ticks
from chalicelib.mediator.animation import Animation, EmailSpec, ForecastSpec
from chalicelib.messages import DidCreateGif, DidFail, DidFetchAmpImage, Location
from chalicelib.model import Invalid
from tests.worlds import World, deliver

HOUR = 3600
RUN = 1_700_002_800  # a run of the demo forecast source (hourly runs, out 20 minutes after)
NOW = RUN + 25 * 60  # the run is out; the next is not
SOURCES = {
    "default": "obs",
    "sources": {"obs": {"preset": "demo"}, "fc": {"preset": "demo-forecast"}},
}
FORECAST = Animation(
    image_id="fcst",
    kind="forecast",
    source="fc",
    layers=["fradar"],
    width=64,
    height=48,
    center="tulsa,ok",
    zoom=4,
    interval=900,
    frames=4,
    email=EmailSpec(to=["desk@example.com"], from_="wx@example.com"),
)
LOOP = Animation(
    image_id="loop",
    kind="loop",
    source="obs",
    layers=["radar"],
    width=64,
    height=48,
    center="tulsa,ok",
    zoom=4,
    interval=900,
    frames=3,
    forecast=ForecastSpec(source="fc", layers=["fradar"], frames=2),
)


@pytest.fixture(autouse=True)
def stage_sources(monkeypatch):
    monkeypatch.setenv("MAP_SOURCES", json.dumps(SOURCES))


def tick(world: World, image_id: str, now: int) -> None:
    """The fetch tick's slice for one animation, at `now`."""
    world.mediator.run_slice(ticks.TickSlice(kind="fetch", time=now, shard=0, only=[image_id]))


def answer(request) -> DidFetchAmpImage:
    return DidFetchAmpImage(
        image_id=request.image_id,
        valid_time=request.valid_time,
        location=Location(bucket="frames-b", key=f"{request.image_id}/{request.run_time}/{request.valid_time}.png"),
        run_time=request.run_time,
        correlation_id=request.correlation_id,
    )


def asked(world: World, image_id: str, run: int | None = None) -> list:
    return [
        m
        for m in world.published.of("please-fetch-amp-image")
        if m.image_id == image_id and (run is None or m.run_time == run)
    ]


class TestConfiguration:
    def test_a_forecast_needs_a_forecast_source_and_a_loop_its_forecast_part(self):
        assert Animation.configured(FORECAST.to_dict()) == FORECAST
        with pytest.raises(Invalid) as refused:
            Animation.configured({**FORECAST.to_dict(), "source": "obs"})
        assert "map source 'obs' serves observations: this needs a forecast source" in str(refused.value)
        with pytest.raises(Invalid) as refused:
            Animation.configured({**LOOP.to_dict(), "forecast": None})
        assert "forecast" in str(refused.value) and "required for a loop" in str(refused.value)
        with pytest.raises(Invalid) as refused:
            Animation.configured({**FORECAST.to_dict(), "source": "nowhere", "interval": 600})
        problems = str(refused.value)
        assert "no map source 'nowhere': the stage has fc and obs" in problems
        with pytest.raises(Invalid) as refused:
            Animation.configured({**LOOP.to_dict(), "interval": 420})
        assert "interval" in str(refused.value) and "step (300 s)" in str(refused.value)

    def test_the_seeds_messages_stay_valid_and_the_new_keys_are_typed(self):
        from chalicelib.messages import MessageError, parse

        seed = {
            "type": "please-fetch-amp-image",
            "dateCreated": 123456789,
            "imageId": "temps",
            "layers": ["flat-dk", "temperatures"],
            "width": 800,
            "height": 600,
            "center": "tulsa,ok",
            "zoom": 4,
            "validTime": 2345678910,
        }
        assert parse(seed).source is None and parse(seed).run_time is None
        assert parse({**seed, "source": "fc", "runTime": 2345670000}).run_time == 2345670000
        with pytest.raises(MessageError, match="runTime"):
            parse({**seed, "runTime": "2345670000"})


class TestRunTimes:
    def test_a_forecast_asks_for_n_frames_from_its_run_and_a_loop_for_the_next_m(self):
        assert decide.run_frame_times(FORECAST, RUN, NOW, 900, 6 * HOUR) == [RUN + k * 900 for k in range(4)]
        after_now = NOW - NOW % 900 + 900
        assert decide.run_frame_times(LOOP, RUN, NOW, 900, 6 * HOUR) == [after_now, after_now + 900]
        assert decide.run_frame_times(FORECAST, RUN, NOW, 900, 1800) == [RUN, RUN + 900, RUN + 1800]  # its reach


def test_a_run_is_asked_for_once_and_its_gif_made_once_when_its_frames_are_in(world):
    world.store.put_animation(FORECAST)
    for _ in range(2):  # a tick delivered twice
        tick(world, "fcst", NOW)
    requests = asked(world, "fcst")
    assert [(m.run_time, m.valid_time, m.source) for m in requests] == [(RUN, RUN + k * 900, "fc") for k in range(4)]
    assert world.store.get_animation("fcst", consistent=True).last_run == RUN
    arrivals = [answer(m) for m in requests] * 2
    random.Random(3).shuffle(arrivals)
    assert deliver(world, arrivals, rounds=1) == []
    assert [f.valid_time for f in world.store.run_frames("fcst", RUN)] == [RUN + k * 900 for k in range(4)]
    [gif] = world.published.of("please-create-gif")
    assert (gif.valid_time, gif.run_time, len(gif.locations), gif.reason) == (RUN, RUN, 4, "run")
    assert world.store.run("fcst", RUN).settled
    done = DidCreateGif(image_id="fcst", valid_time=RUN, location=Location(bucket="gifs-b", key=f"fcst/run-{RUN}.gif"))
    assert deliver(world, [done] * 3, rounds=1) == []
    [email] = world.published.of("please-send-email")
    assert email.email_id == f"fcst:{RUN}"
    assert world.store.get_animation("fcst", consistent=True).done_gif == RUN
    tick(world, "fcst", NOW + 15 * 60)  # the same run still the newest: nothing asked again
    assert len(asked(world, "fcst")) == 4


def test_a_run_with_a_frame_that_never_comes_is_made_at_its_deadline_with_the_gap_said(world):
    world.store.put_animation(FORECAST)
    tick(world, "fcst", NOW)
    requests = asked(world, "fcst")
    assert deliver(world, [answer(m) for m in requests[:3]], rounds=1) == []  # the last never answers
    assert world.published.of("please-create-gif") == []
    tick(world, "fcst", NOW + decide.RUN_DEADLINE - 60)  # before the deadline: still waiting
    assert world.published.of("please-create-gif") == []
    tick(world, "fcst", NOW + HOUR)  # past the deadline; a new run is out too: it is asked for
    [gif] = world.published.of("please-create-gif")
    assert gif.run_time == RUN and len(gif.locations) == 3
    [record] = [g for g in world.gif_records_of("fcst") if g.valid_time == RUN]
    assert record.gaps == (RUN + 3 * 900,) and record.frame_times == tuple(RUN + k * 900 for k in range(3))
    assert {m.run_time for m in asked(world, "fcst")} == {RUN, RUN + HOUR}


def test_a_failed_frame_settles_its_run_with_the_others(world):
    world.store.put_animation(FORECAST)
    tick(world, "fcst", NOW)
    requests = asked(world, "fcst")
    failed = DidFail(type="did-fail-fetch-amp-image", error="404", request=requests[1].to_dict())
    assert deliver(world, [answer(m) for m in requests if m is not requests[1]] + [failed], rounds=1) == []
    [gif] = world.published.of("please-create-gif")
    assert len(gif.locations) == 3
    [failure] = world.store.failures("fcst")
    assert failure.detail == f"run-{RUN}" and failure.valid_time == requests[1].valid_time


def test_a_newer_runs_gif_supersedes_an_older_ones_in_the_page_and_the_email(world):
    world.store.put_animation(FORECAST)
    tick(world, "fcst", NOW)
    tick(world, "fcst", NOW + HOUR)  # the next run out before the first's frames came
    for run in (RUN + HOUR, RUN):  # the newer run's frames first
        assert deliver(world, [answer(m) for m in asked(world, "fcst", run)], rounds=1) == []
    for run in (RUN + HOUR, RUN):  # and its GIF made first
        location = Location(bucket="gifs-b", key=f"fcst/run-{run}.gif")
        assert deliver(world, [DidCreateGif(image_id="fcst", valid_time=run, location=location)], rounds=1) == []
    assert world.store.get_animation("fcst", consistent=True).done_gif == RUN + HOUR  # the card shows the newer
    assert [m.email_id for m in world.published.of("please-send-email")] == [f"fcst:{RUN + HOUR}"]  # one email


def test_a_loop_shows_the_newest_observed_frames_then_the_next_of_the_newest_settled_run(world):
    world.store.put_animation(LOOP)
    tick(world, "loop", NOW)  # its observed window (3) and the run's next 2 frames
    observed = [m for m in asked(world, "loop") if m.run_time is None]
    forecast = asked(world, "loop", RUN)
    assert len(observed) == 3 and all(m.source == "obs" for m in observed)
    assert len(forecast) == 2 and all(m.source == "fc" and m.layers == ["fradar"] for m in forecast)
    assert deliver(world, [answer(m) for m in forecast], rounds=1) == []  # the run settles first
    assert world.store.get_animation("loop", consistent=True).complete_run == RUN
    assert deliver(world, [answer(m) for m in observed], rounds=1) == []
    [gif] = world.published.of("please-create-gif")
    newest = max(m.valid_time for m in observed)
    assert gif.valid_time == newest and len(gif.locations) == 5  # 3 observed, then 2 of the run
    keys = [location.key for location in gif.locations]
    assert keys[:3] == [f"loop/None/{m.valid_time}.png" for m in sorted(observed, key=lambda m: m.valid_time)]
    assert keys[3:] == [f"loop/{RUN}/{m.valid_time}.png" for m in forecast]


def test_a_forecast_refuses_a_frame_now_and_makes_its_runs_gif_now(world):
    from chalicelib.mediator import service

    world.store.put_animation(FORECAST)
    with pytest.raises(service.Refused, match="frames come with its model runs"):
        world.mediator.fetch_now("fcst", NOW)
    tick(world, "fcst", NOW)
    requests = asked(world, "fcst")
    assert deliver(world, [answer(m) for m in requests[:2]], rounds=1) == []  # two of four in
    made = world.mediator.gif_now("fcst", NOW + 60)  # settled now, with what came
    assert made.run_time == RUN and len(made.locations) == 2
    with pytest.raises(service.Refused, match="made already"):
        world.mediator.gif_now("fcst", NOW + 120)
