"""A cold start's loading: the cyclic collector paused while it loads, what it loaded frozen, once."""

from __future__ import annotations

import gc
import threading

import pytest

from chalicelib import coldstart

pytestmark = pytest.mark.unit


# Names no other code loads by: the test process's other threads (an emulator's, a runtime's) load
# clients as "client <service>", and forgetting those would make their next use a first load that
# pauses the collector under these tests' feet.
HANDLER, CLIENT = "handler (test)", "client s3 (test)"


@pytest.fixture(autouse=True)
def _fresh():
    coldstart._done.difference_update({HANDLER, CLIENT})
    yield
    coldstart._done.difference_update({HANDLER, CLIENT})
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_paused_while_loading_then_resumed_and_what_was_loaded_frozen():
    gc.unfreeze()
    frozen = gc.get_freeze_count()
    with coldstart.loading(HANDLER):
        assert not gc.isenabled()
        loaded = [{"model": i} for i in range(1000)]  # noqa: F841  (alive at the freeze)
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + 1000


def test_a_second_load_of_the_same_thing_neither_pauses_nor_freezes(monkeypatch):
    with coldstart.loading(HANDLER):
        pass
    here, freezes = threading.get_ident(), []  # (other threads of the test process may load clients)
    freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: (freezes.append(threading.get_ident()), freeze()))
    with coldstart.loading(HANDLER):
        assert gc.isenabled()
    assert here not in freezes
    with coldstart.loading(CLIENT):
        pass
    assert here in freezes  # (the wrapper sees a first load's freeze)


def test_a_load_inside_a_load_leaves_resuming_to_the_outer_one():
    with coldstart.loading(HANDLER):
        with coldstart.loading(CLIENT):
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_resumes_when_loading_fails():
    with pytest.raises(ImportError):
        with coldstart.loading(HANDLER):
            raise ImportError("no module named x")
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    with coldstart.loading(HANDLER):
        pass
    assert not gc.isenabled()
