"""The operator's routes: the status the alarms watch, the metrics, and what work cost.

Bodies of app.py's routes, answered the same on AWS and
locally: queue depths from SQS, stale animations and failures from what the mediator records as it
works (no walk over every animation), metrics from CloudWatch (the local event runtime puts the
handlers' metric documents there, as CloudWatch Logs does on AWS), cost from the usage records.
"""

from __future__ import annotations

import time
from typing import Any

from .. import costs, telemetry
from ..aws import metrics, queues
from ..mediator import store
from ..mediator.store.usage import hour_of
from ..settings import FETCH_EVERY_MINUTES, STAGE, names
from .auth import HIDDEN, holds_token
from .errors import answers_json
from .openapi import answer, documented, errors, query
from .schemas import AnimationCost, Metrics, SharedCost, Status
from .params import checked_id, int_param, iso, known, query_string

QUEUES = (  # role in the answer, the queue's role in settings.names()
    ("mediator", "mediator_queue"),
    ("ticks", "tick_queue"),
    ("deadLetters", "dead_letter_queue"),
    ("tickDeadLetters", "tick_dead_letter_queue"),
    ("workerFailures", "worker_failure_queue"),
)
# A slice's stale finding counts while the next fetch ticks have not replaced it.
STALE_FRESH_SECONDS = 3 * FETCH_EVERY_MINUTES * 60
MAX_MINUTES = 7 * 24 * 60
DEAD_LETTERS_COUNTED = 100  # kept dead letters counted (past it: "at least")


@documented(answer("queues, stale animations, failures in the last hour, and the problems they make", Status))
@answers_json
def status(request: Any) -> dict[str, Any]:
    """What the alarms watch, answered at once: queue depths, stale animations, recent failures.

    `ok` is false when a dead letter or a failed worker invocation waits, an animation is stale (no
    new frame for three of its intervals) or something failed in the last hour; `problems` says
    what, a line each. Failures' reasons about emails are shown with the API token only."""
    now = int(time.time())
    n = names()
    depths = {role: queues().depth(getattr(n, field)) for role, field in QUEUES}
    stale_count, stale, checked, ticking = store.stale(now, STALE_FRESH_SECONDS)
    failed, recent, more = store.failures_since(now - 3600, now)
    kept = len(store.dead_letters(limit=DEAD_LETTERS_COUNTED))
    private = holds_token(request)
    by_action: dict[str, int] = {}
    for item in recent:
        by_action[item["action"]] = by_action.get(item["action"], 0) + 1
    problems = []
    if kept:
        problems.append(f"{_count(kept, 'dead letter', kept >= DEAD_LETTERS_COUNTED)} kept: see them below")
    else:
        for role, whose in (("deadLetters", "mediator's"), ("tickDeadLetters", "ticks'")):
            if depths[role]["visible"] or depths[role]["inFlight"]:
                problems.append(f"{_count(depths[role]['visible'], 'message')} in the {whose} dead-letter queue")
    if depths["workerFailures"]["visible"] or depths["workerFailures"]["inFlight"]:
        problems.append(f"{_count(depths['workerFailures']['visible'], 'worker invocation')} failed for good")
    if stale_count:
        problems.append(f"{_count(stale_count, 'animation')} without a new frame for three intervals")
    if checked is not None and not ticking:
        problems.append(f"no fetch tick since {iso(checked)}: the schedule or the tick queue has stopped")
    if failed:
        problems.append(f"{_count(failed, 'failure', more)} in the last hour")
    return {
        "time": iso(now),
        "ok": not problems,
        "problems": problems,
        "queues": depths,
        "deadLetters": kept,
        "stale": {
            "count": stale_count,
            "checked": iso(checked) if checked else None,
            "ticking": ticking,
            "animations": [
                {
                    "imageId": entry["imageId"],
                    "since": iso(int(entry["since"])) if entry.get("since") else None,
                    "interval": entry["interval"],
                    "intervalsMissed": (now - int(entry["since"])) // max(int(entry["interval"]), 1)
                    if entry.get("since")
                    else None,
                }
                for entry in stale
            ],
        },
        "failuresLastHour": {
            "count": failed,
            "atLeast": more,
            "byAction": by_action,
            "recent": [
                {
                    "imageId": item["imageId"],
                    "action": item["action"],
                    "time": iso(int(item["failedAt"])),
                    **(
                        {"error": item.get("error")}
                        if private or item["action"] != "send-email"
                        else {"errorHidden": HIDDEN}
                    ),
                }
                for item in recent[:20]
            ],
        },
    }


def _count(n: int, what: str, at_least: bool = False) -> str:
    return ("at least " if at_least else "") + f"{n} {what}" + ("" if n == 1 else "s")


@documented(
    answer("each metric of each function over the window: count, sum, average, maximum", Metrics),
    errors(400),
    query=(query("minutes", {"type": "integer", "minimum": 1, "maximum": MAX_MINUTES, "default": 60}),),
)
@answers_json
def metrics_summary(request: Any) -> dict[str, Any]:
    """The handlers' metrics (CloudWatch, namespace weathergif) over the last `minutes`.

    Duration, BytesIn, BytesOut, Failures (by reason), FramesPerGif, FrameAge and StaleAnimations,
    per function of this stage, as the alarms and the dashboard read them."""
    minutes = int_param(query_string(request, "minutes"), "minutes", 60, 1, MAX_MINUTES)
    end = time.time()
    start = end - minutes * 60
    listed = metrics().listed(telemetry.NAMESPACE, {"Stage": STAGE})
    listed.sort(key=lambda m: (m["dimensions"].get("Function", ""), m["name"], m["dimensions"].get("Reason", "")))
    found = metrics().summaries(telemetry.NAMESPACE, listed, start, end) if listed else []
    return {
        "namespace": telemetry.NAMESPACE,
        "stage": STAGE,
        "from": iso(int(start)),
        "to": iso(int(end)),
        "metrics": [
            {
                "function": m["dimensions"].get("Function"),
                "name": m["name"],
                **({"reason": m["dimensions"]["Reason"]} if "Reason" in m["dimensions"] else {}),
                "unit": telemetry.UNITS.get(m["name"]),
                "count": m["sampleCount"],
                "sum": m["sum"],
                "average": m["average"],
                "maximum": m["maximum"],
            }
            for m in found
            if m["sampleCount"]
        ],
    }


@documented(
    answer("the animation's cost in the last 24 hours and 30 days, and how it is counted", AnimationCost),
    errors(400, 404),
)
@answers_json
def animation_cost(image_id: str) -> dict[str, Any]:
    """What an animation's work cost in the last 24 hours and the last 30 days (whole UTC hours).

    Its handlers' durations x memory at Lambda's prices, plus their requests to S3, SNS, SQS,
    DynamoDB and SES, as the handlers recorded them while they ran (see chalicelib/costs.py). The
    mediator's and workers' invocations for it are counted; the schedule's ticks, the dead letters
    and the uploads are shared (GET /cost)."""
    known(checked_id(image_id))
    return {"imageId": image_id, **_cost(image_id)}


@documented(answer("the shared work's cost in the last 24 hours and 30 days, and the prices", SharedCost))
@answers_json
def shared_cost() -> dict[str, Any]:
    """What the work no one animation caused cost (ticks, schedules, dead letters), and the prices used."""
    return {**_cost(""), "prices": costs.PRICES}


def _cost(image_id: str) -> dict[str, Any]:
    """The last 24 hours and the last 30 days (whole UTC hours, this one so far)."""
    now = time.time()
    records = store.usage(image_id, now - 30 * 86400, now)
    first_hour = hour_of(now - 23 * 3600)
    day = [r for r in records if str(r.get("sk", "")) >= f"USAGE#{first_hour}"]
    return {
        "day": {"from": first_hour + ":00Z", "hours": 24, **costs.price(day)},
        "month": {"from": hour_of(now - 30 * 86400) + ":00Z", "days": 30, **costs.price(records)},
        "counted": "Lambda GB-seconds and requests; S3, SNS, SQS, DynamoDB and SES requests; at us-east-1 prices",
    }
