"""The map sources the stage fetches from (GET /sources): names, kinds, hosts, times; never a key."""

from __future__ import annotations

import time
from typing import Any

from chalice import Response

from .. import sources
from .openapi import answer, documented
from .params import iso

SOURCE = {
    "type": "object",
    "required": ["name", "default", "kind", "hosts", "keyed", "selectsRun", "times", "serving"],
    "properties": {
        "name": {"type": "string"},
        "default": {"type": "boolean", "description": "fetched for an animation that names no source"},
        "preset": {"type": ["string", "null"], "description": "the preset it is made from; null: written out whole"},
        "kind": {"enum": ["observations", "forecast"]},
        "hosts": {"type": "array", "items": {"type": "string"}, "description": "host or host:port, fetched from"},
        "keyed": {"type": "boolean", "description": "whether it needs keys (which are never shown)"},
        "selectsRun": {"type": "boolean", "description": "a forecast whose URL names the model run"},
        "times": {
            "type": "object",
            "description": "seconds: back, ahead (past a run, for a forecast), step, latency, runEvery, runDelay",
            "additionalProperties": {"type": "integer"},
        },
        "serving": {
            "type": "object",
            "description": "now: the oldest and newest valid times it serves, and for a forecast its newest run",
            "properties": {
                "from": {"type": "string", "format": "date-time"},
                "to": {"type": "string", "format": "date-time"},
                "latestRun": {"type": ["string", "null"], "format": "date-time"},
            },
        },
    },
}


@documented(
    answer(
        "the sources, the default marked",
        {
            "type": "object",
            "properties": {"default": {"type": "string"}, "sources": {"type": "array", "items": SOURCE}},
        },
    ),
    answer("the stage's map sources are configured wrongly (MAP_SOURCES): the reason", status=503),
)
def list_sources() -> Any:
    """The map sources an animation may fetch from, the default marked.

    Each one's name, kind (observations or forecast), the hosts it is fetched from, whether it
    needs keys (never the keys, nor where they are kept), the times it serves (seconds) and, now,
    the oldest and newest valid times it has and its newest model run."""
    try:
        listed = sources.public()
        default = sources.default_name()
        found = sources.sources()
    except ValueError as exc:
        return Response(body={"error": str(exc)}, status_code=503, headers={"Content-Type": "application/json"})
    now = int(time.time())
    out = []
    for entry in listed:
        times = found[entry["name"]].times
        latest = times.latest_run(now)
        serving = {
            "from": iso(times.oldest(now)),
            "to": iso(times.newest(now)),
            "latestRun": iso(latest) if latest is not None else None,
        }
        out.append({**entry, "serving": serving})
    return {"default": default, "sources": out}
