"""`make demo`: the main job, whole, on this machine.

Starts the embedded AWS, the demo map source and the event runtime; creates, as the API
does, an observed loop of 12 frames (two thumbnail sizes, an email recipient, GIF, WebP and
MP4) and a forecast loop of the demo forecast's newest model run, each of which asks for
its whole window at once; uploads a photo named `canyon-400x400.jpg`; and ends when both
GIFs, the thumbnails and the email exist, writing them to demo-output/. Exits non-zero
with the reason if anything failed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import statistics
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from chalicelib.htmltext import html_to_text
from chalicelib.settings import PUBLIC_URL_VARIABLE
from chalicelib.mediator.records import Gif

from .stack import SENDER, Local, demo_animation, wait_for

IMAGE_ID = "radar-demo"
FORECAST_ID = "forecast-demo"
FRAMES = 12
INTERVAL = 600
FORECAST_FRAMES = 8  # of the newest run, 15 minutes apart: two hours ahead
FORECAST_INTERVAL = 900
UPLOAD_KEY = "canyon-400x400.jpg"
RECIPIENT = "forecast-desk@example.com"
TIMEOUT = 150  # seconds; it takes about 15 s on an idle machine, more on a loaded one
PUBLIC_URL = "http://127.0.0.1:8000/"  # where `make serve` answers the email's links
ROUTE_LINK = re.compile(r"/animations/([^/]+)/(gifs|frames)/([0-9]+)/(?:image|thumbnails/([^/]+))$")


class Demo:
    def __init__(self, out: Path):
        self.out = out
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.last_line = ""

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:5.1f}s] {text}", flush=True)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter() - self.started)

    def progress(self, text: str) -> None:
        if text != self.last_line:
            self.say(text)
            self.last_line = text

    def run(self) -> int:
        # No REST server runs in the demo: the email links to routes at a fixed local address,
        # and write() resolves them to the files it saves (as `make serve` would redirect them).
        saved = os.environ.get(PUBLIC_URL_VARIABLE)
        os.environ[PUBLIC_URL_VARIABLE] = PUBLIC_URL
        try:
            return self._run()
        finally:
            if saved is None:
                os.environ.pop(PUBLIC_URL_VARIABLE, None)
            else:
                os.environ[PUBLIC_URL_VARIABLE] = saved

    def _run(self) -> int:
        self.say("starting the embedded AWS, the demo map source and the event runtime")
        with Local() as local:
            sources = ", ".join(local.map_source.SOURCES)
            self.say(f"AWS emulation at {local.endpoint}; demo map source at {local.map_source.origin} ({sources})")
            handlers = ", ".join(f"{s.name} ({s.kind})" for s in local.runtime.sources)
            self.say(f"delivering to {handlers}")
            from chalicelib.mediator import service, store
            from chalicelib.mediator.animation import EmailSpec, ThumbnailSpec

            store.put_animation(
                demo_animation(
                    IMAGE_ID,
                    interval=INTERVAL,
                    frames=FRAMES,
                    thumbnails=[ThumbnailSpec(width=200, height=150), ThumbnailSpec(width=96, height=96, mode="cover")],
                    formats=["gif", "webp", "mp4"],
                    email=EmailSpec(to=[RECIPIENT], from_=SENDER, subject="{imageId}: radar to {time}"),
                )
            )
            service.start(IMAGE_ID)  # as the API does for a new animation: its whole window at once
            self.say(
                f"animation {IMAGE_ID!r}: the newest {FRAMES} frames, one every {INTERVAL // 60} min (asked for at once), "
                f"2 thumbnail sizes, GIF, WebP and MP4, email to {RECIPIENT}"
            )
            store.put_animation(
                demo_animation(
                    FORECAST_ID,
                    kind="forecast",
                    source="demo-forecast",
                    interval=FORECAST_INTERVAL,
                    frames=FORECAST_FRAMES,
                    thumbnails=[ThumbnailSpec(width=200, height=150)],
                )
            )
            service.start(FORECAST_ID)
            self.say(
                f"animation {FORECAST_ID!r}: the newest run of the demo forecast, {FORECAST_FRAMES} frames "
                f"{FORECAST_INTERVAL // 60} min apart"
            )
            upload(local.outputs["UploadsBucket"])
            self.say(f"uploaded {UPLOAD_KEY} to {local.outputs['UploadsBucket']}")
            outcome = wait_for(lambda: self.check(local), TIMEOUT, every=0.25)
            if outcome is None:
                return self.fail(local, f"the GIFs, thumbnails and email did not all exist after {TIMEOUT} s")
            if isinstance(outcome, str):
                return self.fail(local, outcome)
            local.runtime.stop()
            self.write(local, outcome)
            self.summary(local, outcome)
        return 0

    def check(self, local: Local) -> Any:
        """Progress; the finished GIF record when everything exists; a reason if something failed."""
        from chalicelib.mediator import store

        state = store.get_animation(IMAGE_ID, consistent=True)
        frames = store.frames(IMAGE_ID, limit=100)
        thumbs = sum(len(frame.thumbnails) for frame in frames)
        failures = store.failures(IMAGE_ID) + store.failures(FORECAST_ID)
        if failures:
            return f"{failures[0].action} failed: {failures[0].error}"
        if state and state.frame_count:
            self.mark("first frame")
        gifs = [g for g in store.gifs(IMAGE_ID, newest_first=False) if g.done]
        forecast = [g for g in store.gifs(FORECAST_ID) if g.done]
        upload_done = _exists(local.outputs["ThumbnailsBucket"], f"uploads/{UPLOAD_KEY}")
        if upload_done:
            self.mark("upload thumbnail")
        if gifs:
            self.mark("GIF")
        if forecast:
            self.mark("forecast GIF")
        emailed = [g for g in gifs if g.email_status == "sent"]
        if emailed:
            self.mark("email")
        self.progress(
            f"frames {min(len(frames), FRAMES)}/{FRAMES}, thumbnails {min(thumbs, 2 * FRAMES)}/{2 * FRAMES}, "
            f"GIF {'made' if gifs else 'waiting'}, email {'sent' if emailed else 'waiting'}, "
            f"forecast GIF {'made' if forecast else 'waiting'}, "
            f"upload thumbnail {'made' if upload_done else 'waiting'}"
        )
        if emailed and upload_done and forecast:
            gif = emailed[0]
            window = [f for f in frames if f.valid_time in gif.frame_times]
            if all(len(f.thumbnails) == 2 for f in window):
                return gif
        return None

    def write(self, local: Local, gif: Gif) -> None:
        from chalicelib.aws import client
        from chalicelib.mediator import store

        s3 = client("s3")
        if self.out.exists():
            shutil.rmtree(self.out)
        (self.out / "thumbnails").mkdir(parents=True)
        saved: dict[tuple[str, str], str] = {}

        def save(bucket: str, key: str, name: str) -> Path:
            path = self.out / name
            path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            saved[(bucket, key)] = name
            return path

        assert gif.location is not None
        save(gif.location.bucket, gif.location.key, f"{IMAGE_ID}.gif")
        for output in gif.outputs:  # the WebP and the MP4 of the same frames
            if output.format != "gif":
                save(output.location.bucket, output.location.key, f"{IMAGE_ID}.{output.format}")
        [forecast] = [g for g in store.gifs(FORECAST_ID) if g.done][:1]
        assert forecast.location is not None
        save(forecast.location.bucket, forecast.location.key, f"{FORECAST_ID}.gif")
        for frame in store.frames(IMAGE_ID, limit=100):
            if frame.valid_time in gif.frame_times:
                for label, location in sorted(frame.thumbnails.items()):
                    save(location.bucket, location.key, f"thumbnails/{frame.valid_time}-{label}.jpg")
        save(local.outputs["ThumbnailsBucket"], f"uploads/{UPLOAD_KEY}", UPLOAD_KEY)
        from .emulator import sent_emails

        [sent] = [m for m in sent_emails(local.endpoint) if IMAGE_ID in m["subject"]][:1] or [None]
        if sent is None:
            raise RuntimeError(f"the emulator at {local.endpoint} shows no email of the demo")
        html = _local_links(sent["body"], saved, save)
        # The text alternative as the emailer made it from the HTML it sent (SES keeps no copy here), its
        # links to the same files: made from `html`, whose links are no http(s) URLs, it would have none.
        text = _local_links(html_to_text(sent["body"]), saved, save)
        (self.out / "email.html").write_text(html)
        (self.out / "email.eml").write_bytes(_eml(sent, html, text))

    def summary(self, local: Local, gif: Gif) -> None:
        image = Image.open(self.out / f"{IMAGE_ID}.gif")
        size = (self.out / f"{IMAGE_ID}.gif").stat().st_size
        thumbs = len(list((self.out / "thumbnails").iterdir()))
        print()
        print(f"weathergif demo done in {time.perf_counter() - self.started:.1f} s")
        print(
            f"  GIF       {self.out / (IMAGE_ID + '.gif')}: {image.n_frames} frames of {image.width}x{image.height}, "
            f"{size // 1024} KB"
        )
        for output in gif.outputs:
            if output.format != "gif":
                print(
                    f"  {output.format:<9} {self.out / (IMAGE_ID + '.' + output.format)}: the same frames, "
                    f"{output.bytes // 1024} KB ({output.bytes / max(size, 1):.2f}x the GIF)"
                )
        forecast = Image.open(self.out / f"{FORECAST_ID}.gif")
        print(
            f"  forecast  {self.out / (FORECAST_ID + '.gif')}: {forecast.n_frames} frames of the demo forecast's newest run"
        )
        print(f"  thumbnails {self.out / 'thumbnails'}/: {thumbs} files (200x150 and 96x96 of each frame)")
        print(
            f"  upload    {self.out / UPLOAD_KEY}: {Image.open(self.out / UPLOAD_KEY).size[0]}x"
            f"{Image.open(self.out / UPLOAD_KEY).size[1]} thumbnail of a 1600x1200 photo"
        )
        print(f"  email     {self.out / 'email.eml'} and {self.out / 'email.html'}: to {RECIPIENT}")
        print("  timings   " + ", ".join(f"{name} at {at:.1f} s" for name, at in self.marks.items()))
        stats = local.runtime.stats
        rows = {}
        for invocation in stats.invocations:
            rows.setdefault(invocation.handler, []).append(invocation.ms)
        print(
            "  handlers  "
            + ", ".join(f"{name} x{len(ms)} (p50 {statistics.median(ms):.0f} ms)" for name, ms in sorted(rows.items()))
        )
        cost = self.cost()
        print(
            f"  cost      {self.out / 'cost.json'}: ${cost['usd']:.6f} at AWS's prices for this animation's "
            f"{len(cost['byFunction'])} functions' recorded usage (GET /animations/{IMAGE_ID}/cost)"
        )

    def cost(self) -> dict[str, Any]:
        """What the demo animation's work cost, from the usage its handlers recorded (as the API prices it)."""
        from chalicelib import costs
        from chalicelib.mediator import metering, store

        metering.flush(force=True)  # what the containers owe the records (on Lambda, within a minute)
        now = time.time()
        priced = costs.price(store.usage(IMAGE_ID, now - 86400, now))
        (self.out / "cost.json").write_text(json.dumps(priced, indent=2) + "\n")
        return priced

    def fail(self, local: Local, reason: str) -> int:
        errors = [i for i in local.runtime.stats.invocations if i.outcome == "error"]
        print(f"\ndemo FAILED: {reason}", file=sys.stderr)
        counts = {s.name: f"{s.invocations} runs, {s.failures} failed" for s in local.runtime.sources}
        print(f"  handlers: {counts}", file=sys.stderr)
        for invocation in errors[:5]:
            print(f"  {invocation.handler}: {invocation.error}", file=sys.stderr)
        return 1


def upload(bucket: str) -> None:
    from chalicelib.aws import client

    buffer = io.BytesIO()
    canyon_photo().save(buffer, "JPEG", quality=88)
    client("s3").put_object(Bucket=bucket, Key=UPLOAD_KEY, Body=buffer.getvalue(), ContentType="image/jpeg")


def canyon_photo(width: int = 1600, height: int = 1200) -> Image.Image:
    """A made-up canyon: sky, layered rock walls, a river, some grain."""
    rng = np.random.default_rng(42)
    y = np.linspace(0, 1, height)[:, None]
    sky = np.dstack([120 + 80 * y, 160 + 60 * y, 230 + 0 * y]) * np.ones((1, width, 1))
    image = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    x = np.arange(width)
    for band, (colour, base) in enumerate(
        [((168, 92, 60), 0.30), ((190, 120, 80), 0.42), ((150, 80, 55), 0.55), ((120, 64, 48), 0.68)]
    ):
        ridge = base * height + 40 * np.sin(x / (90 + 30 * band) + band) + 25 * np.sin(x / 23.0 + band * 2)
        for side in (-1, 1):
            wall = ridge + side * 0
            points = [(int(xi), int(yi)) for xi, yi in zip(x[::8], wall[::8])] + [(width, height), (0, height)]
            draw.polygon(points, fill=colour)
    river = [
        (int(width / 2 + 120 * np.sin(t / 140) + (t - height) * 0.1), t) for t in range(int(height * 0.78), height, 6)
    ]
    draw.line(river, fill=(70, 120, 150), width=40)
    noisy = np.asarray(image.filter(ImageFilter.GaussianBlur(1.2)), np.int16) + rng.integers(
        -12, 12, (height, width, 3)
    )
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def _exists(bucket: str, key: str) -> bool:
    from chalicelib.aws import client

    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except client("s3").exceptions.ClientError:
        return False
    return True


def _local_links(html: str, saved: dict[tuple[str, str], str], save: Any) -> str:
    """The email's links (in its HTML, or its text) as the files saved beside it.

    A link is a route of the REST API (which does not run in the demo): its image is found
    through the mediator's records, as the route finds it. A presigned URL (PUBLIC_URL
    unset) names its bucket and key in its path.
    """
    from chalicelib.mediator import store

    def local(match: re.Match[str]) -> str:
        url = match.group(0).replace("&amp;", "&")
        path = unquote(urlsplit(url).path)
        route = ROUTE_LINK.search(path)
        if route:
            image_id, kind, valid_time, label = route.groups()
            record = (store.gif if kind == "gifs" else store.frame)(image_id, int(valid_time))
            location = (record.thumbnails.get(label) if label else record.location) if record else None
            if location is None:
                raise RuntimeError(f"the email links to {url}, and no record holds that image")
            bucket, key = location.bucket, location.key
        else:
            bucket, _, key = path.lstrip("/").partition("/")
        if (bucket, key) not in saved:
            save(bucket, key, f"thumbnails/{Path(key).name}")
        return saved[(bucket, key)]

    return re.sub(r"https?://[^\"'\s<>]+", local, html)  # in an attribute, or a text's <url>


def _eml(sent: dict[str, Any], html: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = sent["source"]
    message["To"] = ", ".join(sent["destinations"]["ToAddresses"])
    message["Subject"] = sent["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{sent['id']}@weathergif.demo>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return bytes(message)


def main(out: str = "demo-output") -> int:
    import logging

    from .logs import configure

    verbose = logging.INFO if os.environ.get("DEMO_VERBOSE") else logging.WARNING
    configure(verbose, runtime=verbose)
    return Demo(Path(out)).run()
