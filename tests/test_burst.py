"""A burst on one animation: 200 of its frames delivered at once to 10 concurrent mediators,
through the mediator's FIFO queue on the embedded AWS, as a backfill, a source catching up after an
outage or a redrive of a hundred failures brings them. Every frame is recorded once, each window's
GIF claimed once, nothing is dead-lettered, and no message needs more than two receives."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from chalicelib.aws import client
from chalicelib.bus import send_to_mediator
from chalicelib.mediator import handler, store
from chalicelib.mediator.animation import Animation
from chalicelib.messages import DidFetchAmpImage, Location
from chalicelib.settings import names
from tests.images import encode, radar_frame

T0 = 1_700_000_400
FRAMES = 200


@pytest.fixture
def runtime(emulator):
    """Ten mediators at once, with the deployed queue settings (visibility 180 s, 5 receives)."""
    from local.provision import provision
    from local.runtime import Runtime

    from app import app

    emulator.reset()
    outputs = provision(sender="wx@example.com")
    rt = Runtime(app, workers=10, visibility_timeout=180, on_failure_queue=outputs["WorkerFailureQueue"]).setup()
    yield rt
    rt.stop()


@pytest.mark.heavy
def test_two_hundred_frames_of_one_animation_at_once_are_each_decided_once(runtime, monkeypatch):
    store.put_animation(
        Animation(image_id="burst", layers=["radar"], width=32, height=24, center="tulsa,ok", zoom=4, frames=12)
    )
    s3, bucket = client("s3"), names().frames_bucket
    image = encode(radar_frame(0, 32, 24), "PNG")
    for i in range(FRAMES):
        s3.put_object(Bucket=bucket, Key=f"burst/32x24/{T0 + 600 * i}.png", Body=image)

    receives: Counter[str] = Counter()  # the greatest receive count each message was handled at
    lock = threading.Lock()
    handle = handler._record

    def counted(record):
        with lock:
            receives[record.message_id] = max(receives[record.message_id], record.attribute("ApproximateReceiveCount"))
        return handle(record)

    monkeypatch.setattr(handler, "_record", counted)
    for i in range(FRAMES):  # all on the queue before any mediator runs
        send_to_mediator(
            DidFetchAmpImage(
                image_id="burst",
                valid_time=T0 + 600 * i,
                location=Location(bucket=bucket, key=f"burst/32x24/{T0 + 600 * i}.png"),
                correlation_id=f"run-{i}",
            )
        )
    runtime.drain(timeout=240)

    state = store.get_animation("burst", consistent=True)
    assert state.frame_count == FRAMES
    assert len(store.frames("burst", limit=1000)) == FRAMES
    gifs = store.gifs("burst", limit=100, newest_first=False)
    windows = [gif.frame_times for gif in gifs]
    assert len(windows) == len(set(windows)) == FRAMES // 12  # one GIF per 12 new frames, each once
    assert all(gif.status == "done" for gif in gifs)
    assert runtime.dead_letters() == [] and store.dead_letters() == []
    frame_messages = [m for m in receives if m]  # did-fetch and did-create-gif alike
    assert len(frame_messages) >= FRAMES
    assert max(receives.values()) <= 2, receives.most_common(3)
    assert runtime.stats.count("mediate", "error") == 0
