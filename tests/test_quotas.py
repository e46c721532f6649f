"""AWS's documented quotas, against what the design sends at 100,000 animations (docs/scale.md).

The figures are AWS's (checked 2026-12; each named with where it is documented) and the load is
counted from the design: a frame every 5 minutes per animation, each frame answered by its fetch and
each thumbnail size, a GIF per 12 frames with its email."""

from __future__ import annotations

from tests.template import template

# SQS developer guide, "Amazon SQS message quotas": FIFO, per API action (SendMessage, ...).
FIFO_DEFAULT_TPS = 300  # a FIFO queue in its default mode, per partition without batching
FIFO_HIGH_THROUGHPUT_TPS = {"us-east-1": 70_000, "us-west-2": 70_000, "eu-west-1": 70_000, "us-east-2": 19_000}
PARTITION_TPS = 300  # high-throughput mode: each partition, per action; a message group lives on one
# Lambda quotas: concurrent executions per region by default.
LAMBDA_CONCURRENCY = 1000

ANIMATIONS, INTERVAL, THUMBNAILS, FRAMES_PER_GIF = 100_000, 300, 2, 12


def mediator_sends_per_second() -> float:
    """SendMessage calls a second on the mediator's queue: each answer is a send of its own."""
    frames = ANIMATIONS / INTERVAL
    per_frame = 1 + THUMBNAILS  # did-fetch-amp-image and a did-create-thumbnail per size
    per_gif = 2 / FRAMES_PER_GIF  # did-create-gif and did-send-email, a GIF per 12 frames
    return frames * (per_frame + per_gif)


def test_the_mediators_fifo_queue_takes_100000_animations_in_high_throughput_mode_only():
    sends = mediator_sends_per_second()
    assert 1000 < sends < 1100
    assert sends > FIFO_DEFAULT_TPS  # the default FIFO mode would throttle the workers' answers...
    assert all(sends < quota * 0.1 for quota in FIFO_HIGH_THROUGHPUT_TPS.values())  # ...high throughput: < 10%
    queue = template(plain=True)["Resources"]["MediatorQueue"]["Properties"]
    assert queue["FifoQueue"] is True
    assert (queue["DeduplicationScope"], queue["FifoThroughputLimit"]) == ("messageGroup", "perMessageGroupId")


def test_one_animation_is_far_below_its_partitions_quota_even_filling_its_window():
    """A message group (an animation) is served by one partition: a new animation's window of 12
    frames with two thumbnail sizes at once is 36 answers in a few seconds."""
    window = 12 * (1 + THUMBNAILS)
    assert window / 5 < PARTITION_TPS / 10  # within five seconds: a tenth of the partition's


def test_the_ticks_slices_and_the_mediator_stay_within_lambdas_concurrency():
    """At most 1,000 animations a tick slice; with phases, a minute's tick asks about a fifth of the
    animations of 5-minute intervals: 20 slices, beside the mediator's groups in flight."""
    due_per_minute = ANIMATIONS * 60 / INTERVAL
    slices = -(-due_per_minute // 1000) + 16  # the shards' first pages
    assert slices < LAMBDA_CONCURRENCY / 20
