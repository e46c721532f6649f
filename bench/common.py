"""Shared bench helpers: reference data, timing, peak memory in a fresh process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("BENCH_DATA", ROOT.parent / "shared" / "benchdata"))


def data_file(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        sys.exit(f"bench data {path} is missing (set BENCH_DATA to the folder of reference inputs)")
    return path


def median_ms(fn: Callable[[], object], runs: int = 7, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def peak_rss_mb(script: str, *args: str) -> dict:
    """Run `script` (a bench module's --measure mode) in a fresh process; it prints JSON."""
    out = subprocess.run(
        [sys.executable, script, "--measure", *args], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    """This process's resident memory now."""
    return _status_mb("VmRSS")


def max_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    return _status_mb("VmHWM")


def reset_peak() -> None:
    """Start the peak over from the current resident size (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
