"""python -m deploy plan|resources|deploy|post-deploy|destroy|package|bytecode|policies STAGE.

weathergif on AWS (or on any endpoint AWS_ENDPOINT_URL names), each step said before
it is done. `deploy` is resources, the bundle's bytecode and `chalice deploy`, post-deploy
and the public URL; each step can also be run alone, and `chalice deploy` by hand between
them (`bytecode` first, for a bundle that carries its bytecode: see deploy/bytecode.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

# This process writes no bytecode into the tree it packages: the app zip's name hashes chalicelib/
# with its __pycache__, so a module imported here after the bytecode step built its zip would make
# Chalice build another, without bytecode (see deploy/bytecode.py: the step writes what it needs).
sys.dont_write_bytecode = True

from chalicelib.settings import PUBLIC_URL_VARIABLE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def steps(stage: str, action: str) -> list[str]:
    resources = [
        f"CloudFormation stack weathergif-{stage} from resources/template.yaml: buckets, table, queues, topics, "
        "log groups",
        f"record its outputs in .chalice/config.json (stage {stage}) and write its least-privilege policies",
        f"publish the ffmpeg layer weathergif-{stage}-ffmpeg (create_gif's MP4 encoder; once per content) and "
        "record it as create_gif's layer",
    ]
    deploy = [
        "the bundle's bytecode: the app and layer zips, each module with its checked-hash .pyc, then "
        f"chalice deploy --stage {stage}: the functions, their layer, the REST API, subscriptions and schedules",
        "post-deploy: the mediator's SQS event source reports batch item failures; "
        "workers retry twice, then the worker failure queue",
        f"record the API's URL as the mediator's PUBLIC_URL (stage {stage}; links in emails) and chalice deploy "
        "again if it changed",
    ]
    return {
        "resources": resources,
        "deploy": resources + deploy,
        "plan": resources + deploy,
        "destroy": [
            f"chalice delete --stage {stage}: the functions, their layer, the API, subscriptions and schedules",
            f"empty the stage's buckets, then delete the CloudFormation stack weathergif-{stage}, and the ffmpeg layer",
        ],
    }[action]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    parser.add_argument(
        "action",
        choices=["plan", "resources", "deploy", "post-deploy", "destroy", "package", "bytecode", "policies"],
    )
    parser.add_argument("stage", nargs="?", default="dev")
    parser.add_argument("--bucket-prefix", default="", help="bucket names start with this (they are global)")
    parser.add_argument("--yes", action="store_true", help="do not ask before destroying")
    parser.add_argument("--out", default="build/terraform", help="package: where the Terraform bundle goes")
    parser.add_argument("--debug", action="store_true", help="Chalice's debug log (as chalice --debug)")
    args = parser.parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s [%(levelname)s] %(message)s")
    if args.action == "bytecode":
        return bytecode_step(args.stage)
    if args.action == "package":
        return package(args.stage, Path(args.out))
    if args.action == "policies":
        from .record import write_policies

        for path in write_policies():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.action == "post-deploy":
        return post_deploy_step(args.stage)
    print(f"weathergif {args.action} {args.stage}:")
    for number, step in enumerate(steps(args.stage, args.action), 1):
        print(f"  {number}. {step}")
    if args.action == "plan":
        return 0
    if args.action == "destroy":
        if not args.yes and input(f"Delete stage {args.stage} and its data? [y/N] ").strip().lower() != "y":
            print("nothing done")
            return 1
        return destroy(args.stage)
    resources(args.stage, args.bucket_prefix)
    if args.action == "resources":
        print(
            f"done: now `python -m deploy bytecode {args.stage}` (the bundle's bytecode), `chalice deploy --stage "
            f"{args.stage}`, then `python -m deploy post-deploy {args.stage}`"
        )
        return 0
    return deploy(args.stage)


def resources(stage: str, bucket_prefix: str = "") -> dict[str, str]:
    """Steps 1 to 3: the stack, its names and policies recorded, and the ffmpeg layer."""
    from chalicelib.aws import client

    from . import ffmpeg_layer
    from .record import record, record_layers
    from .stack import deploy_stack, stack_name

    print("1. resources...", flush=True)
    parameters = {"Stage": stage, **({"BucketPrefix": bucket_prefix} if bucket_prefix else {})}
    outputs = deploy_stack(stack_name(stage), parameters, timeout=900)
    print("2. recording outputs and policies...", flush=True)
    partition = client("sts").get_caller_identity()["Arn"].split(":")[1]
    changed = _changed(lambda: record(stage, outputs, partition=partition))
    print("   " + (f"changed {', '.join(changed)}" if changed else "nothing changed: the names were recorded already"))
    print("3. the ffmpeg layer...", flush=True)
    arn = ffmpeg_layer.publish(client("lambda"), stage, ffmpeg_layer.made(ROOT / "build"))
    changed = _changed(lambda: record_layers(stage, {"create_gif": [arn]}))
    print(f"   {arn}" + (" (recorded)" if changed else " (recorded already)"))
    return outputs


def deploy(stage: str) -> int:
    """Steps 4 to 6 (after resources)."""
    print("4. the bundle's bytecode, then chalice deploy...", flush=True)
    bytecode_step(stage, indent="   ")
    _chalice("deploy", "--stage", stage)
    _shipped(stage)
    post_deploy_step(stage, number=5)
    print("6. the public URL...", flush=True)
    url = _api_url(stage)
    if url and _record_public_url(stage, url):
        print(f"   PUBLIC_URL={url}: chalice deploy again", flush=True)
        _chalice("deploy", "--stage", stage)
    print(f"done: {url} (the page), {url}openapi.json" if url else "done")
    return 0


def post_deploy_step(stage: str, number: int = 1) -> int:
    from .post_deploy import post_deploy
    from .stack import outputs, stack_name

    print(f"{number}. post-deploy...", flush=True)
    found = outputs(stack_name(stage))
    if found is None:
        raise SystemExit(f"no stack {stack_name(stage)}: run `python -m deploy resources {stage}` first")
    for line in post_deploy(stage, found):
        print(f"   {line}")
    return 0


def package(stage: str, out: Path) -> int:
    """chalice package --pkg-format terraform from zips that carry their bytecode, with the files
    for what Chalice cannot say."""
    from .bytecode import check
    from .record import TERRAFORM

    bytecode_step(stage)
    _chalice("package", "--pkg-format", "terraform", "--stage", stage, str(out))
    lacking = check(out / name for name in ("deployment.zip", "layer-deployment.zip") if (out / name).exists())
    for problem in lacking:
        print(f"no bytecode: {problem}", file=sys.stderr)
    for extra in sorted(TERRAFORM.glob("*.tf.json")):
        shutil.copy(extra, out / extra.name)
    sizes = {
        name: (out / name).stat().st_size
        for name in ("deployment.zip", "layer-deployment.zip")
        if (out / name).exists()
    }
    print(
        ", ".join(f"{out}/{name}: {size / 1e6:.1f} MB" for name, size in sizes.items())
        + " zipped (Lambda allows 50 MB each)"
    )
    return 0 if all(size < 50e6 for size in sizes.values()) and not lacking else 1


def bytecode_step(stage: str, indent: str = "") -> int:
    """Build the zips chalice deploy and chalice package use for the stage (Chalice's packagers,
    in .chalice/deployments) and give each module in them its bytecode."""
    from .bytecode import add_bytecode

    print(f"{indent}bytecode: the zips Chalice will ship for stage {stage}...", flush=True)
    for added in add_bytecode(ROOT, stage):
        print(f"{indent}  {added}", flush=True)
    return 0


def _shipped(stage: str) -> None:
    """Say so when what chalice deploy shipped is not the zips with bytecode (a source changed
    in between, and Chalice built a new zip from sources)."""
    from .bytecode import bundles, check

    built = [bundle.path for bundle in bundles(ROOT, stage) if bundle.path.exists()]
    for problem in check(built) if built else ["the zips chalice deploy used are not where Chalice keeps them"]:
        print(f"   warning: deployed without bytecode: {problem}", flush=True)


def destroy(stage: str) -> int:
    from .stack import delete_stack, stack_name

    print("1. chalice delete...", flush=True)
    if (ROOT / ".chalice" / "deployed" / f"{stage}.json").exists():
        _chalice("delete", "--stage", stage)
    else:
        print("   nothing deployed by chalice for this stage")
    print("2. buckets and stack, and the ffmpeg layer...", flush=True)
    delete_stack(stack_name(stage))
    from chalicelib.aws import client

    from .ffmpeg_layer import layer_name

    lam = client("lambda")
    for page in lam.get_paginator("list_layer_versions").paginate(LayerName=layer_name(stage)):
        for version in page.get("LayerVersions", []):
            lam.delete_layer_version(LayerName=layer_name(stage), VersionNumber=version["Version"])
    print(f"done: stage {stage} is gone")
    return 0


def _chalice(*args: str) -> None:
    # Writing no bytecode into chalicelib/ as it loads app.py: the app zip's name hashes that folder,
    # so the name it computes is the one the bytecode step built its zip under.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([str(Path(sys.executable).with_name("chalice")), *args], cwd=ROOT, check=True, env=env)


def _api_url(stage: str) -> str | None:
    deployed = json.loads((ROOT / ".chalice" / "deployed" / f"{stage}.json").read_text())
    api = [r for r in deployed["resources"] if r.get("resource_type") == "rest_api"]
    return api[0]["rest_api_url"] if api else None


def _record_public_url(stage: str, url: str) -> bool:
    """PUBLIC_URL in the mediator's environment (it writes the emails; the API answers with the
    address each request came to, so `chalice local` keeps its own); True if it changed."""
    path = ROOT / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    environment = config["stages"][stage]["lambda_functions"]["mediate"].setdefault("environment_variables", {})
    if environment.get(PUBLIC_URL_VARIABLE) == url:
        return False
    environment[PUBLIC_URL_VARIABLE] = url
    path.write_text(json.dumps(config, indent=2) + "\n")
    return True


def _changed(write) -> list[str]:
    """Run `write` (which returns the paths it wrote); the ones whose content changed."""
    before = {}
    for path in (ROOT / ".chalice").glob("*.json"):
        before[path] = path.read_text()
    return [str(path.relative_to(ROOT)) for path in write() if before.get(path) != path.read_text()]


if __name__ == "__main__":
    sys.exit(main())
