"""CloudWatch: the app's own metrics read back (they go in as embedded-metric-format log lines)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
else:
    CloudWatchClient = Any

STATISTICS = ("SampleCount", "Sum", "Maximum")  # the average is Sum / SampleCount
MAX_QUERIES = 500  # per GetMetricData call


class Metrics:
    def __init__(self, client: CloudWatchClient):
        self._cw = client

    def listed(self, namespace: str, dimensions: dict[str, str]) -> list[dict[str, Any]]:
        """The metrics of `namespace` that have these dimensions (and maybe more): name and dimensions."""
        found, token = [], None
        filters = [{"Name": name, "Value": value} for name, value in dimensions.items()]
        while True:
            page = self._cw.list_metrics(
                Namespace=namespace, Dimensions=filters, **({"NextToken": token} if token else {})
            )
            found += [
                {"name": m["MetricName"], "dimensions": {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}}
                for m in page.get("Metrics", [])
            ]
            token = page.get("NextToken")
            if not token:
                unique = {(m["name"], tuple(sorted(m["dimensions"].items()))): m for m in found}
                return list(unique.values())

    def summaries(
        self, namespace: str, metrics: list[dict[str, Any]], start: float, end: float
    ) -> list[dict[str, Any]]:
        """Each metric's count, sum, average and maximum from start to end, in order: over every period
        CloudWatch answers for the window (a datum of the last second may come in a period of its own)."""
        end = (int(end) // 60 + 1) * 60  # whole minutes, the current one included
        period = max(60, int((end - start + 59) // 60 * 60))
        queries = []
        for index, metric in enumerate(metrics):
            for statistic in STATISTICS:
                queries.append(
                    {
                        "Id": f"m{index}_{statistic.lower()}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": namespace,
                                "MetricName": metric["name"],
                                "Dimensions": [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
                            },
                            "Period": period,
                            "Stat": statistic,
                        },
                        "ReturnData": True,
                    }
                )
        values: dict[str, float] = {}
        for first in range(0, len(queries), MAX_QUERIES):
            token = None
            while True:
                page = self._cw.get_metric_data(
                    MetricDataQueries=queries[first : first + MAX_QUERIES],
                    StartTime=datetime.fromtimestamp(start, timezone.utc),
                    EndTime=datetime.fromtimestamp(end, timezone.utc),
                    **({"NextToken": token} if token else {}),
                )
                for result in page.get("MetricDataResults", []):
                    found = [float(value) for value in result.get("Values") or []]
                    if found:
                        combine = max if result["Id"].endswith("_maximum") else sum
                        before = [values[result["Id"]]] if result["Id"] in values else []
                        values[result["Id"]] = float(combine(before + found))
                token = page.get("NextToken")
                if not token:
                    break
        out = []
        for index, metric in enumerate(metrics):
            count, total = values.get(f"m{index}_samplecount"), values.get(f"m{index}_sum")
            out.append(
                {
                    **metric,
                    "sampleCount": count,
                    "sum": total,
                    "average": total / count if count and total is not None else None,
                    "maximum": values.get(f"m{index}_maximum"),
                }
            )
        return out
