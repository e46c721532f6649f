"""The mediator's store against moto's DynamoDB: conditional writes hold under races."""

from __future__ import annotations

import threading
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.mediator import decide
from chalicelib.mediator.animation import Animation, ThumbnailSpec
from chalicelib.mediator.decide import AnimationState
from chalicelib.mediator.records import Line
from chalicelib.messages import DidFail, DidFetchAmpImage, Location
from tests.conftest import examples

LOC = Location(bucket="frames", key="temps/600.png")
TEMPS = Animation(image_id="temps", layers=["radar"], width=320, height=240, center="tulsa,ok", zoom=4, frames=3)


def record_frame(t: int, state: AnimationState | None = None) -> decide.Decision:
    """The decision on a frame at t, on the animation's counts as they are now (or as `state` has them)."""
    from chalicelib.mediator import store

    state = state or store.get_animation("temps", consistent=True) or AnimationState(TEMPS)
    frame = DidFetchAmpImage(image_id="temps", valid_time=t, location=Location(bucket="frames", key=f"temps/{t}.png"))
    return decide.on_frame(state, frame, now=t)


def record_fresh(store, t: int) -> None:
    """A frame decided and applied as the mediator does: again on fresh counts while they move."""
    while True:
        try:
            return store.apply(record_frame(t))
        except decide.Outdated:
            continue


def race(count: int, work) -> list:
    """Run `work(i)` in `count` threads released at once; returns each outcome."""
    barrier, results = threading.Barrier(count), [None] * count

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_animations_are_stored_listed_and_paged(store):
    names = [f"wx-{i:02d}" for i in range(40)] + ["other"]
    for name in names:
        store.put_animation(TEMPS.replace(image_id=name))
    seen, after, pages = [], None, 0
    while True:
        page, after = store.list_animations(limit=7, after=after)
        seen += [state.animation.image_id for state in page]
        pages += 1
        if after is None:
            break
    assert sorted(seen) == sorted(names) and pages == 6  # every one once, a page of 7 at a time
    found, _ = store.list_animations(limit=100, prefix="wx-1")
    assert sorted(s.animation.image_id for s in found) == [f"wx-{i}" for i in range(10, 20)]
    assert store.get_animation("wx-00").animation == TEMPS.replace(image_id="wx-00")
    assert store.delete_animation("wx-00") and not store.delete_animation("wx-00")
    assert store.get_animation("wx-00") is None and "wx-00" not in store.states(names)
    assert len(store.states(names)) == 40


def test_the_directory_spreads_animations_over_its_shards(store):
    from chalicelib.mediator.store import keys

    names = [f"a{i:03d}" for i in range(160)]
    for name in names:
        store.put_animation(TEMPS.replace(image_id=name))
    sizes = [len(store.directory(shard).image_ids) for shard in range(keys.SHARDS)]
    assert sum(sizes) == 160 and max(sizes) <= 20  # crc32 spreads them: about 10 a shard
    first = store.directory(3, limit=2)
    assert len(first.image_ids) == 2 and first.after == first.image_ids[-1]
    rest = store.directory(3, after=first.after)
    assert rest.after is None and set(first.image_ids).isdisjoint(rest.image_ids)


def test_a_frame_is_recorded_and_counted_once(store):
    store.put_animation(TEMPS)
    store.apply(record_frame(600))
    with pytest.raises(decide.AlreadyDecided):
        store.apply(record_frame(600))
    state = store.get_animation("temps")
    assert (state.frame_count, state.newest_frame) == (1, 600)


def test_a_decision_records_its_messages_cost_in_its_own_transaction_and_rides_out_a_conflict(store, monkeypatch):
    from chalicelib.aws import table
    from chalicelib.aws.dynamodb import Cancelled
    from chalicelib.mediator.store.usage import Charge
    from chalicelib.mediator.store import decisions

    store.put_animation(TEMPS)
    real, calls = table().transact, []

    def conflicted_once(writes):
        calls.append(len(writes))
        if len(calls) == 1:  # another transaction on one of its items, this once
            raise Cancelled(["None"] * (len(writes) - 1) + ["TransactionConflict"])
        return real(writes)

    monkeypatch.setattr(table(), "transact", conflicted_once)
    monkeypatch.setattr(decisions.time, "sleep", lambda _: None)
    worker = {"function": "fetch_amp_image", "ms": 300, "memoryMb": 512, "requests": {"s3.write": 1, "sqs": 1}}
    own = {"function": "mediate", "ms": 20, "memoryMb": 512, "requests": {"dynamodb.read": 1}, "invocations": 1.0}
    store.apply(record_frame(600), usage=Charge("temps", [worker, own]))
    assert len(calls) == 2 and calls[0] == calls[1]  # tried again, whole
    [day] = store.usage("temps", 0, 32503680000)
    assert day["n.fetch_amp_image"] == 1 and day["mbms.fetch_amp_image"] == 300 * 512 and day["r.s3.write"] == 1
    assert day["r.dynamodb.write"] == 2 * calls[0]  # this transaction's items, written transactionally
    with pytest.raises(decide.AlreadyDecided):  # the same decision again: its cost is not recorded twice
        store.apply(record_frame(600), usage=Charge("temps", [worker, dict(own, requests={})]))
    assert store.usage("temps", 0, 32503680000)[0]["n.fetch_amp_image"] == 1


def test_a_decision_on_counts_that_moved_is_outdated_and_leaves_nothing(store):
    """Decided on a count another frame has moved since: the transaction is cancelled whole (the
    frame, the fetch it answers, the log lines), and the store says decide again."""
    store.put_animation(TEMPS)
    stale = record_frame(1200, store.get_animation("temps", consistent=True))
    store.apply(record_frame(600))
    line = Line("in", {"type": "did-fetch-amp-image"}, "run-stale")
    with pytest.raises(decide.Outdated):
        store.apply(stale, [line])
    assert store.frame("temps", 1200) is None and store.fetch("temps", 1200) is None
    assert store.timeline("run-stale") == []
    store.apply(record_frame(1200), [line])  # decided again, on fresh counts
    assert store.get_animation("temps").frame_count == 2 and len(store.timeline("run-stale")) == 1


def test_a_decisions_requests_are_kept_on_its_records_until_done(store):
    store.put_animation(
        Animation.from_dict({**TEMPS.to_dict(), "thumbnails": [{"width": 20, "height": 10}, {"width": 8, "height": 8}]})
    )
    decision = record_frame(600)
    store.apply(decision)
    assert store.frame("temps", 600).unsent() == list(decision.messages)
    thumb = Location(bucket="thumbs", key="temps/20x10-cover/600.jpg")
    store.apply(decide.Decision("t", (decide.RecordThumbnail("temps", 600, "20x10-cover", thumb),)))
    assert [(m.width, m.height) for m in store.frame("temps", 600).unsent()] == [(8, 8)]


def test_concurrent_duplicates_of_a_frame_count_once(store):
    store.put_animation(TEMPS)
    decision = record_frame(600)
    outcomes = race(8, lambda i: store.apply(decision))
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, decide.AlreadyDecided) for o in outcomes if o is not None)
    assert store.get_animation("temps").frame_count == 1


def test_concurrent_frames_all_count(store):
    store.put_animation(TEMPS)
    outcomes = race(8, lambda i: record_fresh(store, 600 * (i + 1)))
    assert outcomes == [None] * 8
    assert store.get_animation("temps").frame_count == 8
    assert [f.valid_time for f in store.newest_frames("temps", 3)] == [4800, 4200, 3600]
    assert [f.valid_time for f in store.newest_frames("temps", 2, up_to=3000)] == [3000, 2400]


def test_a_frame_of_an_unknown_animation_is_refused(store):
    with pytest.raises(decide.Outdated):  # its counts are gone: decided again, it finds no animation
        store.apply(record_frame(600, AnimationState(TEMPS)))
    assert store.newest_frames("temps", 5) == []


def test_gif_claims_race_one_winner(store):
    store.put_animation(TEMPS)
    quiet = TEMPS.replace(frames=4)  # three frames make no GIF by the count
    store.put_animation(quiet)
    for t in (600, 1200, 1800):
        store.apply(record_frame(t))
    state = store.get_animation("temps", consistent=True)._replace(animation=TEMPS)
    claim = decide.gif_of(state, store.newest_frames("temps", 3), now=0, reason="rebuild")
    outcomes = race(6, lambda i: store.apply(claim))
    assert sum(o is None for o in outcomes) == 1
    after = store.get_animation("temps", consistent=True)
    assert (after.gif_frame_count, after.latest_gif) == (3, 1800)
    [gif] = store.gifs("temps")
    assert (gif.status, gif.frame_times) == ("claimed", (600, 1200, 1800))


def test_a_stale_claim_loses_to_a_newer_one(store):
    store.put_animation(TEMPS.replace(frames=5))
    for t in (600, 1200, 1800, 2400):
        store.apply(record_frame(t))
    stale = AnimationState(TEMPS, frame_count=3, gif_frame_count=0)  # read before frame 2400 counted
    fresh = store.get_animation("temps", consistent=True)._replace(animation=TEMPS)
    store.apply(decide.gif_of(fresh, store.newest_frames("temps", 3), 0, "rebuild"))
    older_window = store.newest_frames("temps", 4)[1:]
    with pytest.raises(decide.Outdated):  # its GIF count moved: decided again, none is due
        store.apply(decide.gif_of(stale, older_window, 0, "rebuild"))
    assert [gif.valid_time for gif in store.gifs("temps")] == [2400]


def test_fetch_claims_move_forward_once(store):
    store.put_animation(TEMPS)
    state = store.get_animation("temps", consistent=True)
    now = 6000 + decide.phase(TEMPS, 60)
    [decision] = decide.next_fetches(state, now, 60)
    outcomes = race(4, lambda i: store.apply(decision))
    assert sum(o is None for o in outcomes) == 1
    window = [6000 - 600 * k for k in range(TEMPS.frames - 1, -1, -1)]
    assert store.get_animation("temps").last_requested == 6000
    assert sorted(f.valid_time for f in store.fetches("temps")) == window
    assert {f.status for f in store.fetches("temps")} == {"requested"}


def test_a_failed_scheduled_fetch_is_asked_again_once_and_its_failure_forgotten(store):
    store.put_animation(TEMPS)
    now = 6000 + decide.phase(TEMPS, 60)
    [claim] = decide.next_fetches(store.get_animation("temps", consistent=True), now, 60)
    store.apply(claim)
    request = next(m for m in claim.messages if m.valid_time == 5400).to_dict()
    store.apply(decide.on_failure(DidFail(type="did-fail-fetch-amp-image", error="source down", request=request)))
    state = store.get_animation("temps", consistent=True)
    assert state.failed_slots == ((5400, 1),)
    [again] = decide.next_fetches(state, now + 60, 60)
    assert [(m.valid_time, m.attempt) for m in again.messages] == [(5400, 1)]
    outcomes = race(4, lambda i: store.apply(again))
    assert sum(o is None for o in outcomes) == 1  # asked again once
    assert store.get_animation("temps", consistent=True).failed_slots == ()
    assert store.fetch("temps", 5400).status == "requested" and store.failures("temps") == []


def test_thumbnails_and_failures_are_recorded_on_their_frame(store):
    store.put_animation(TEMPS)
    store.apply(record_frame(600))
    thumb = Location(bucket="thumbs", key="temps/200x150-cover/600.jpg")
    store.apply(decide.Decision("t", (decide.RecordThumbnail("temps", 600, "200x150-cover", thumb),)))
    with pytest.raises(decide.AlreadyDecided):
        store.apply(decide.Decision("t", (decide.RecordThumbnail("temps", 600, "200x150-cover", thumb),)))
    assert store.newest_frames("temps", 1)[0].thumbnails == {"200x150-cover": thumb}
    store.apply(
        decide.Decision("f", (decide.RecordFailure("temps", 1200, "fetch-amp-image", "answered 404", "run-9"),))
    )
    [failure] = store.failures("temps")
    assert (failure.action, failure.error, failure.correlation_id) == ("fetch-amp-image", "answered 404", "run-9")
    fetches = {fetch.valid_time: fetch.status for fetch in store.fetches("temps")}
    assert fetches == {600: "done", 1200: "failed"}


def test_the_event_log_is_a_timeline_with_a_ttl(store):
    store.log_event("in", {"type": "did-fetch-amp-image", "imageId": "temps"}, "run-1")
    store.log_event("out", {"type": "please-create-thumbnail", "imageId": "temps"}, "run-1")
    entries = store.timeline("run-1")
    assert [(e.direction, e.type) for e in entries] == [
        ("in", "did-fetch-amp-image"),
        ("out", "please-create-thumbnail"),
    ]
    from chalicelib.aws import table

    items = table().query("LOG#run-1").items  # the TTL: the table's own attribute
    assert all(item["expiresAt"] > item["at"] / 1000 + 13 * 86400 for item in items)


def test_a_timeline_lists_what_came_in_before_what_its_decision_sent_out(store):
    """A decision's lines share one time: the message that led to it comes first however the lines
    were given (out lines first too), its requests after it in their order; so do lines logged at once."""
    store.put_animation(
        TEMPS.replace(thumbnails=[ThumbnailSpec(width=80, height=60), ThumbnailSpec(width=32, height=32)])
    )
    for run in range(12):  # the random tail of the sort key decided the order of lines of one time
        frame = record_frame(600 * (run + 1))
        outs = [Line("out", m, f"run-{run}") for m in frame.messages]
        assert len(outs) >= 2  # the frame's thumbnails (and a GIF, once 3 frames exist)
        line = Line("in", DidFetchAmpImage(image_id="temps", valid_time=600 * (run + 1), location=LOC), f"run-{run}")
        store.apply(frame, outs + [line])  # out lines written first in the transaction
        assert [(e.direction, e.type) for e in store.timeline(f"run-{run}")] == [
            ("in", "did-fetch-amp-image"),
            *[("out", m.type) for m in frame.messages],
        ]
        assert len({e.at for e in store.timeline(f"run-{run}")}) == 1  # one time: the key alone orders them
        store.log_events(
            [line._replace(correlation_id=f"again-{run}"), *(o._replace(correlation_id=f"again-{run}") for o in outs)]
        )
        assert [e.direction for e in store.timeline(f"again-{run}")] == ["in"] + ["out"] * len(outs)


def test_the_emulator_keeps_concurrent_counter_updates_atomic(store):
    """DynamoDB never loses an ADD; the embedded moto must not either (local/emulator.py)."""
    store.put_animation(TEMPS)
    from chalicelib.aws import table

    def add(i: int) -> None:
        for _ in range(5):
            table().update("ANIM#temps", "STATE", "ADD frameCount :one", values={":one": 1})

    race(8, add)
    assert store.get_animation("temps", consistent=True).frame_count == 40


# An AttributeValue of any kind, nested through M and L (B and BS too: they take moto's own walk).
_names = st.text(min_size=1, max_size=4)
attribute_values = st.recursive(
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text(max_size=6)),
        st.builds(lambda n: {"N": str(n)}, st.integers()),
        st.builds(lambda b: {"B": b}, st.binary(max_size=4)),
        st.builds(lambda s: {"SS": s}, st.lists(st.text(max_size=3), min_size=1, max_size=3, unique=True)),
        st.builds(lambda b: {"BS": b}, st.lists(st.binary(max_size=3), min_size=1, max_size=2, unique=True)),
        st.builds(lambda b: {"BOOL": b}, st.booleans()),
        st.just({"NULL": True}),
    ),
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(_names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.dictionaries(_names, attribute_values, min_size=1, max_size=4), max_size=3))
def test_the_emulator_answers_items_as_motos_own_serializer_does(items):
    """local/emulator.py puts a plain AttributeValue in an answer as it is, not walked through the
    shape: byte for byte the answer moto's own walk gives, whatever the items hold."""
    from moto.core.serialize import BaseJSONSerializer, get_serializer_class
    from moto.core.utils import get_service_model

    from local import emulator

    emulator._quick_attribute_values()
    query = get_service_model("dynamodb").operation_model("Query")
    serializer = get_serializer_class("dynamodb", "json")
    result = {"Items": items, "Count": len(items), "ScannedCount": len(items), "LastEvaluatedKey": (items or [None])[0]}
    quick = serializer(query).serialize(result)
    walked = serializer(query)
    walked._serialize_type_structure = types.MethodType(BaseJSONSerializer._weathergif_walk, walked)
    assert quick == walked.serialize(result)


def test_the_emulator_shows_a_read_no_write_half_done(store, monkeypatch):
    """DynamoDB's reads never see a write half applied. moto's update of a new item writes the
    item's keys alone first, then the rest: a read made at that moment must wait for the whole
    (local/emulator.py), not answer an item of keys only."""
    from moto.dynamodb.models.table import Table

    from chalicelib.aws import table

    put, read = Table.put_item, {}

    def put_item(self, item_attrs, *args, **kwargs):
        done = put(self, item_attrs, *args, **kwargs)
        if set(item_attrs) == {"pk", "sk"} and not read:  # the update's first step: keys alone
            reader = threading.Thread(target=lambda: read.update(item=table().get("ANIM#temps", "STATE")))
            reader.start()
            reader.join(0.3)  # long enough for a read let in at once; one that waits for the write goes on
            read["reader"] = reader
        return done

    monkeypatch.setattr(Table, "put_item", put_item)
    store.put_animation(TEMPS)
    read["reader"].join()
    assert read["item"] is not None and "config" in read["item"], read["item"]
