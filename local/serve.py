"""`make serve`: the REST API (chalice local), the event runtime and AWS together, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from chalicelib.settings import FETCH_EVERY_MINUTES, PUBLIC_URL_VARIABLE, STAGE_VARIABLE
from .logs import configure
from .stack import SENDER, Local, demo_animation

ROOT = Path(__file__).resolve().parent.parent


def main(port: int = 8000, endpoint: str | None = None, speed: float = 1.0, demo: bool = True) -> int:
    configure()  # a plain line per invocation; the app's warnings and errors in JSON
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if not os.environ.get("API_TOKEN"):
        import secrets

        os.environ["API_TOKEN"] = secrets.token_urlsafe(16)
    os.environ.setdefault(PUBLIC_URL_VARIABLE, f"http://127.0.0.1:{port}/")  # the links in emails: this server's routes
    local = Local(endpoint, speed=speed).start()
    api = None
    try:
        if demo:
            _demo_animations()
        threading.Thread(target=local.runtime.fire, args=("fetch_due_frames",), daemon=True).start()
        env = {**os.environ, **local.environment(), "API_TOKEN": os.environ["API_TOKEN"]}
        api = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("chalice")),
                "local",
                "--port",
                str(port),
                "--stage",
                os.environ.get(STAGE_VARIABLE, "dev"),
                "--no-autoreload",
            ],
            cwd=ROOT,
            env=env,
        )
        print(
            f"weathergif is running: REST on http://127.0.0.1:{port}/, AWS at {local.endpoint}, "
            f"demo map source at {local.map_source.origin} (sources {', '.join(local.map_source.SOURCES)}).\n"
            f"API token (for changes, and the page's token field): {os.environ['API_TOKEN']}\n"
            f"{_pace(speed)}"
            "Ctrl-C stops it.",
            flush=True,
        )
        while not stop.is_set():
            if api.poll() is not None:
                print(f"chalice local ended with {api.returncode}", file=sys.stderr)
                return 1
            stop.wait(0.5)
        return 0
    finally:
        print("stopping...", flush=True)
        if api is not None and api.poll() is None:
            api.terminate()
            try:
                api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api.kill()
        local.stop()
        print("stopped.", flush=True)


def _pace(speed: float) -> str:
    """What the event runtime's clock does at `speed`, said once at the start."""
    if speed == 1:
        return ""
    every = FETCH_EVERY_MINUTES * 60 / speed
    return (
        f"Schedules run {speed:g} times faster: the {FETCH_EVERY_MINUTES}-minute fetch schedule every {every:.3g} s, "
        "each tick at its simulated time (ahead of the clock: frames are asked for times to come).\n"
    )


def _demo_animations() -> None:
    """The radar loop a first look at the page shows: created as the API creates one, so its window
    is asked for at once and its GIF is there on the first page load; and a forecast loop beside it."""
    from chalicelib.mediator import service, store
    from chalicelib.mediator.animation import EmailSpec, ThumbnailSpec

    if store.get_animation("forecast-demo") is None:
        store.put_animation(
            demo_animation(
                "forecast-demo",
                kind="forecast",
                source="demo-forecast",
                interval=900,
                frames=12,
                thumbnails=[ThumbnailSpec(width=200, height=150)],
            )
        )
        service.start("forecast-demo")
        print("created the animation forecast-demo (each hourly run of the demo forecast, 3 hours ahead)", flush=True)
    if store.get_animation("radar-demo") is None:
        store.put_animation(
            demo_animation(
                "radar-demo",
                interval=300,
                frames=12,
                every=1,
                thumbnails=[ThumbnailSpec(width=200, height=150)],
                formats=["gif", "webp", "mp4"],
                email=EmailSpec(to=["forecast-desk@example.com"], from_=SENDER),
            )
        )
        service.start("radar-demo")  # its window at once: its GIF is there on the first page load
        print("created the animation radar-demo (a frame every 5 minutes)", flush=True)
