"""The mediator on one of two stores, in memory (tests/fakes.py) or on DynamoDB (moto's server), for
the exactly-once cases (tests/test_exactly_once.py, tests/test_forecast.py): the `world` fixture of
tests/conftest.py, and ways to deliver messages as SQS would."""

from __future__ import annotations

import threading

from chalicelib.mediator import service
from chalicelib.messages import DidFetchAmpImage, Location
from tests.fakes import MemoryStore, Published

T0 = 1_700_000_400


class World:
    """A Mediator on one of the two stores, its publisher, its store to look into, and its tick
    queue: slices handed on wait in `queued` until drain() works on them (at once, in threads)."""

    def __init__(self, store, published: Published):
        self.store, self.published = store, published
        self.queued: list = []
        self._lock = threading.Lock()
        self.mediator = self.on(store)

    def on(self, store) -> service.Mediator:
        return service.Mediator(
            service.Ports(
                store, self.published, lambda location, expiry: f"s3://{location.key}", lambda: float(T0), self.enqueue
            )
        )

    def enqueue(self, slices: list) -> list:
        with self._lock:
            self.queued += slices
        return []

    def drain(self, threads: int = 4) -> list[BaseException]:
        """Every slice handed on, and those they hand on, each by one of `threads` mediators at once."""
        errors: list[BaseException] = []
        while True:
            with self._lock:
                batch, self.queued = self.queued, []
            if not batch:
                return errors
            errors += run_at_once(*[lambda part=part: self.mediator.run_slice(part) for part in batch], threads=threads)

    def frame(self, t: int) -> DidFetchAmpImage:
        return DidFetchAmpImage(
            image_id="temps",
            valid_time=t,
            location=Location(bucket="frames-b", key=f"temps/{t}.png"),
            correlation_id=f"run-{t}",
        )

    def gif_records(self):
        if isinstance(self.store, MemoryStore):
            return sorted(self.store.gifs.values())
        return sorted(self.store.gifs("temps", limit=100))

    def gif_records_of(self, image_id: str):
        if isinstance(self.store, MemoryStore):
            return sorted(gif for (i, _), gif in self.store.gifs.items() if i == image_id)
        return sorted(self.store.gifs(image_id, limit=100))

    def frame_times(self) -> list[int]:
        return sorted(frame.valid_time for frame in self.store.newest_frames("temps", 1000))


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


def deliver(world: World, messages: list, rounds: int = 5, fifo: bool = True) -> list[BaseException]:
    """Each message handled by one of four mediators at once; one that raises comes back, as SQS
    brings it back after its visibility timeout, up to `rounds` deliveries. The errors of the last round.

    As the mediator's FIFO queue hands them (`fifo`): an animation's messages one after another, in
    the order given, different animations' at once. Without it, as a standard queue would: any
    message at any time, so decisions on one animation race (and one whose animation's counts kept
    moving under it, Contended, comes back)."""
    pending, errors = list(messages), []
    for attempt in range(rounds):
        failed: list = []
        again = attempt > 0
        if fifo:
            groups: dict[str, list] = {}
            for message in pending:
                groups.setdefault(getattr(message, "image_id", ""), []).append(message)
            calls = [
                lambda g=group, a=again, f=failed: [_or_again(world, m, a, f) for m in g] for group in groups.values()
            ]
        else:
            calls = [lambda m=m, a=again, f=failed: _or_again(world, m, a, f) for m in pending]
        errors = run_at_once(*calls)
        if not failed:
            return errors
        pending = failed
    return errors or [RuntimeError(f"{len(pending)} messages still failing")]


def _or_again(world: World, message, again: bool, failed: list) -> None:
    try:
        world.mediator.handle(message, T0, again=again)
    except service.Contended:
        failed.append(message)
