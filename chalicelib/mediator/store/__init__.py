"""The mediator's state in one DynamoDB table, in parts (see keys.py for where each record lives):

    animations.py   configurations and counters
    decisions.py    a decision's changes as conditional writes, in one transaction
    writes.py       each kind of change as its writes (a dispatch table)
    outbox.py       a decision's messages until they are sent
    history.py      an animation's frames, fetches, GIFs and failures (typed records)
    eventlog.py     every message in and out, by run
    deadletters.py  what the mediator gave up on

Every change a decision makes is a conditional write, and one decision's changes and its
outbox entry go in one transaction: it happens once, or not at all.
"""

from .animations import (
    all_animations,
    delete_animation,
    delete_records,
    get_animation,
    list_animations,
    note_newest_frame,
    put_animation,
)
from .deadletters import dead_letters, forget_dead_letter, record_dead_letter
from .decisions import AlreadyDecided, apply
from .eventlog import last_error, log_days, log_event, timeline
from .history import failures, fetches, forget_failure, frame, frames, gif, gifs, newest_frames
from .outbox import pending, sent, stale_outbox

__all__ = [
    "AlreadyDecided",
    "all_animations",
    "apply",
    "dead_letters",
    "delete_animation",
    "delete_records",
    "failures",
    "fetches",
    "forget_dead_letter",
    "forget_failure",
    "frame",
    "frames",
    "get_animation",
    "gif",
    "gifs",
    "last_error",
    "list_animations",
    "log_days",
    "log_event",
    "newest_frames",
    "note_newest_frame",
    "pending",
    "put_animation",
    "record_dead_letter",
    "sent",
    "stale_outbox",
    "timeline",
]
