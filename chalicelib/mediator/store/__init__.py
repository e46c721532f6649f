"""The mediator's state in one DynamoDB table, in parts (see keys.py for where each record lives):

    animations.py   configurations (in directory shards) and counters (each in its own partition)
    decisions.py    a decision's changes as conditional writes, in one transaction with its log lines
    writes.py       each kind of change as its writes (a dispatch table)
    history.py      an animation's frames, fetches, GIFs and failures (typed records)
    eventlog.py     every message in and out, by run
    deadletters.py  what the mediator gave up on

Every change a decision makes is a conditional write, and one decision's changes go in one
transaction: it happens once, or not at all. The requests a decision makes are kept on the
records it writes until they are done, so what it left unsent can be sent again from them.
"""

from .animations import (
    ShardPage,
    all_animations,
    delete_animation,
    delete_records,
    directory,
    get_animation,
    list_animations,
    put_animation,
    states,
)
from .keys import SHARDS
from .deadletters import dead_letters, forget_dead_letter, record_dead_letter
from .decisions import apply
from .status import failures_since, record_stale, record_tick, stale
from .usage import add_usage, usage
from .eventlog import last_error, log_days, log_event, log_events, timeline
from .history import (
    failures,
    fetch,
    fetches,
    fetches_in,
    fetches_of,
    forget_failure,
    frame,
    frames,
    gif,
    gifs,
    latest,
    mark_sent,
    newest_frames,
    run,
    run_fetches,
    run_frame,
    run_frames,
)

__all__ = [
    "SHARDS",
    "ShardPage",
    "add_usage",
    "failures_since",
    "record_stale",
    "record_tick",
    "stale",
    "usage",
    "all_animations",
    "apply",
    "dead_letters",
    "delete_animation",
    "delete_records",
    "directory",
    "failures",
    "fetch",
    "fetches",
    "fetches_in",
    "fetches_of",
    "forget_dead_letter",
    "forget_failure",
    "frame",
    "frames",
    "get_animation",
    "gif",
    "gifs",
    "last_error",
    "latest",
    "list_animations",
    "log_days",
    "log_event",
    "log_events",
    "mark_sent",
    "newest_frames",
    "run",
    "run_fetches",
    "run_frame",
    "run_frames",
    "put_animation",
    "record_dead_letter",
    "states",
    "timeline",
]
