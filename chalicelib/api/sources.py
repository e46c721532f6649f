"""The map sources the stage fetches from (GET /sources): names, kinds, hosts, times; never a key."""

from __future__ import annotations

import time
from typing import Any

from chalice import Response

from .. import sources
from .openapi import answer, documented, error
from .params import iso
from .schemas import Sources


@documented(
    answer("the sources, the default marked", Sources),
    error(503, "the stage's map sources are configured wrongly (MAP_SOURCES): the reason"),
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
