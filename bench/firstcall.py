"""A cold start's first call: CPU time of the first and second call of a handler, each in a fresh
process that imports app.py and calls the handler with a Lambda event, as Lambda does.

The embedded AWS runs in this process (its CPU is not the handler's). Handlers measured: the
thumbnail worker (an SNS event: a 1600x1200 JPEG in S3 to two sizes) and the mediator (an SQS
batch of one did-fetch-amp-image). Baseline, in the same fresh process: the second call, which
pays no imports and makes no clients. Target: the first call at most 150 ms of CPU.

Compiled bytecode matters: on Lambda the bundle is read-only and nothing writes a .pyc, so what
the bundle does not carry compiled is compiled on every cold start. Lambda's runtime carries its
standard library and its boto3, botocore, s3transfer, jmespath, dateutil and six compiled; the
function and its layer (chalicelib, chalice, pydantic, Powertools, Pillow, requests and urllib3)
are what `chalice package` zips: sources. Each handler is measured both ways, through a
bytecode cache of its own (PYTHONPYCACHEPREFIX) holding .pyc files for
- "lambda": the standard library and the runtime's packages only, as on Lambda;
- "compiled": every module (what a bundle that carried its bytecode would give).

The first call is split into imports (modules loaded on the call), AWS clients (sessions and
clients made, their imports not counted) and the rest, the work.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import py_compile
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from common import ROOT, verdict

RUNS = 5
T0 = 1_700_000_400
# What Lambda's Python runtime carries compiled besides the standard library (its urllib3 is
# shadowed by the layer's, which requests brings: see tests/bundle.py).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")
MODES = ("lambda", "compiled")
CHILD = r"""
import _frozen_importlib as bootstrap, json, os, sys, time
cpu = time.process_time
spent = {"imports": 0.0, "clients": 0.0}
inside = [False]
find_and_load = bootstrap._find_and_load

def timed_find_and_load(name, import_):  # the import system calls it for each module not yet loaded
    if inside[0]:
        return find_and_load(name, import_)
    inside[0] = True
    started = cpu()
    try:
        return find_and_load(name, import_)
    finally:
        inside[0] = False
        spent["imports"] += cpu() - started

bootstrap._find_and_load = timed_find_and_load
events = json.loads(sys.stdin.read())
started = cpu()
import app
imported = cpu()
from chalice.local import LambdaContext
from chalicelib.aws import clients
made = clients._make

def timed_make(*args, **kwargs):
    before, imports = cpu(), spent["imports"]
    try:
        return made(*args, **kwargs)
    finally:
        spent["clients"] += cpu() - before - (spent["imports"] - imports)

clients._make = timed_make
handler = app.app.handler_map[sys.argv[1]]
calls = []
profile = os.environ.get("FIRSTCALL_PROFILE")
for event in events:
    spent.update(imports=0.0, clients=0.0)
    before = cpu()
    if profile and not calls:
        import cProfile
        cProfile.runctx("handler(event, LambdaContext(sys.argv[1], memory_size=1024))", globals(), locals(), profile)
    else:
        handler(event, LambdaContext(sys.argv[1], memory_size=1024))
    calls.append({"total": cpu() - before, **spent})
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({"import": imported - started, "calls": calls, "files": files}))
"""


def sns_event(topic_arn: str, message: dict) -> dict:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:bench",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"m-{time.time_ns()}",
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": json.dumps(message),
                    "Timestamp": "2023-11-14T22:13:20.000Z",
                    "MessageAttributes": {"type": {"Type": "String", "Value": message["type"]}},
                },
            }
        ]
    }


def sqs_event(queue_arn: str, message: dict) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m-{time.time_ns()}",
                "receiptHandle": "bench",
                "body": json.dumps(message),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def fresh(handler: str, events: list[dict], pycache: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, handler],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONPYCACHEPREFIX": str(pycache)},
    )
    if out.returncode:
        sys.exit(f"{handler} failed in its fresh process:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_into(pycache: Path, sources: set[str]) -> None:
    """.pyc files for `sources` in the bytecode cache `pycache`, as Lambda's runtime compiles its own
    (unchecked-hash: never compared with the source)."""
    kept, sys.pycache_prefix = sys.pycache_prefix, str(pycache)
    try:
        for source in sorted(sources):
            target = importlib.util.cache_from_source(source)
            py_compile.compile(
                source, target, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
    finally:
        sys.pycache_prefix = kept


def lambda_compiled(source: str) -> bool:
    """Whether Lambda's runtime has `source` compiled: the standard library and the runtime's packages."""
    paths = sysconfig.get_paths()
    site = Path(paths["purelib"])
    roots = [Path(paths["stdlib"]), Path(paths["platstdlib"])]
    path = Path(source)
    if any(path.is_relative_to(site / package) for package in RUNTIME_PACKAGES):
        return True
    return not path.is_relative_to(site) and any(path.is_relative_to(root) for root in roots)


def ms(values: list[float]) -> str:
    """The median of `values` (seconds) in ms, and their range."""
    low, mid, high = min(values) * 1000, statistics.median(values) * 1000, max(values) * 1000
    return f"{mid:4.0f} ms ({low:.0f}-{high:.0f})"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from chalicelib.aws import client
    from chalicelib.mediator import store
    from chalicelib.mediator.animation import Animation
    from local.emulator import Emulator
    from local.provision import provision

    emulator = Emulator().start()
    emulator.use()
    work = Path(tempfile.mkdtemp(prefix="firstcall-"))
    try:
        outputs = provision(sender="wx@example.com")
        photo = io.BytesIO()
        Image.effect_noise((1600, 1200), 40).convert("RGB").save(photo, "JPEG", quality=85)
        client("s3").put_object(Bucket=outputs["FramesBucket"], Key="bench/frame.jpg", Body=photo.getvalue())
        animation = Animation(image_id="bench", layers=["radar"], width=640, height=480, center="tulsa,ok", zoom=6)
        store.put_animation(
            Animation.model_validate(
                {**animation.model_dump(by_alias=True), "thumbnails": [{"width": 200, "height": 150}]}
            )
        )
        topic = client("sns").create_topic(Name=os.environ["THUMBNAIL_TOPIC"])["TopicArn"]
        queue_url = client("sqs").get_queue_url(QueueName=os.environ["MEDIATOR_QUEUE"])["QueueUrl"]
        queue = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        location = {"Bucket": outputs["FramesBucket"], "Key": "bench/frame.jpg"}
        count = iter(range(1_000_000))

        def thumbnail() -> dict:
            i = next(count)
            message = {"type": "please-create-thumbnail", "imageId": "bench", "validTime": T0 + 300 * i}
            return sns_event(topic, {**message, "location": location, "width": 200 + i % 500, "height": 150})

        def frame() -> dict:
            i = next(count)
            message = {"type": "did-fetch-amp-image", "imageId": "bench", "validTime": T0 + 300 * i}
            return sqs_event(queue, {**message, "location": location, "correlationId": f"run-{i}"})

        make = {"create_thumbnail": thumbnail, "mediate": frame}
        # One run of each handler from sources finds the modules it loads; each mode's cache then
        # holds the .pyc files of those it compiles.
        loaded: set[str] = set()
        for handler, event in make.items():
            found = fresh(handler, [event(), event()], work / "none")["files"]
            loaded |= {f for f in found if f.endswith(".py")}
        caches = {mode: work / mode for mode in MODES}
        compile_into(caches["lambda"], {f for f in loaded if lambda_compiled(f)})
        compile_into(caches["compiled"], loaded)
        results: dict[tuple[str, str], list[dict]] = {(m, h): [] for m in MODES for h in make}
        for _ in range(RUNS):  # in turn, so that load on the machine falls on all alike
            for mode in MODES:
                for handler, event in make.items():
                    results[mode, handler].append(fresh(handler, [event(), event()], caches[mode]))
    finally:
        emulator.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"first call after `import app` in a fresh process, CPU time, median (range) of {RUNS}:")
    for mode in MODES:
        print(
            f"  bytecode as {'Lambda has it (runtime compiled, bundle from source)' if mode == 'lambda' else 'if every module were compiled'}:"
        )
        for handler in make:
            runs = results[mode, handler]
            first = [r["calls"][0] for r in runs]
            second = [r["calls"][1]["total"] for r in runs]
            total = statistics.median(c["total"] for c in first)
            print(
                f"    {handler:17s} first call {ms([c['total'] for c in first])}: imports {ms([c['imports'] for c in first])}, "
                f"clients {ms([c['clients'] for c in first])}, work {ms([c['total'] - c['imports'] - c['clients'] for c in first])}"
            )
            print(
                f"    {'':17s} second call {ms(second)} (the first {total / statistics.median(second):4.1f}x); "
                f"import app {ms([r['import'] for r in runs])}; first <= 150 ms {verdict(total <= 0.150)}"
            )


if __name__ == "__main__":
    main()
