"""CloudWatch: the app's own metrics read back (they go in as embedded-metric-format log lines)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
else:
    CloudWatchClient = Any

STATISTICS = ("SampleCount", "Sum", "Average", "Maximum")
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
        """Each metric's count, sum, average and maximum from start to end (one period), in order."""
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
                    if result.get("Values"):
                        values[result["Id"]] = values.get(result["Id"], 0) + float(result["Values"][0])
                token = page.get("NextToken")
                if not token:
                    break
        out = []
        for index, metric in enumerate(metrics):
            stats = {s: values.get(f"m{index}_{s.lower()}") for s in STATISTICS}
            out.append({**metric, **{k[0].lower() + k[1:]: v for k, v in stats.items()}})
        return out
