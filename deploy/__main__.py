"""python -m deploy plan|deploy|destroy STAGE: weathergif on AWS, each step said before it is done."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def steps(stage: str, destroy: bool = False) -> list[str]:
    if destroy:
        return [
            f"chalice delete --stage {stage}: the functions, API, subscriptions and schedules",
            f"empty the stage's buckets, then delete the CloudFormation stack weathergif-{stage}",
        ]
    return [
        f"CloudFormation stack weathergif-{stage} from resources/template.yaml: buckets, table, queues, topics",
        f"record its outputs in .chalice/config.json (stage {stage}) and write least-privilege policies",
        f"chalice deploy --stage {stage}: the functions, the REST API, subscriptions and schedules",
        "post-deploy: the mediator reports batch item failures; workers retry twice, then the failure queue",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("action", choices=["plan", "deploy", "destroy", "package"])
    parser.add_argument("stage", nargs="?", default="dev")
    parser.add_argument("--bucket-prefix", default="", help="bucket names start with this (they are global)")
    parser.add_argument("--yes", action="store_true", help="do not ask before destroying")
    parser.add_argument("--out", default="build/terraform", help="package: where the Terraform bundle goes")
    args = parser.parse_args(argv)
    if args.action == "package":
        return package(args.stage, Path(args.out))
    plan = steps(args.stage, destroy=args.action == "destroy")
    print(f"weathergif {args.action} {args.stage}:")
    for number, step in enumerate(plan, 1):
        print(f"  {number}. {step}")
    if args.action == "plan":
        return 0
    if args.action == "destroy":
        if not args.yes and input(f"Delete stage {args.stage} and its data? [y/N] ").strip().lower() != "y":
            print("nothing done")
            return 1
        return destroy(args.stage)
    return deploy(args.stage, args.bucket_prefix)


def deploy(stage: str, bucket_prefix: str) -> int:
    from chalicelib.aws import client
    from local.provision import deploy as deploy_stack

    from .policies import Stage
    from .post_deploy import post_deploy
    from .record import record

    print("1. resources...", flush=True)
    parameters = {"Stage": stage, **({"BucketPrefix": bucket_prefix} if bucket_prefix else {})}
    outputs = deploy_stack(f"weathergif-{stage}", parameters, timeout=900)
    sts = client("sts")
    identity = sts.get_caller_identity()
    target = Stage(stage, identity["Account"], sts.meta.region_name, outputs, identity["Arn"].split(":")[1])
    print("2. recording outputs and policies...", flush=True)
    for path in record(target):
        print(f"   wrote {path.relative_to(ROOT)}")
    print("3. chalice deploy...", flush=True)
    subprocess.run([str(Path(sys.executable).with_name("chalice")), "deploy", "--stage", stage], cwd=ROOT, check=True)
    print("4. post-deploy...", flush=True)
    for line in post_deploy(stage, outputs):
        print(f"   {line}")
    deployed = json.loads((ROOT / ".chalice" / "deployed" / f"{stage}.json").read_text())
    api = [r for r in deployed["resources"] if r.get("resource_type") == "rest_api"]
    if api:
        print(f"done: {api[0]['rest_api_url']} (the page), {api[0]['rest_api_url']}openapi.json")
    return 0


def package(stage: str, out: Path) -> int:
    """chalice package --pkg-format terraform, with the files for what Chalice cannot say.

    Uses the stage's recorded configuration; its policy files must exist (make deploy, or
    `record` with the template's default names, writes them)."""
    from .record import terraform_extras

    subprocess.run([str(Path(sys.executable).with_name("chalice")), "package", "--pkg-format", "terraform",
                    "--stage", stage, str(out)], cwd=ROOT, check=True)
    for name, content in terraform_extras(stage).items():
        (out / name).write_text(json.dumps(content, indent=2) + "\n")
    size = (out / "deployment.zip").stat().st_size
    print(f"{out}/deployment.zip: {size / 1e6:.1f} MB zipped (Lambda allows 50 MB)")
    return 0 if size < 50e6 else 1


def destroy(stage: str) -> int:
    from chalicelib.aws import client

    print("1. chalice delete...", flush=True)
    subprocess.run([str(Path(sys.executable).with_name("chalice")), "delete", "--stage", stage], cwd=ROOT, check=False)
    print("2. buckets and stack...", flush=True)
    cloudformation, s3 = client("cloudformation"), client("s3")
    stack = f"weathergif-{stage}"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    for key in ("FramesBucket", "ThumbnailsBucket", "GifsBucket", "UploadsBucket"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=outputs[key]):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=outputs[key], Delete={"Objects": objects, "Quiet": True})
    cloudformation.delete_stack(StackName=stack)
    cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack)
    print(f"done: stage {stage} is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
