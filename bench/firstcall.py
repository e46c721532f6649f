"""A cold start's first call: CPU time of the first and second call of a handler, each in a fresh
process that imports app.py and calls the handler with a Lambda event, as Lambda does.

The embedded AWS runs in this process (its CPU is not the handler's). Handlers measured: the
thumbnail worker (an SNS event: a 1600x1200 JPEG in S3 to two sizes) and the mediator (an SQS
batch of one did-fetch-amp-image). Baseline, in the same fresh process: the second call, which
pays no imports and makes no clients. Target: the first call at most 150 ms of CPU.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time

from common import ROOT, verdict

RUNS = 5
T0 = 1_700_000_400
CHILD = r"""
import json, os, sys, time
cpu, wall = time.process_time, time.perf_counter
events = json.loads(sys.stdin.read())
started = cpu()
import app
imported = cpu()
from chalice.local import LambdaContext
handler = app.app.handler_map[sys.argv[1]]
times = []
profile = os.environ.get("FIRSTCALL_PROFILE")
for event in events:
    before = cpu()
    if profile and not times:
        import cProfile
        cProfile.runctx("handler(event, LambdaContext(sys.argv[1], memory_size=1024))", globals(), locals(), profile)
    else:
        handler(event, LambdaContext(sys.argv[1], memory_size=1024))
    times.append(cpu() - before)
print(json.dumps({"import": imported - started, "calls": times}))
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


def fresh(handler: str, events: list[dict]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, handler],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    if out.returncode:
        sys.exit(f"{handler} failed in its fresh process:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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

        def thumbnail(i: int) -> dict:
            message = {"type": "please-create-thumbnail", "imageId": "bench", "validTime": T0 + 300 * i}
            return sns_event(topic, {**message, "location": location, "width": 200 + i, "height": 150})

        def frame(i: int) -> dict:
            message = {"type": "did-fetch-amp-image", "imageId": "bench", "validTime": T0 + 300 * i}
            return sqs_event(queue, {**message, "location": location, "correlationId": f"run-{i}"})

        results: dict[str, list[dict]] = {"create_thumbnail": [], "mediate": []}
        for run in range(RUNS):  # in turn, so that load on the machine falls on both alike
            results["create_thumbnail"].append(fresh("create_thumbnail", [thumbnail(2 * run), thumbnail(2 * run + 1)]))
            results["mediate"].append(fresh("mediate", [frame(2 * run), frame(2 * run + 1)]))
    finally:
        emulator.stop()
    print(f"first call after `import app` in a fresh process, CPU time, median of {RUNS}:")
    for handler, runs in results.items():
        imported = statistics.median(r["import"] for r in runs) * 1000
        first = statistics.median(r["calls"][0] for r in runs) * 1000
        second = statistics.median(r["calls"][1] for r in runs) * 1000
        print(
            f"  {handler:17s} import {imported:5.0f} ms, first call {first:5.0f} ms, second {second:5.0f} ms "
            f"(first {first / second:4.1f}x the second): first <= 150 ms {verdict(first <= 150)}"
        )


if __name__ == "__main__":
    main()
