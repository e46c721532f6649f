"""python -m local demo | serve | aws: weathergif on this machine, no AWS account needed."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job once and write demo-output/")
    demo.add_argument("--out", default="demo-output")
    serve = commands.add_parser("serve", help="the REST API, the event runtime and AWS, until Ctrl-C")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--endpoint", help="an AWS emulator already running (LocalStack, moto_server)")
    serve.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="the event runtime's clock runs this many times faster: the 5-minute schedule every 5 s at 60",
    )
    serve.add_argument("--no-demo", action="store_true", help="do not create the demo animation")
    aws = commands.add_parser("aws", help="the embedded AWS, resources and event runtime for `chalice local`")
    aws.add_argument("--port", type=int, default=4567, help="the embedded AWS's port")
    aws.add_argument("--api-port", type=int, default=8000, help="the port `chalice local` will answer on")
    aws.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(args.out)
    if args.command == "aws":
        from .backend import main as backend_main

        return backend_main(port=args.port, api_port=args.api_port, stage=args.stage)
    from .serve import main as serve_main

    return serve_main(port=args.port, endpoint=args.endpoint, speed=args.speed, demo=not args.no_demo)


def _speed(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"a speed is a factor above 0 (1: real time), not {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
