"""What a tick and a frame cost in AWS calls, counted with a botocore hook on the app's own
clients (local/calls.py), against the embedded AWS: the real store, SNS and the tick queue.

The budget: at most 1.5 calls per animation a tick asks for (besides a page of each directory shard),
at most 5 calls to take in a frame.
"""

from __future__ import annotations

import pytest

from chalicelib.mediator import service
from chalicelib.mediator.animation import Animation, EmailSpec, ThumbnailSpec
from chalicelib.mediator.metering import metered
from chalicelib.messages import DidCreateGif, DidFetchAmpImage, Location
from local.calls import Calls, run_tick

T0 = 1_700_000_400
KANSAS = Animation(
    image_id="kansas",
    layers=["radar"],
    width=64,
    height=48,
    center="wichita,ks",
    zoom=4,
    interval=300,
    frames=4,
    every=2,
    thumbnails=[ThumbnailSpec(width=16, height=12), ThumbnailSpec(width=8, height=8)],
    email=EmailSpec(to=["desk@example.com"], from_="wx@example.com"),
)


@pytest.fixture
def counted(aws, monkeypatch):
    from chalicelib.mediator import metering

    metering.flush(force=True)  # what earlier tests left owed
    monkeypatch.setattr(metering, "FLUSH_SECONDS", 10**6)  # and none written while counting: see below
    with Calls() as calls:
        yield calls


TICK = 60  # the fetch schedule's period (settings.TICK_SECONDS)
DIRECTORY = 16  # a tick reads the first page of each directory shard


def interval_of_ticks(start: int, counted: Calls) -> dict[str, int]:
    """The five one-minute ticks of one 300 s interval: what they asked, and in how many slices."""
    asked = slices = 0
    for minute in range(KANSAS.interval // TICK):
        ran = run_tick("fetch", start + minute * TICK, counted)
        asked, slices = asked + ran["asked"], slices + ran["slices"]
    return {"asked": asked, "slices": slices}


@pytest.mark.heavy
@pytest.mark.parametrize("animations", [100, 400])
def test_a_tick_costs_at_most_1_5_calls_per_animation_it_asks_for(store, counted, animations):
    """Over an interval, each animation is asked for its newest frame once, at its phase: five ticks,
    each over about a fifth of them. Each costs at most 1.5 calls per animation it asks for, besides
    the directory's pages (16 queries a tick, whatever the number of animations)."""
    with counted.paused():
        for i in range(animations):
            store.put_animation(KANSAS.replace(image_id=f"k{i:04d}", email=None))
        first = interval_of_ticks(T0, counted)  # new: each asks for its window of four at once
    assert first["asked"] == 4 * animations  # (requests: four frames each)
    counted.reset()
    ran = interval_of_ticks(T0 + KANSAS.interval, counted)
    assert ran["asked"] == animations  # each once, over the interval
    ticks = KANSAS.interval // TICK
    per_animation = (counted.total - DIRECTORY * ticks) / animations
    assert per_animation <= 1.5, dict(counted.by_operation)
    # Claims are one conditional transaction each; everything else comes in batches.
    assert counted.by_operation["dynamodb.TransactWriteItems"] == animations
    assert counted.by_operation["sns.PublishBatch"] <= animations // 10 + ran["slices"]
    # A write a slice for its stale animations (the status view's). The ticks' usage (shared) waits
    # in the container's ledger: written once a minute at most, not a call a tick.
    assert counted.by_operation["dynamodb.PutItem"] == ran["slices"] + ticks  # and a heartbeat a tick
    assert "dynamodb.UpdateItem" not in counted.by_operation
    reads = (
        counted.of("dynamodb")
        - counted.by_operation["dynamodb.TransactWriteItems"]
        - counted.by_operation["dynamodb.PutItem"]
    )
    assert reads <= DIRECTORY * ticks + animations // 100 + ran["slices"]  # the pages; the due states, 100 a call
    assert "sns.Publish" not in counted.by_operation

    counted.reset()  # the same ticks again (a schedule's events delivered twice): nothing is asked twice
    assert interval_of_ticks(T0 + KANSAS.interval, counted)["asked"] == 0
    assert counted.by_operation["dynamodb.TransactWriteItems"] == 0 and counted.of("sns") == 0


def test_a_new_animations_window_is_asked_for_in_one_claim(store, counted):
    """A new animation asks for its whole window (four frames) at once, as the API starts it: one
    transaction and one publish (besides reading its state), nothing on the tick queue."""
    with counted.paused():
        store.put_animation(KANSAS.replace(email=None))
    service.mediator().start("kansas", T0)  # as the API does when it is created
    assert counted.by_operation["dynamodb.TransactWriteItems"] == 1
    assert counted.by_operation["sns.PublishBatch"] == 1
    assert counted.total <= 4, dict(counted.by_operation)
    assert "sqs.SendMessageBatch" not in counted.by_operation


@pytest.mark.parametrize("animations", [100])
def test_creating_animations_at_once_costs_what_their_frames_cost(store, counted, animations):
    """Many animations created at once: each its window in one claim and its share of 10-message
    publishes, at most 5 calls to ask for a window of four frames, and the regular tick's slices
    meanwhile as cheap as ever (the creations queue nothing for it to wait behind)."""
    with counted.paused():
        for i in range(animations):
            store.put_animation(KANSAS.replace(image_id=f"n{i:04d}", email=None))
    for i in range(animations):
        service.mediator().start(f"n{i:04d}", T0)
    assert counted.by_operation["dynamodb.TransactWriteItems"] == animations
    assert counted.total / animations <= 4, dict(counted.by_operation)  # state, claim, publish(es)
    counted.reset()
    ran = run_tick("fetch", T0 + KANSAS.interval, counted)  # their next frames, at their phases
    assert ran["asked"] > 0 and (counted.total - DIRECTORY) / ran["asked"] <= 1.5, dict(counted.by_operation)


def test_taking_in_a_frame_costs_at_most_5_calls(store, counted):
    """Each frame of an animation (thumbnails to ask for, every second one completing a GIF that
    is emailed), and the GIF's answer."""
    with counted.paused():
        store.put_animation(KANSAS)
    costs = []
    for n in range(4):
        t = T0 + n * 300
        counted.reset()
        frame = DidFetchAmpImage(
            image_id="kansas",
            valid_time=t,
            location=Location(bucket="frames-b", key=f"k/{t}.png"),
            correlation_id=f"r{n}",
        )
        with metered("mediate"):  # as the handler runs it: its usage recorded
            service.handle_record(frame.to_json())
        costs.append(dict(counted.by_operation))
    assert all(sum(cost.values()) <= 5 for cost in costs), costs
    # frame, counts, log and what it cost (its usage record) at once
    assert all(cost.get("dynamodb.TransactWriteItems") == 1 for cost in costs), costs
    assert not any("dynamodb.UpdateItem" in cost for cost in costs), costs
    gif = store.gifs("kansas", limit=10)
    assert gif, "the fourth frame completes a GIF"
    counted.reset()
    made = DidCreateGif(
        image_id="kansas",
        valid_time=gif[0].valid_time,
        location=Location(bucket="gifs-b", key="k.gif"),
        frames=4,
        correlation_id="g",
    )
    with metered("mediate"):
        service.handle_record(made.to_json())
    assert counted.total <= 5, dict(counted.by_operation)
    assert counted.by_operation["sns.PublishBatch"] == 1  # the email asked for
