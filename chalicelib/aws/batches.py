"""Cutting many entries into the batches SNS PublishBatch and SQS SendMessageBatch take."""

from __future__ import annotations

from collections.abc import Sequence

MAX_ENTRIES = 10  # entries in one PublishBatch or SendMessageBatch
MAX_BYTES = 262_144  # a batch's bodies and attributes together


def chunks(weights: Sequence[int]) -> list[list[int]]:
    """The indexes of entries weighing `weights` bytes each, in order, in batches of at most 10
    entries and 256 KiB."""
    batches: list[list[int]] = []
    size = MAX_BYTES + 1
    for index, weight in enumerate(weights):
        if not batches or len(batches[-1]) == MAX_ENTRIES or size + weight > MAX_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(index)
        size += weight
    return batches
