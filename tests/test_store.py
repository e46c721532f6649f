"""The mediator's store against moto's DynamoDB: conditional writes hold under races."""

from __future__ import annotations

import threading

import pytest

from chalicelib.mediator import decide
from chalicelib.mediator.animation import Animation
from chalicelib.mediator.decide import AnimationState
from chalicelib.messages import Location, PleaseCreateThumbnail

TEMPS = Animation(image_id="temps", layers=["radar"], width=320, height=240, center="tulsa,ok", zoom=4, frames=3)


def record_frame(t: int) -> decide.Decision:
    return decide.Decision(
        key=f"frame:temps:{t}",
        changes=(decide.RecordFrame("temps", t, Location(Bucket="frames", Key=f"temps/{t}.png"), "run", t),),
    )


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
    for name in ("c", "a", "b"):
        store.put_animation(TEMPS.model_copy(update={"image_id": name}))
    page, after = store.list_animations(limit=2)
    assert [s.animation.image_id for s in page] == ["a", "b"] and after == "b"
    page, after = store.list_animations(limit=2, after=after)
    assert [s.animation.image_id for s in page] == ["c"] and after is None
    assert store.get_animation("a").animation == TEMPS.model_copy(update={"image_id": "a"})
    assert store.delete_animation("a") and not store.delete_animation("a")
    assert store.get_animation("a") is None


def test_a_frame_is_recorded_and_counted_once(store):
    store.put_animation(TEMPS)
    store.apply(record_frame(600))
    with pytest.raises(store.AlreadyDecided):
        store.apply(record_frame(600))
    assert store.get_animation("temps").frame_count == 1


def test_concurrent_duplicates_of_a_frame_count_once(store):
    store.put_animation(TEMPS)
    outcomes = race(8, lambda i: store.apply(record_frame(600)))
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, store.AlreadyDecided) for o in outcomes if o is not None)
    assert store.get_animation("temps").frame_count == 1


def test_concurrent_frames_all_count(store):
    store.put_animation(TEMPS)
    outcomes = race(8, lambda i: store.apply(record_frame(600 * (i + 1))))
    assert outcomes == [None] * 8
    assert store.get_animation("temps").frame_count == 8
    assert [f.valid_time for f in store.newest_frames("temps", 3)] == [4800, 4200, 3600]
    assert [f.valid_time for f in store.newest_frames("temps", 2, up_to=3000)] == [3000, 2400]


def test_a_frame_of_an_unknown_animation_is_refused(store):
    with pytest.raises(store.AlreadyDecided):
        store.apply(record_frame(600))
    assert store.newest_frames("temps", 5) == []


def test_gif_claims_race_one_winner(store):
    store.put_animation(TEMPS)
    for t in (600, 1200, 1800):
        store.apply(record_frame(t))
    state = store.get_animation("temps", consistent=True)
    claim = decide.gif_of(state, store.newest_frames("temps", 3), now=0, reason="count")
    outcomes = race(6, lambda i: store.apply(claim))
    assert sum(o is None for o in outcomes) == 1
    after = store.get_animation("temps", consistent=True)
    assert (after.gif_frame_count, after.latest_gif) == (3, 1800)
    [gif] = store.gifs("temps")
    assert (gif.status, gif.frame_times) == ("claimed", (600, 1200, 1800))


def test_a_stale_claim_loses_to_a_newer_one(store):
    store.put_animation(TEMPS)
    for t in (600, 1200, 1800, 2400):
        store.apply(record_frame(t))
    stale = AnimationState(TEMPS, frame_count=3, gif_frame_count=0)  # read before frame 2400 counted
    fresh = store.get_animation("temps", consistent=True)
    store.apply(decide.gif_of(fresh, store.newest_frames("temps", 3), 0, "count"))
    older_window = store.newest_frames("temps", 4)[1:]
    with pytest.raises(store.AlreadyDecided):
        store.apply(decide.gif_of(stale, older_window, 0, "count"))
    assert [gif.valid_time for gif in store.gifs("temps")] == [2400]


def test_fetch_claims_move_forward_once(store):
    store.put_animation(TEMPS)
    state = store.get_animation("temps")
    decision = decide.next_fetch(state, now=6000)
    outcomes = race(4, lambda i: store.apply(decision))
    assert sum(o is None for o in outcomes) == 1
    assert store.get_animation("temps").last_requested == 6000
    [fetch] = store.fetches("temps")
    assert fetch.status == "requested"


def test_the_outbox_keeps_a_decisions_messages_until_sent(store):
    store.put_animation(TEMPS)
    message = PleaseCreateThumbnail(
        image_id="temps", location=Location(Bucket="frames", Key="k"), width=10, height=10, valid_time=600
    )
    decision = record_frame(600)._replace(messages=(message,))
    store.apply(decision)
    assert store.pending(decision.key) == [message]
    assert store.stale_outbox(older_than=-5) == [decision.key]
    store.sent(decision.key)
    assert store.pending(decision.key) == [] and store.stale_outbox(older_than=-5) == []


def test_thumbnails_and_failures_are_recorded_on_their_frame(store):
    store.put_animation(TEMPS)
    store.apply(record_frame(600))
    thumb = Location(Bucket="thumbs", Key="temps/200x150-cover/600.jpg")
    store.apply(decide.Decision("t", (decide.RecordThumbnail("temps", 600, "200x150-cover", thumb),)))
    with pytest.raises(store.AlreadyDecided):
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


def test_the_emulator_keeps_concurrent_counter_updates_atomic(store):
    """DynamoDB never loses an ADD; the embedded moto must not either (local/emulator.py)."""
    store.put_animation(TEMPS)
    from chalicelib.aws import table

    def add(i: int) -> None:
        for _ in range(5):
            table().update("ANIMATIONS", "temps", "ADD frameCount :one", values={":one": 1})

    race(8, add)
    assert store.get_animation("temps", consistent=True).frame_count == 40
