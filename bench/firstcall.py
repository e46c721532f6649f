"""A cold start's first call: CPU time of the first and second call of a handler, each in a fresh
process that imports app.py and calls the handler with a Lambda event, as Lambda does.

The embedded AWS runs in this process (its CPU is not the handler's). Handlers measured: the
thumbnail worker (an SNS event: a 1600x1200 JPEG in S3 to two sizes) and the mediator (an SQS
batch of one did-fetch-amp-image). Baseline, in the same fresh process: the second call, which
pays no imports and makes no clients. Target: the first call at most 150 ms of CPU.

Compiled bytecode matters: on Lambda the bundle is read-only and nothing writes a .pyc, so what
the bundle does not carry compiled is compiled on every cold start. Lambda's runtime carries its
standard library and its boto3, botocore, s3transfer, jmespath, dateutil and six compiled. Each
handler is measured as each way of deploying ships it, through a bytecode cache of its own
(PYTHONPYCACHEPREFIX) holding .pyc files for
- "chalice": `chalice deploy` (or `chalice package`) alone, which zips the function and its
  layer (app.py, chalicelib, chalice, the message library, Powertools, Pillow, numpy, requests,
  urllib3, ...) as sources: the standard library and the runtime's packages only;
- "bundle": `make deploy` / `make package`, whose zips carry checked-hash bytecode
  (deploy/bytecode.py): those, and every module the bundle has a .pyc for, as checked-hash .pyc
  files (Python hashes each source to check it, as on Lambda). Which modules those are is read
  from the bundle's own zips in .chalice/deployments when its layer zip has been built there (a
  `make deploy`, `make package` or `python -m deploy bytecode dev` before; the app zip is brought
  up to date, seconds), or else modelled: every module of the project and of the layer.
Modules the bench itself loads from neither the bundle nor the runtime (chalice.local's
LambdaContext and what it imports) are compiled in both modes.

The first call is split into imports (modules loaded on the call), AWS clients (sessions and
clients made, their imports not counted) and the rest, the work. Its floor, measured the same way
in a fresh process of its own: importing the AWS SDK (botocore, boto3) and making the clients the
handler made, nothing else. No handler that calls AWS through boto3 starts below it; what the
first call spends above it is the project's.
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
import zipfile
from pathlib import Path

from common import ROOT, verdict

RUNS = 5
T0 = 1_700_000_400
# What Lambda's Python runtime carries compiled besides the standard library (its urllib3 is
# shadowed by the layer's, which requests brings: see tests/bundle.py).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")
MODES = ("chalice", "bundle")
TITLES = {
    "chalice": "chalice deploy alone (sources; runtime compiled)",
    "bundle": "make deploy / make package (the bundle's bytecode)",
}
STAGE = "dev"
LAYER_SITE = f"python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"  # in the layer zip
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
if sys.argv[1] == "--floor":  # the AWS SDK alone: its import and the clients a handler made (in `events`)
    from chalicelib.aws import clients
    before = cpu()
    for service in events:
        clients.client(service)
    print(json.dumps({"floor": cpu() - before}))
    sys.exit(0)
from chalice.local import LambdaContext
from chalicelib.aws import clients
made = clients._make

services = []

def timed_make(*args, **kwargs):
    services.append(args[0])
    before, imports = cpu(), spent["imports"]
    try:
        return made(*args, **kwargs)
    finally:
        spent["clients"] += cpu() - before - (spent["imports"] - imports)

clients._make = timed_make
handler = app.app.handler_map[sys.argv[1]]
calls = []
profile = os.environ.get("FIRSTCALL_PROFILE")
def context():  # as Lambda's, with the ARN it invokes the function by (the emulator's account)
    made = LambdaContext(sys.argv[1], memory_size=1024)
    made.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:weathergif-dev-" + sys.argv[1]
    return made

for event in events:
    spent.update(imports=0.0, clients=0.0)
    before = cpu()
    if profile and not calls:
        import cProfile
        cProfile.runctx("handler(event, context())", globals(), locals(), profile)
    else:
        handler(event, context())
    calls.append({"total": cpu() - before, **spent})
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({"import": imported - started, "calls": calls, "files": files, "services": services}))
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


def fresh(handler: str, events: list, pycache: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, handler],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=ROOT,
        # Its own bytecode cache, which it only reads: read-only, as the bundle is on Lambda (else the
        # first run of a mode would write the .pyc files the later ones use).
        env={
            **os.environ,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "PYTHONPYCACHEPREFIX": str(pycache),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    if out.returncode:
        sys.exit(f"{handler} failed in its fresh process:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_into(pycache: Path, sources: set[str], checked: bool = False) -> None:
    """.pyc files for `sources` in the bytecode cache `pycache`: unchecked-hash (never compared with
    the source) as Lambda's runtime compiles its own, or `checked`-hash, as the bundle carries them."""
    mode = py_compile.PycInvalidationMode.CHECKED_HASH if checked else py_compile.PycInvalidationMode.UNCHECKED_HASH
    kept, sys.pycache_prefix = sys.pycache_prefix, str(pycache)
    try:
        for source in sorted(sources):
            py_compile.compile(source, importlib.util.cache_from_source(source), doraise=True, invalidation_mode=mode)
    finally:
        sys.pycache_prefix = kept


def in_bundle(source: str) -> str | None:
    """Where `source` (a module the handlers load here) is in the bundle: "app:NAME" in the function's
    zip, "layer:NAME" in the layer's; None for what Chalice does not ship (the runtime's packages,
    the standard library, what only the bench loads)."""
    path, site = Path(source), Path(sysconfig.get_paths()["purelib"])
    if path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / ".venv"):
        relative = path.relative_to(ROOT).as_posix()
        return f"app:{relative}" if relative == "app.py" or relative.startswith("chalicelib/") else None
    if not path.is_relative_to(site) or lambda_compiled(source):
        return None
    relative = path.relative_to(site).as_posix()
    if relative.startswith("chalice/"):
        return f"app:{relative}" if relative in ("chalice/app.py", "chalice/__init__.py") else None
    return f"layer:{relative}"  # the layer's, as far as this venv knows (the zip says for sure)


def bundle_bytecode() -> tuple[dict[str, bool] | None, str]:
    """Each module ("app:NAME", "layer:NAME") in the bundle `make deploy` ships, and whether it carries
    its .pyc, read from its zips; and where from. None when its layer zip has not been built here."""
    from contextlib import redirect_stdout

    from deploy.bytecode import add_bytecode, bundles, pyc_name

    layer = [bundle for bundle in bundles(ROOT, STAGE) if bundle.kind == "layer"]
    if not layer or not layer[0].path.exists():
        return None, "modelled: every module of the project and the layer (no bundle built here)"
    with redirect_stdout(io.StringIO()):
        added = add_bytecode(ROOT, STAGE)  # the layer zip as it is; the app zip as the sources are now
    modules = {}
    for made in added:
        with zipfile.ZipFile(made.bundle.path) as archive:
            names = set(archive.namelist())
        prefix = f"{LAYER_SITE}/" if made.bundle.kind == "layer" else ""
        for name in names:
            if name.endswith(".py"):
                modules[f"{made.bundle.kind}:{name.removeprefix(prefix)}"] = pyc_name(name) in names
    return modules, "read from " + " and ".join(made.bundle.path.name for made in added)


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
    bundled, origin = bundle_bytecode()  # before this process imports chalicelib (see deploy/bytecode.py)
    from PIL import Image

    from chalicelib.aws import client
    from chalicelib.mediator import store
    from chalicelib.mediator.animation import Animation, ThumbnailSpec
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
        animation = Animation(
            image_id="bench",
            layers=["radar"],
            width=640,
            height=480,
            center="tulsa,ok",
            zoom=6,
            thumbnails=[ThumbnailSpec(width=200, height=150)],
        )
        store.put_animation(animation)
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
        where = {f: in_bundle(f) for f in loaded}
        if bundled is None:  # the model: every module of the project and the layer
            shipped = bytecode = {f for f, entry in where.items() if entry}
        else:
            shipped = {f for f, entry in where.items() if entry and entry in bundled}
            bytecode = {f for f in shipped if bundled.get(where[f] or "")}
        runtime = {f for f in loaded if lambda_compiled(f)}
        scaffolding = loaded - runtime - shipped  # loaded here, shipped by nobody: compiled in both modes
        for mode in MODES:
            compile_into(caches[mode], runtime | scaffolding)
        compile_into(caches["bundle"], bytecode, checked=True)
        described = {
            "chalice": f"{len(shipped)} of the bundle's modules the handlers load, from source",
            "bundle": f"{len(bytecode)} of {len(shipped)} with their .pyc, {origin}",
        }
        results: dict[tuple[str, str], list[dict]] = {(m, h): [] for m in MODES for h in make}
        for _ in range(RUNS):  # in turn, so that load on the machine falls on all alike
            for mode in MODES:
                for handler, event in make.items():
                    run = fresh(handler, [event(), event()], caches[mode])
                    run["floor"] = fresh("--floor", run["services"], caches[mode])["floor"]
                    results[mode, handler].append(run)
    finally:
        emulator.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"first call after `import app` in a fresh process, CPU time, median (range) of {RUNS}:")
    for mode in MODES:
        print(f"  {TITLES[mode]}: {described[mode]}")
        for handler in make:
            runs = results[mode, handler]
            first = [r["calls"][0] for r in runs]
            second = [r["calls"][1]["total"] for r in runs]
            total = statistics.median(c["total"] for c in first)
            print(
                f"    {handler:17s} first call {ms([c['total'] for c in first])}: imports {ms([c['imports'] for c in first])}, "
                f"clients {ms([c['clients'] for c in first])}, work {ms([c['total'] - c['imports'] - c['clients'] for c in first])}"
            )
            floor = [r["floor"] for r in runs]
            print(
                f"    {'':17s} second call {ms(second)} (the first {total / statistics.median(second):4.1f}x); "
                f"import app {ms([r['import'] for r in runs])}; first <= 150 ms {verdict(total <= 0.150)}"
            )
            print(
                f"    {'':17s} floor {ms(floor)}: importing the AWS SDK and making the same clients "
                f"({', '.join(runs[0]['services'])}) alone, in a fresh process; the first call "
                f"{total * 1000 - statistics.median(floor) * 1000:.0f} ms above it"
            )


if __name__ == "__main__":
    main()
