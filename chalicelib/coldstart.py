"""A cold start's loading, out of the cyclic garbage collector's way.

A handler's first call imports its modules and builds its AWS clients: hundreds of thousands of
objects (modules, functions, botocore's service models), nearly all of them kept for the
container's life. Python's cyclic collector runs every few hundred allocations and its older
generations walk everything allocated so far, again and again: 15-20% of a first call's CPU
(bench/firstcall.py). `loading` pauses the collector while something is loaded, then freezes
what is alive (gc.freeze: it is left out of every later collection, which also makes those
shorter for the container's life). Reference counting frees objects as always; only cycles
among what was alive at the freeze are never collected, and a load happens once per process.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_done: set[str] = set()
_lock = threading.Lock()


@contextmanager
def loading(what: str) -> Iterator[None]:
    """Load `what` (a name for it: a handler's modules, a service's client) with the collector
    paused, then freeze it; once per process (a later use just runs its body)."""
    with _lock:
        first = what not in _done
        _done.add(what)
    if not first:
        yield
        return
    paused = gc.isenabled()  # not when an outer load has paused it already: that one resumes it
    if paused:
        gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if paused:
            gc.enable()
