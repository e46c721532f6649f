"""CloudWatch's part, locally: the metric documents the handlers emit (embedded metric format, see
chalicelib/telemetry.py) go into the emulator's CloudWatch as metric data, as CloudWatch Logs
extracts them from a Lambda function's log on AWS. So the API reads the same metrics both ways.

A thread puts them, so no handler waits for it; `flush()` waits until all are in.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("local.metrics")
MAX_DATA = 1000  # metric data per PutMetricData call


def metric_data(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, metric datum) for each value of each metric of an embedded-metric-format document."""
    meta = document.get("_aws") or {}
    when = datetime.fromtimestamp(int(meta.get("Timestamp", 0)) / 1000, timezone.utc)
    out = []
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive["Namespace"]
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
            for metric in directive.get("Metrics") or []:
                values = document.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if value is None:
                        continue
                    datum = {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Timestamp": when,
                        "Value": float(value),
                        "Unit": metric.get("Unit", "None"),
                    }
                    out.append((namespace, datum))
    return out


class Forwarder:
    """Takes the handlers' metric documents (it is telemetry.SINK) and puts them into CloudWatch."""

    def __init__(self) -> None:
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()

    def __call__(self, document: dict[str, Any]) -> None:
        self._queue.put(document)

    def flush(self) -> None:
        self._queue.join()

    def _run(self) -> None:
        from chalicelib.aws import client

        while True:
            documents = [self._queue.get()]
            while not self._queue.empty() and len(documents) < 100:
                documents.append(self._queue.get())
            try:
                by_namespace: dict[str, list[dict[str, Any]]] = {}
                for document in documents:
                    for namespace, datum in metric_data(document or {}):
                        by_namespace.setdefault(namespace, []).append(datum)
                for namespace, data in by_namespace.items():
                    for start in range(0, len(data), MAX_DATA):
                        client("cloudwatch").put_metric_data(
                            Namespace=namespace, MetricData=data[start : start + MAX_DATA]
                        )
            except Exception as exc:  # the emulator gone (shutting down): the metrics with it
                log.debug("metrics not put: %r", exc)
            finally:
                for _ in documents:
                    self._queue.task_done()


_forwarder: Forwarder | None = None


def install() -> Forwarder:
    """Point the handlers' metrics at the emulator's CloudWatch (once per process)."""
    global _forwarder
    from chalicelib import telemetry

    if _forwarder is None:
        _forwarder = Forwarder()
    telemetry.SINK = _forwarder
    return _forwarder
