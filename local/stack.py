"""Everything weathergif needs on one machine: AWS (embedded or given), resources,
the demo map source and the event runtime, started and stopped together."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from chalicelib.settings import RESOURCES, STAGE_VARIABLE

from .emulator import FAKE_CREDENTIALS, Emulator
from .mapsource import DemoMapSource
from .provision import provision

SENDER = "weathergif demo <weathergif@example.com>"
SENDER_ADDRESS = "weathergif@example.com"


class Local:
    """Start with start(), stop with stop() (or use it as a context manager)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        speed: float = 1.0,
        workers: int = 4,
        clock_start: float | None = None,
        clock_until: float | None = None,
        schedules: bool = True,
        stage: str = "dev",
        port: int = 0,
    ):
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")  # else: an embedded one
        self.port = port  # the embedded one's (0: any free port)
        self.speed = speed
        self.workers = workers
        self.clock_start = clock_start
        self.clock_until = clock_until
        self.schedules = schedules
        self.stage = stage
        self.emulator: Emulator | None = None
        self.map_source: DemoMapSource | None = None
        self.runtime: Any = None
        self.outputs: dict[str, str] = {}

    def start(self) -> Local:
        self._saved_environment = dict(os.environ)
        os.environ[STAGE_VARIABLE] = self.stage
        if self.endpoint:  # an emulator already running (LocalStack, a moto_server)
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint
            for name, value in FAKE_CREDENTIALS.items():
                os.environ.setdefault(name, value)
            from chalicelib import aws

            aws.reset()
        else:
            self.emulator = Emulator(port=self.port).start()
            self.emulator.use()
            self.endpoint = self.emulator.endpoint
        self.outputs = provision(stage=self.stage, sender=SENDER_ADDRESS)
        self.map_source = DemoMapSource().start()
        os.environ.update(self.map_source.environment())

        from app import app  # after the environment names the resources: its decorators read them

        from .runtime import Runtime

        self.runtime = Runtime(
            app,
            workers=self.workers,
            speed=self.speed,
            on_failure_queue=self.outputs[RESOURCES.worker_failure_queue.output],
        ).setup()
        if self.clock_start is not None:
            self.runtime.set_clock(self.clock_start, self.clock_until)
        self.runtime.start(schedules=self.schedules)
        return self

    def environment(self) -> dict[str, str]:
        """What another process (chalice local) needs to use this stack: where AWS is, the stage and
        its resources' names (chalicelib/settings.py's table) and the demo map source's configuration."""
        source = self.map_source.environment() if self.map_source else {}
        names = ("AWS_ENDPOINT_URL", *FAKE_CREDENTIALS, STAGE_VARIABLE, *(r.variable for r in RESOURCES), *source)
        return {name: os.environ[name] for name in names if name in os.environ}

    def stop(self) -> None:
        for part in (self.runtime, self.map_source, self.emulator):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stop the rest whatever one did
                    logging.getLogger("local.stack").exception("stopping %s", type(part).__name__)
        if hasattr(self, "_saved_environment"):  # the environment as it was before start()
            os.environ.clear()
            os.environ.update(self._saved_environment)
            from chalicelib import aws

            aws.reset()

    def __enter__(self) -> Local:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_animation(image_id: str, **fields: Any) -> Any:
    """An animation of the demo source's radar over its dark basemap around Tulsa, 800 x 600: the
    view `make demo` and `make serve` show (an Animation; `fields` the rest of its configuration)."""
    from chalicelib.mediator.animation import Animation

    view = dict(layers=["flat-dk", "radar"], width=800, height=600, center="tulsa,ok", zoom=6)
    return Animation(image_id=image_id, **view, **fields)


def wait_for(condition: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    return None
