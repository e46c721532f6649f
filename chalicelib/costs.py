"""What work cost: the usage the handlers record as they run (chalicelib.telemetry), at AWS's prices.

An invocation's usage is its duration, its memory size and the AWS requests it made; the mediator
adds it up per animation and UTC day (store/usage.py), a worker's arriving on its reply. Priced:

    Lambda    GB-seconds (duration x memory) and requests
    S3        PUT, COPY, POST and LIST requests; GET and other requests
    SNS       publish requests (deliveries to Lambda are free)
    SQS       requests
    DynamoDB  read and write request units (on-demand), as DynamoDB reports them consumed
    SES       emails

Not counted: storage (S3, DynamoDB), CloudWatch Logs and metrics, data transfer, API Gateway, free
tiers. The prices are us-east-1's, x86, on-demand, as AWS published them in 2026; set your region's
in PRICES.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PRICES: dict[str, float] = {  # US dollars per unit
    "lambda.gbSecond": 0.0000166667,
    "lambda.request": 0.20 / 1e6,
    "s3.write": 0.005 / 1000,
    "s3.read": 0.0004 / 1000,
    "sns": 0.50 / 1e6,
    "sqs": 0.40 / 1e6,
    "dynamodb.write": 0.625 / 1e6,
    "dynamodb.read": 0.125 / 1e6,
    "ses": 0.10 / 1000,
}
SERVICE_OF = {kind: kind.split(".")[0] for kind in PRICES}

# How a day's usage is stored, attribute by attribute (ADDed to as invocations end):
INVOCATIONS, MS, MB_MS, REQUESTS = "n.", "ms.", "mbms.", "r."


def increments(usages: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The attributes to add to a day's usage record for these invocations' usages."""
    out: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        out[name] = out.get(name, 0) + value

    for usage in usages:
        function, ms = str(usage["function"]), int(usage["ms"])
        add(INVOCATIONS + function, float(usage.get("invocations", 1)))
        add(MS + function, ms)
        add(MB_MS + function, ms * int(usage["memoryMb"]))
        for kind, count in dict(usage.get("requests") or {}).items():
            if kind in PRICES:
                add(REQUESTS + kind, float(count))
    return out


def price(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Usage records (one a day) added up and priced: the total, by service, by function, and the
    requests counted."""
    functions: dict[str, dict[str, float]] = {}
    requests: dict[str, float] = {}
    for record in records:
        for name, value in record.items():
            prefix, _, key = name.partition(".")
            if not key or not isinstance(value, (int, float)):
                continue
            if prefix + "." == REQUESTS:
                requests[key] = requests.get(key, 0) + value
            elif prefix + "." in (INVOCATIONS, MS, MB_MS):
                entry = functions.setdefault(key, {"invocations": 0, "ms": 0, "mbMs": 0})
                entry[{"n": "invocations", "ms": "ms", "mbms": "mbMs"}[prefix]] += value
    by_service: dict[str, float] = {"lambda": 0.0}
    by_function: dict[str, dict[str, Any]] = {}
    for function, entry in sorted(functions.items()):
        gb_seconds = entry["mbMs"] / 1024 / 1000
        usd = gb_seconds * PRICES["lambda.gbSecond"] + entry["invocations"] * PRICES["lambda.request"]
        by_service["lambda"] += usd
        by_function[function] = {
            "invocations": round(entry["invocations"], 2),
            "ms": int(entry["ms"]),
            "gbSeconds": round(gb_seconds, 3),
            "usd": usd,
        }
    for kind, count in requests.items():
        service = SERVICE_OF[kind] if kind in SERVICE_OF else kind
        by_service[service] = by_service.get(service, 0.0) + count * PRICES.get(kind, 0.0)
    return {
        "usd": sum(by_service.values()),
        "byService": by_service,
        "byFunction": by_function,
        "requests": {kind: round(count, 3) for kind, count in sorted(requests.items())},
    }
