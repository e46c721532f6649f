"""How long `import app` takes in a fresh interpreter (a Lambda cold start's share).

Baseline: `import chalice` alone, measured the same way in the same run; the app's
own cost is the difference. Target: `import app` under 60 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from common import ROOT, verdict

RUNS = 9
PROBE = "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"


def import_ms(module: str) -> float:
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout
        times.append(float(out))
    return statistics.median(times)


def main() -> None:
    chalice_ms = import_ms("chalice")
    app_ms = import_ms("app")
    boto3_ms = import_ms("boto3")
    print(f"import chalice (baseline) {chalice_ms:6.1f} ms")
    print(f"import app                {app_ms:6.1f} ms  (the app's own share {app_ms - chalice_ms:+.1f} ms)")
    print(f"import boto3 (for scale)  {boto3_ms:6.1f} ms  (never imported by app.py)")
    print(f"import app under 60 ms: {verdict(app_ms < 60)}")


if __name__ == "__main__":
    main()
