"""The mediator's exactly-once logic, the same cases on two stores: in memory (tests/fakes.py, a
unit test: no network) and on DynamoDB (moto's server, an integration test). A decision happens
once however often and however concurrently its message arrives; its messages go out at least
once, even when a send fails midway."""

from __future__ import annotations

import random
import threading

import pytest

from chalicelib.mediator import service
from chalicelib.mediator.animation import Animation
from chalicelib.messages import DidCreateGif, DidFetchAmpImage, Location
from tests.fakes import MemoryStore, Published

T0 = 1_700_000_400
TEMPS = Animation(
    image_id="temps",
    layers=["radar"],
    width=64,
    height=48,
    center="tulsa,ok",
    zoom=4,
    interval=600,
    frames=4,
    every=4,
    thumbnails=[{"width": 16, "height": 12}, {"width": 8, "height": 8}],
    email={"to": ["desk@example.com"], "from": "wx@example.com"},
)


class World:
    """A Mediator on one of the two stores, its publisher, and its store to look into."""

    def __init__(self, store, published: Published):
        self.store, self.published = store, published
        self.mediator = service.Mediator(
            service.Ports(store, published, lambda location, expiry: f"s3://{location.key}", lambda: float(T0))
        )

    def frame(self, t: int) -> DidFetchAmpImage:
        return DidFetchAmpImage(
            image_id="temps",
            valid_time=t,
            location=Location(Bucket="frames-b", Key=f"temps/{t}.png"),
            correlation_id=f"run-{t}",
        )

    def gif_records(self):
        if isinstance(self.store, MemoryStore):
            return sorted(self.store.gifs.values())
        return sorted(self.store.gifs("temps", limit=100))

    def frame_times(self) -> list[int]:
        return sorted(frame.valid_time for frame in self.store.newest_frames("temps", 1000))


@pytest.fixture(params=["memory", "dynamodb"])
def world(request) -> World:
    if request.param == "memory":
        return World(MemoryStore(clock=lambda: float(T0)), Published())
    request.getfixturevalue("aws")  # moto's server, fresh resources
    from chalicelib.mediator import store

    return World(store, Published())


def run_at_once(*calls, threads: int = 4) -> list[BaseException]:
    """Each call in one of `threads` threads, all at once; the errors raised."""
    queue, errors, lock = list(calls), [], threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                call = queue.pop()
            try:
                call()
            except Exception as exc:  # a redelivery would come: the caller sees it
                with lock:
                    errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_a_frame_twice_is_recorded_once_and_forks_once(world):
    world.store.put_animation(TEMPS)
    for _ in range(2):
        world.mediator.handle(world.frame(T0), T0)
    assert world.frame_times() == [T0]
    assert world.store.get_animation("temps", consistent=True).frame_count == 1
    asked = world.published.of("please-create-thumbnail")
    assert sorted((m.width, m.height, m.correlation_id) for m in asked) == [(8, 8, f"run-{T0}"), (16, 12, f"run-{T0}")]


def test_the_same_frame_at_once_by_eight_is_counted_once(world):
    world.store.put_animation(TEMPS)
    assert run_at_once(*[lambda: world.mediator.handle(world.frame(T0), T0)] * 8) == []
    assert world.store.get_animation("temps", consistent=True).frame_count == 1
    asked = {(m.width, m.height) for m in world.published.of("please-create-thumbnail")}
    assert asked == {(16, 12), (8, 8)}  # at least once each, and nothing else


def test_frames_twice_shuffled_by_four_make_each_gif_and_email_once(world):
    """12 frames, each delivered twice in a shuffled order by four mediators at once: 12 frames
    counted, each window's GIF claimed once, and one email (one emailId) per GIF however often
    each GIF's answer comes."""
    world.store.put_animation(TEMPS)
    arrivals = [world.frame(T0 + 600 * i) for i in range(12)] * 2
    random.Random(7).shuffle(arrivals)
    assert run_at_once(*[lambda m=m: world.mediator.handle(m, T0) for m in arrivals]) == []
    assert world.frame_times() == [T0 + 600 * i for i in range(12)]
    assert world.store.get_animation("temps", consistent=True).frame_count == 12
    claimed = world.gif_records()
    windows = [gif.frame_times for gif in claimed]
    assert len(windows) == len(set(windows)) >= 1 and all(len(w) == 4 for w in windows)
    asked = world.published.of("please-create-gif")
    assert {m.valid_time for m in asked} == {gif.valid_time for gif in claimed}

    done = [
        DidCreateGif(
            image_id="temps",
            valid_time=gif.valid_time,
            location=Location(Bucket="gifs-b", Key=f"temps/{gif.valid_time}.gif"),
        )
        for gif in claimed
    ]
    assert run_at_once(*[lambda d=d: world.mediator.handle(d, T0) for d in done * 3]) == []
    emails = world.published.of("please-send-email")  # at least once each; the emailer sends once per emailId
    assert {m.email_id for m in emails} == {f"temps:{gif.valid_time}" for gif in claimed}
    assert len({m.to_json() for m in emails}) == len(claimed)  # a resend is the same request, not another


def test_a_send_that_fails_is_made_good_by_the_redelivery(world):
    """The decision is applied, then its first publish fails: the handler raises (the message comes
    back), and the redelivery, finding the decision made, sends what it left unsent."""
    world.store.put_animation(TEMPS)
    world.published.failing = 1
    with pytest.raises(ConnectionError):
        world.mediator.handle(world.frame(T0), T0)
    assert world.published.of("please-create-thumbnail") == []
    world.mediator.handle(world.frame(T0), T0)  # the redelivery
    assert len(world.published.of("please-create-thumbnail")) == 2
    assert world.store.get_animation("temps", consistent=True).frame_count == 1


def test_a_tick_twice_at_once_asks_once_per_animation(world):
    for i in range(20):
        world.store.put_animation(TEMPS.model_copy(update={"image_id": f"a{i:02d}", "email": None}))
    assert (
        run_at_once(lambda: world.mediator.fetch_due_frames(T0), lambda: world.mediator.fetch_due_frames(T0), threads=2)
        == []
    )
    asked = world.published.of("please-fetch-amp-image")
    assert sorted({m.image_id for m in asked}) == [f"a{i:02d}" for i in range(20)]
    assert all(m.valid_time == T0 for m in asked)
    assert all(world.store.get_animation(f"a{i:02d}").last_requested == T0 for i in range(20))


def test_what_a_stopped_sender_left_goes_out_with_the_next_tick(world, monkeypatch):
    world.store.put_animation(TEMPS.model_copy(update={"email": None}))
    world.published.failing = 1  # the tick's send fails: the fetch request waits in the outbox
    with pytest.raises(ConnectionError):
        world.mediator.fetch_due_frames(T0)
    monkeypatch.setattr(service, "STALE_OUTBOX_SECONDS", -60)  # as if two minutes had passed
    result = world.mediator.fetch_due_frames(T0)
    assert result["resent"] == [f"fetch:temps:{T0}"] and result["asked"] == []
    assert [m.valid_time for m in world.published.of("please-fetch-amp-image")] == [T0]
