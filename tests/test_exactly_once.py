"""The mediator's exactly-once logic, the same cases on two stores: in memory (tests/fakes.py, a
unit test: no network) and on DynamoDB (moto's server, an integration test). A decision happens
once however often and however concurrently its message arrives; its messages go out at least
once, even when a send fails midway, and as soon as anything touches the decision again; one
animation's failure in a tick costs no other its tick."""

from __future__ import annotations

import random

import pytest

from chalicelib.mediator import service, ticks
from chalicelib.mediator.animation import Animation, EmailSpec, ThumbnailSpec
from chalicelib.messages import DidCreateGif, Location
from tests.worlds import deliver, run_at_once

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
    thumbnails=[ThumbnailSpec(width=16, height=12), ThumbnailSpec(width=8, height=8)],
    email=EmailSpec(to=["desk@example.com"], from_="wx@example.com"),
)


# Ticking animations: a one-minute interval has one phase (every tick is its time) and a window of
# two frames, so a new one asks for the frames at T0 - 60 and T0 on its first tick.
TICKED = TEMPS.replace(interval=60, frames=2, every=2, email=None)
WINDOW = [T0 - 60, T0]


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


@pytest.mark.parametrize("fifo", [True, False], ids=["fifo", "racing"])
def test_frames_twice_shuffled_by_four_make_each_gif_and_email_once(world, fifo):
    """12 frames, each delivered twice in a shuffled order by four mediators at once: 12 frames
    counted, each window's GIF claimed once, and one email (one emailId) per GIF however often
    each GIF's answer comes. As the FIFO queue hands them (one after another, each delivered once),
    and racing, as a standard queue would hand them: every race has a winner, so each round
    decides one message at least, and all are decided within as many rounds as there are messages."""
    world.store.put_animation(TEMPS)
    arrivals = [world.frame(T0 + 600 * i) for i in range(12)] * 2
    random.Random(7).shuffle(arrivals)
    assert deliver(world, arrivals, rounds=1 if fifo else len(arrivals), fifo=fifo) == []
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
            location=Location(bucket="gifs-b", key=f"temps/{gif.valid_time}.gif"),
        )
        for gif in claimed
    ]
    assert deliver(world, done * 3, rounds=1 if fifo else len(done) * 3, fifo=fifo) == []
    emails = world.published.of("please-send-email")  # at least once each; the emailer sends once per emailId
    assert {m.email_id for m in emails} == {f"temps:{gif.valid_time}" for gif in claimed}
    assert len({m.to_json() for m in emails}) == len(claimed)  # a resend is the same request, not another


def test_a_send_that_fails_is_made_good_by_the_redelivery(world):
    """The decision is applied, then one of its publishes fails: the handler raises (the message comes
    back), and the redelivery, finding the decision made, sends what its frame shows not done."""
    world.store.put_animation(TEMPS)
    world.published.failing = 1
    with pytest.raises(service.NotSent):
        world.mediator.handle(world.frame(T0), T0)
    assert [(m.width, m.height) for m in world.published.of("please-create-thumbnail")] == [(8, 8)]
    world.mediator.handle(world.frame(T0), T0, again=True)  # the redelivery
    assert {(m.width, m.height) for m in world.published.of("please-create-thumbnail")} == {(16, 12), (8, 8)}
    assert world.store.get_animation("temps", consistent=True).frame_count == 1


@pytest.mark.heavy
def test_a_tick_twice_at_once_asks_once_per_animation(world, monkeypatch, animations: int = 200):
    """Animations filling a slice (ticks.SLICE, made 200 here: 1,000 as deployed), two ticks of the
    same time at once (a schedule's event delivered twice): their slices by four mediators at once
    ask for each animation's frames exactly once."""
    monkeypatch.setattr(ticks, "SLICE", animations)
    for i in range(animations):
        world.store.put_animation(TICKED.replace(image_id=f"a{i:04d}"))
    assert run_at_once(lambda: world.mediator.fetch_due_frames(T0), lambda: world.mediator.fetch_due_frames(T0)) == []
    assert len(world.queued) == 2  # the shards' first pages, packed into one full slice, per tick
    assert world.drain() == []
    asked = world.published.of("please-fetch-amp-image")
    assert sorted((m.image_id, m.valid_time) for m in asked) == [
        (f"a{i:04d}", t) for i in range(animations) for t in WINDOW
    ]  # each frame once: no more
    assert {
        state.last_requested for state in world.store.states([f"a{i:04d}" for i in range(animations)]).values()
    } == {T0}


def test_a_tick_reads_only_the_animations_whose_phase_it_is(world):
    """Ten-minute animations: a tick a minute works on about a tenth of them (the directory's entries
    say each one's phase), and over ten minutes each is asked for its frames once."""
    ids = [f"p{i:03d}" for i in range(100)]
    for image_id in ids:
        world.store.put_animation(TEMPS.replace(image_id=image_id, frames=2, every=2, email=None))
    per_minute = []
    for minute in range(10):
        world.mediator.fetch_due_frames(T0 + 60 * minute)
        slices = list(world.queued)
        assert world.drain() == []
        per_minute.append(sum(len(part.only or []) for part in slices))
    asked = world.published.of("please-fetch-amp-image")
    assert sorted(m.image_id for m in asked) == sorted(ids * 2)  # each animation's window, once
    assert sum(per_minute) == 100 and max(per_minute) <= 20, per_minute


def test_one_animations_failed_publish_costs_the_others_nothing(world):
    """A throttled publish for one animation: every other animation is asked in the first pass, and
    its own request goes out with the retry slice (not a later tick), once the publish succeeds."""
    for i in range(30):
        world.store.put_animation(TICKED.replace(image_id=f"a{i:02d}"))
    refusals = {"a07": 4}  # its two requests, refused twice

    def throttled(message) -> bool:
        if refusals.get(message.image_id, 0) > 0:
            refusals[message.image_id] -= 1
            return True
        return False

    world.published.refuse = throttled
    world.mediator.fetch_due_frames(T0)
    assert world.drain() == []  # the first pass, then two retry slices of a07 alone
    asked = [m.image_id for m in world.published.of("please-fetch-amp-image")]
    assert sorted(asked) == sorted(f"a{i:02d}" for i in range(30) for _ in WINDOW)
    assert asked[-2:] == ["a07", "a07"] and refusals == {"a07": 0}


def test_one_animations_failed_claim_costs_the_others_nothing(world):
    """The table throttles one animation's claim: the others are asked, and it is claimed and asked
    by the retry slice."""
    for i in range(30):
        world.store.put_animation(TICKED.replace(image_id=f"a{i:02d}"))
    flaky = Flaky(world.store, "fetch:a13:", times=1)
    world.mediator = world.on(flaky)
    world.mediator.fetch_due_frames(T0)
    assert world.drain() == [] and flaky.times == 0
    asked = [m.image_id for m in world.published.of("please-fetch-amp-image")]
    assert sorted(asked) == sorted(f"a{i:02d}" for i in range(30) for _ in WINDOW) and asked[-1] == "a13"


def test_a_slice_delivered_again_sends_what_it_left_unsent(world):
    """A slice's invocation stopped after its claims, before its publishes: the redelivered slice
    finds each claim made, and sends the request kept on the fetch record."""
    world.store.put_animation(TICKED)
    world.published.failing = 10**6  # nothing goes out, and the retry slices give up
    world.mediator.fetch_due_frames(T0)
    errors = world.drain()
    assert len(errors) == 1 and isinstance(errors[0], service.NotSent)  # after MAX_ATTEMPTS: a dead letter
    world.published.failing = 0
    first = ticks.TickSlice(kind="fetch", time=T0, shard=0, only=["temps"])  # the slice as the tick sent it
    world.mediator.run_slice(first, again=True)  # its redelivery
    assert sorted(m.valid_time for m in world.published.of("please-fetch-amp-image")) == WINDOW
    world.mediator.run_slice(first)  # a duplicate first delivery: decided before, sends nothing
    assert len(world.published.of("please-fetch-amp-image")) == 2


def test_a_gif_whose_publish_failed_goes_out_when_its_frame_comes_back(world):
    """The frame completing a GIF is recorded with its claim; the GIF's publish fails, so the frame's
    message comes back: the redelivery sends the GIF request kept on its record (no GIF is due by
    the count any more: it is the claim that was made)."""
    world.store.put_animation(TEMPS)
    for i in range(3):
        world.mediator.handle(world.frame(T0 + 600 * i), T0)
    world.published.refuse = lambda message: message.type == "please-create-gif"
    with pytest.raises(service.NotSent):
        world.mediator.handle(world.frame(T0 + 1800), T0)
    assert world.published.of("please-create-gif") == []
    world.published.refuse = None
    world.mediator.handle(world.frame(T0 + 1800), T0, again=True)  # the redelivery
    [gif] = world.published.of("please-create-gif")
    assert gif.valid_time == T0 + 1800 and len(gif.locations) == 4
    world.mediator.handle(DidCreateGif(image_id="temps", valid_time=T0 + 1800, location=world.frame(T0).location), T0)
    world.mediator.handle(world.frame(T0 + 1800), T0, again=True)  # the GIF is made: nothing to send
    assert len(world.published.of("please-create-gif")) == 1


def test_an_email_whose_publish_failed_goes_out_when_its_gif_comes_back(world):
    world.store.put_animation(TEMPS)
    for i in range(4):
        world.mediator.handle(world.frame(T0 + 600 * i), T0)
    done = DidCreateGif(image_id="temps", valid_time=T0 + 1800, location=world.frame(T0).location)
    world.published.failing = 1
    with pytest.raises(service.NotSent):
        world.mediator.handle(done, T0)
    world.mediator.handle(done, T0)  # a duplicate: the decision is made, nothing is sent
    assert world.published.of("please-send-email") == []
    world.mediator.handle(done, T0, again=True)  # the redelivery
    [email] = world.published.of("please-send-email")
    assert email.email_id == f"temps:{T0 + 1800}"


class Flaky:
    """A store whose apply fails (as a throttled table does) for decisions whose key starts so."""

    def __init__(self, store, prefix: str, times: int):
        self.store, self.prefix, self.times = store, prefix, times

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def apply(self, decision, log=()):
        if decision.key.startswith(self.prefix) and self.times > 0:
            self.times -= 1
            raise ConnectionError("ProvisionedThroughputExceededException")
        return self.store.apply(decision, log)


def test_shards_longer_than_a_slice_are_handed_on_page_by_page(world, monkeypatch):
    """Slices of at most 5 (ticks.SLICE, made small): each animation asked once, no slice over 5,
    a full page's rest read by the slices it hands on."""
    monkeypatch.setattr(ticks, "SLICE", 5)
    for i in range(40):
        world.store.put_animation(TICKED.replace(image_id=f"s{i:02d}"))
    world.mediator.fetch_due_frames(T0)
    sizes = []
    while world.queued:
        batch, world.queued = world.queued, []
        for part in batch:
            sizes.append(world.mediator.run_slice(part)["animations"])
    asked = sorted(m.image_id for m in world.published.of("please-fetch-amp-image"))
    assert asked == sorted(f"s{i:02d}" for i in range(40) for _ in WINDOW)
    assert max(sizes) <= 5 and sum(sizes) == 40


def test_small_shards_share_a_slice_and_a_full_page_has_its_own():
    page = service.ShardPage
    slices = ticks.pack(
        "fetch",
        T0,
        [(0, page(["a"] * 400, None)), (1, page(["b"] * 700, None)), (2, page(["c"] * 1000, "c")), (3, page([], None))],
    )
    assert [(len(s.only or []), s.shard, s.after) for s in slices] == [(400, 0, None), (1000, 2, "c"), (700, 0, None)]


def test_late_frames_under_a_gif_already_made_are_recorded_and_the_next_frame_makes_the_next(world):
    """The newest frame came early and is in the GIF counted at 8 frames; the frames just before it
    come last. The 12th frame's window ends at that same newest frame, whose GIF exists: it is
    recorded and counted without a GIF (it used to be decided again and again, never recorded), and
    the next frame's count claims the next GIF, of the full window."""
    world.store.put_animation(TEMPS)
    order = [0, 1, 2, 3, 4, 5, 6, 11, 7, 8, 9, 10]
    for i in order:
        assert deliver(world, [world.frame(T0 + 600 * i)], rounds=1) == []
    assert world.frame_times() == [T0 + 600 * i for i in range(12)]
    assert world.store.get_animation("temps", consistent=True).frame_count == 12
    assert [gif.frame_times for gif in world.gif_records()] == [
        tuple(T0 + 600 * i for i in (0, 1, 2, 3)),
        tuple(T0 + 600 * i for i in (4, 5, 6, 11)),
    ]
    assert deliver(world, [world.frame(T0 + 600 * 12)], rounds=1) == []
    assert world.gif_records()[-1].frame_times == tuple(T0 + 600 * i for i in (9, 10, 11, 12))
