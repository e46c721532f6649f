"""Latency through the local event runtime, and a whole run of the pipeline.

1. Upload-to-thumbnail: a photo named *-400x400.jpg put in the uploads bucket, until
   its thumbnail is in the thumbnails bucket, through the S3 notification, the queue
   and the handler (the runtime running as `make serve` runs it). Baseline, in the
   same run: the handler alone on the same event. Targets: p50 <= 250 ms, p95 <= 500 ms.
2. Schedule-to-email for a 24-frame animation, the fetch schedule sped up as in the demo.
"""

from __future__ import annotations

import io
import statistics
import sys
import time

from common import verdict

UPLOADS = 40


def main() -> None:
    sys.path.insert(0, ".")
    import os

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from PIL import Image

    from local.stack import Local

    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), (120, 90, 60)).save(photo, "JPEG", quality=85)
    data = photo.getvalue()

    now = time.time()
    with Local(schedules=False) as local:
        from chalicelib.aws import client

        s3 = client("s3")
        uploads, thumbs = local.outputs["UploadsBucket"], local.outputs["ThumbnailsBucket"]
        latencies = []
        for i in range(UPLOADS):
            key = f"bench/photo{i}-400x400.jpg"
            started = time.perf_counter()
            s3.put_object(Bucket=uploads, Key=key, Body=data)
            while True:
                try:
                    s3.head_object(Bucket=thumbs, Key=f"uploads/{key}")
                    break
                except s3.exceptions.ClientError:
                    time.sleep(0.005)
            latencies.append((time.perf_counter() - started) * 1000)
        handler_ms = [i.ms for i in local.runtime.stats.invocations if i.handler == "thumbnail_upload"]
        p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20)[18]
        print(f"upload -> thumbnail through the runtime, {UPLOADS} uploads of a 1600x1200 JPEG:")
        print(f"  end to end   p50 {p50:6.0f} ms   p95 {p95:6.0f} ms")
        print(f"  handler only p50 {statistics.median(handler_ms):6.0f} ms   (baseline: the same events, no delivery)")
        print(f"  p50 <= 250 ms: {verdict(p50 <= 250)}; p95 <= 500 ms: {verdict(p95 <= 500)}")

    frames, interval, speed = 24, 600, 1200
    first = now - now % interval - (frames - 1) * interval
    started = time.perf_counter()
    with Local(speed=speed, clock_start=first - 300, clock_until=now) as local:
        from chalicelib.mediator import store
        from chalicelib.mediator.animation import Animation, EmailSpec, ThumbnailSpec
        from local.stack import SENDER, wait_for

        store.put_animation(
            Animation(
                image_id="bench",
                layers=["flat-dk", "radar"],
                width=800,
                height=600,
                center="tulsa,ok",
                zoom=6,
                interval=interval,
                frames=frames,
                thumbnails=[ThumbnailSpec(width=200, height=150)],
                email=EmailSpec(to=["desk@example.com"], from_=SENDER),
            )
        )
        emailed = wait_for(
            lambda: [g for g in store.items("bench", "GIF") if g.get("emailStatus") == "sent"], timeout=120, every=0.1
        )
        elapsed = time.perf_counter() - started
        schedule_span = (frames - 1) * interval / speed
        print(
            f"schedule -> email, {frames} frames of 800x600 (the schedule replays {frames - 1} intervals "
            f"in {schedule_span:.1f} s):"
        )
        print(
            f"  {'email sent' if emailed else 'NO EMAIL'} {elapsed:.1f} s after start, "
            f"{elapsed - schedule_span:.1f} s after the schedule's last tick"
        )


if __name__ == "__main__":
    main()
