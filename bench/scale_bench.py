"""Scale: a fetch tick over N animations, and frames taken in, on the embedded AWS.

For N = 100, 1,000 and 5,000 animations (5-minute interval, two thumbnail sizes), on moto's
server through the real store, SNS and the tick queue, each slice run as the tick function
runs it (local/calls.py: a botocore hook counts every call the app makes), over one interval
of one-minute ticks after the first (in the first, each new animation asks for its window):

- the fetches asked for in each minute of the interval: each animation asks at a phase of its
  own, so each minute carries about a fifth of them (baseline: the same ticks without phases,
  every animation in the interval's first minute);
- the interval's wall and CPU time here, and its AWS calls by service and operation, per animation;
- the projected tick time on AWS at the per-call latencies in LATENCY_MS (stated, not
  measured: typical in-region figures), with slices running in parallel, and the Lambda
  concurrency that takes;
- the busiest partition's write units in the tick;
- a frame taken in: calls and write units.

Baseline, in the same terms: the budget (1.5 calls per animation per tick, 5 per frame) and the
design before the fan-out (4.03 calls per animation, all in one invocation; 8 per frame).
The last table models 100,000 animations from the per-animation figures measured at the largest N.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

T0 = 1_700_000_400
SIZES = (100, 1000, 5000)
BUDGET_TICK, BUDGET_FRAME = 1.5, 5
BEFORE_TICK, BEFORE_FRAME = 4.03, 8  # calls, the design before the fan-out (issue figures)
# Per-call latencies assumed for the projection (ms): in-region, warm connections.
LATENCY_MS = {
    "dynamodb.TransactWriteItems": 12,
    "dynamodb.Query": 6,
    "dynamodb.GetItem": 4,
    "dynamodb.BatchGetItem": 8,
    "dynamodb.BatchWriteItem": 10,
    "sns.PublishBatch": 15,
    "sqs.SendMessageBatch": 10,
}
OTHER_MS = 10
PICKUP_MS = 250  # an SQS message to a running tick invocation (event source mapping polling)
LAMBDA_CONCURRENCY = 1000  # the default per-region quota
PARTITION_WCU, PARTITION_RCU = 1000, 3000
# us-east-1 on-demand prices (USD)
PRICE = {
    "lambda_gb_s": 0.0000166667,
    "lambda_request": 0.20e-6,
    "wru": 0.625e-6,
    "rru": 0.125e-6,
    "sns_message": 0.50e-6,
    "sqs_request": 0.40e-6,
    "s3_put": 0.005e-3,
}


# The workers' time per frame (p50 against the emulation, README "What it costs"): ms and GB.
WORKER_PER_FRAME = [(219, 0.5), (134, 1.0), (134, 1.0)]  # fetch, two thumbnails
GIF_MS = 561


def latency(ops: Counter) -> float:
    return sum(n * LATENCY_MS.get(op, OTHER_MS) for op, n in ops.items())


def animation(image_id: str):
    from chalicelib.mediator.animation import Animation, ThumbnailSpec

    return Animation(
        image_id=image_id,
        layers=["radar"],
        width=640,
        height=480,
        center="tulsa,ok",
        zoom=6,
        interval=300,
        frames=12,
        thumbnails=[ThumbnailSpec(width=200, height=150), ThumbnailSpec(width=96, height=96, mode="cover")],
    )


def populate(n: int) -> None:
    from chalicelib.mediator import store

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put_animation(animation(f"a{i:06d}")), range(n)))


def tick(n: int) -> dict:
    """The one-minute ticks of one interval after the first: the fetches each asked for, the calls."""
    from chalicelib.mediator.store import keys
    from local.calls import Calls, run_tick

    interval = animation("x").interval
    minutes = interval // 60
    first = [run_tick("fetch", T0 + 60 * m)["asked"] for m in range(minutes)]  # the windows, at each phase
    per_minute: list[int] = []
    per_slice: list[Counter] = []
    with Calls() as calls:
        wall, cpu = time.perf_counter(), time.process_time()
        schedulers: list[Counter] = []
        for m in range(minutes):
            ran = run_tick("fetch", T0 + interval + 60 * m, calls)
            per_minute.append(ran["asked"])
            per_slice += ran["per_slice"]
            schedulers.append(ran["scheduler"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert sum(per_minute) == n, per_minute
    per_shard = Counter(keys.shard(f"a{i:06d}") for i in range(n))
    chain = max(math.ceil(size / minutes / 1000) for size in per_shard.values())  # a minute's slices in a shard
    slowest = max((latency(ops) for ops in per_slice), default=0)
    projected = latency(schedulers[0]) + PICKUP_MS + (chain - 1) * (PICKUP_MS + 16) + slowest
    busiest_pk, busiest = calls.write_units.most_common(1)[0]
    return {
        "n": n,
        "wall": wall,
        "cpu": cpu,
        "calls": dict(calls.by_operation),
        "per_animation": (calls.total - 16 * minutes) / n,  # besides a page of each shard a tick
        "slices": len(per_slice),
        "projected_s": projected / 1000,
        "concurrency": max(1, len(per_slice) // minutes),
        "busiest": (busiest_pk, busiest),
        "write_units": sum(calls.write_units.values()),
        "per_minute": per_minute,
        "first_interval": first,
    }


def frames(count: int = 20) -> dict:
    from chalicelib.mediator import service
    from chalicelib.messages import DidFetchAmpImage, Location
    from local.calls import Calls

    worst, total, units = 0, 0, 0
    with Calls() as calls:
        for i in range(count):
            calls.reset()
            t = T0 - T0 % 300
            frame = DidFetchAmpImage(
                image_id=f"a{i:06d}",
                valid_time=t,
                location=Location(bucket="frames-bench", key=f"a{i:06d}/{t}.png"),
                correlation_id=f"run-{i}",
            )
            service.handle_record(frame.to_json())
            worst, total = max(worst, calls.total), total + calls.total
            units += sum(calls.write_units.values())
    return {"worst": worst, "mean": total / count, "write_units": units / count}


def report(results: list[dict], frame: dict) -> None:
    print("\nFetches asked for in each minute of a 5-minute interval (each animation at its phase)")
    print(f"{'N':>6}  {'per minute':<36} {'busiest minute':>14}  baseline without phases")
    for r in results:
        spread = " ".join(f"{count:>6}" for count in r["per_minute"])
        busiest = max(r["per_minute"])
        print(f"{r['n']:>6}  {spread:<36} {busiest:>6} ({busiest / r['n']:.2f}x)  {r['n']} in the first minute (1.00x)")
        print(f"        first interval, each window at once: {' '.join(str(c) for c in r['first_interval'])} frames")
    print("\nFetch ticks of an interval (calls per animation; budget 1.5, before the fan-out 4.03)")
    print(f"{'N':>6} {'slices':>6} {'wall s':>7} {'cpu s':>6} {'calls/anim':>10} {'AWS s':>6} {'busiest WU':>10}")
    for r in results:
        print(
            f"{r['n']:>6} {r['slices']:>6} {r['wall']:>7.1f} {r['cpu']:>6.1f} {r['per_animation']:>10.3f} "
            f"{r['projected_s']:>6.1f} {r['busiest'][1]:>10}"
        )
        print("       " + ", ".join(f"{op} {n}" for op, n in sorted(r["calls"].items())))
    big = results[-1]
    ratio = big["per_animation"] / BUDGET_TICK
    print(
        f"\ncalls per animation per interval at N={big['n']}: {big['per_animation']:.3f} = {ratio:.2f}x the budget "
        f"(besides the 16 directory queries each tick makes, whatever the number of animations)"
    )
    print(f"  against the design before the fan-out: {big['per_animation'] / BEFORE_TICK:.2f}x its 4.03")
    print(
        f"frame taken in: {frame['worst']} calls at worst, {frame['mean']:.1f} mean "
        f"(budget {BUDGET_FRAME}, before {BEFORE_FRAME}); {frame['write_units']:.0f} write units"
    )
    model(big, frame)


def model(big: dict, frame: dict, n: int = 100_000, interval: int = 300) -> None:
    """100,000 animations from the per-animation figures at the largest N measured."""
    per = {op: count / big["n"] for op, count in big["calls"].items()}
    shard = n / 16
    chain = math.ceil(shard / 1000)
    slice_ops = Counter({op: per[op] * 1000 for op in per if not op.startswith("sqs.")})
    slice_ms = latency(slice_ops)
    projected = 16 * LATENCY_MS["dynamodb.Query"] + 2 * LATENCY_MS["sqs.SendMessageBatch"] + PICKUP_MS
    projected += (chain - 1) * (PICKUP_MS + 16) + slice_ms
    slices = math.ceil(n / 1000) + 16
    frames_s = n / interval
    print(f"\nModel: {n:,} animations every {interval // 60} min ({frames_s:.0f} frames/s on average)")
    print(f"  tick: {slices} slices, {chain} per shard one after another, at most {slices} tick invocations at once")
    print(f"  tick on AWS: about {projected / 1000:.0f} s (one slice of 1,000: {slice_ms / 1000:.1f} s)")
    print(f"  fetch requests: {n:,} a tick, {n / (projected / 1000):,.0f} SNS messages/s while it runs")
    print(
        f"  frames: {frames_s * frame['mean']:,.0f} mediator calls/s; "
        f"busiest partition {big['busiest'][1]} write units a tick ({big['busiest'][0].split('#')[0]}#...), "
        f"limit {PARTITION_WCU} WCU/s"
    )
    month = 30 * 86400 / interval
    wru_tick = big["write_units"] / big["n"]
    lambda_s = slice_ms / 1000 / 1000  # the tick function's time per animation (512 MB)
    tick = wru_tick * PRICE["wru"] + 0.5 * PRICE["rru"] + PRICE["sns_message"] + lambda_s * 0.5 * PRICE["lambda_gb_s"]
    mediator = frame["write_units"] * PRICE["wru"] + 2 * PRICE["sns_message"] + 3 * PRICE["sqs_request"]
    workers = sum(ms / 1000 * gb for ms, gb in WORKER_PER_FRAME) * PRICE["lambda_gb_s"]
    workers += len(WORKER_PER_FRAME) * PRICE["lambda_request"]
    puts = 3 * PRICE["s3_put"]  # the frame and two thumbnails
    gif = GIF_MS / 1000 * 1 * PRICE["lambda_gb_s"] + PRICE["s3_put"] + PRICE["lambda_request"]
    costs = {
        "tick (claim, request)": tick * month,
        "mediator (taking in the frame)": mediator * month,
        "workers' Lambda time": workers * month,
        "S3 PUTs (frame, 2 thumbnails)": puts * month,
        "an hourly GIF": gif * 720,
    }
    print(f"  per animation-month ({month:,.0f} frames, us-east-1 on-demand prices, storage and emails aside):")
    for name, cost in costs.items():
        print(f"    {name:<32} ${cost:.3f}")
    total = sum(costs.values())
    print(f"    {'total':<32} ${total:.3f}  (${total * n:,.0f} a month for {n:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    from chalicelib import telemetry
    from local.emulator import Emulator
    from local.provision import provision

    telemetry.SINK = lambda document: None  # the handlers' metric lines: not this report's
    emulator = Emulator().start()
    emulator.use()
    results = []
    try:
        for n in args.sizes:
            emulator.reset()
            provision(sender="wx@example.com")
            started = time.perf_counter()
            populate(n)
            print(f"N={n}: {n} animations put in {time.perf_counter() - started:.0f} s", flush=True)
            results.append(tick(n))
        frame = frames()
        report(results, frame)
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
