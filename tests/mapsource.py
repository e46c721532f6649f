"""A map source on loopback whose answers each test sets: status, headers, body, delay.

The fetcher refuses loopback addresses unless FETCH_ALLOWED_NETWORKS names them, so
while it runs this source lets it through to 127.0.0.1 (`environment()` says so too):
start() sets the variable, stop() puts back what was there. A fixture that sets the
environment with monkeypatch does so before start(), so the two undo in the right order.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from local.mapsource import SHUTDOWN_POLL


# A fetch request for a frame of this source (the fetcher and worker tests send it).
FETCH = {
    "type": "please-fetch-amp-image",
    "dateCreated": 123456789,
    "imageId": "temps",
    "layers": ["flat-dk", "radar"],
    "width": 320,
    "height": 240,
    "center": "tulsa,ok",
    "zoom": 4,
    "validTime": 1700000000,
    "correlationId": "run-42",
}


class Answer(NamedTuple):
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = {}
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the body's bytes: a source that never quite stops


class MapSource:
    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.default = Answer(404, b'{"error": "no such map"}', {"Content-Type": "application/json"})
        self.paths: list[str] = []
        self.respond: Callable[[str], Answer] | None = None  # answers by path, when set
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                source.paths.append(self.path)
                if source.respond is not None:
                    answer = source.respond(self.path)
                else:
                    answer = source.answers.popleft() if source.answers else source.default
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    headers = {"Content-Type": "image/png", **answer.headers}
                    headers.setdefault("Content-Length", str(len(answer.body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if answer.trickle:
                        for i in range(len(answer.body)):
                            self.wfile.write(answer.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(answer.trickle)
                    else:
                        self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
        self._saved_networks: list[str | None] = []

    def start(self) -> MapSource:
        self._saved_networks = [os.environ.get("FETCH_ALLOWED_NETWORKS")]
        os.environ["FETCH_ALLOWED_NETWORKS"] = "127.0.0.1"
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for saved in self._saved_networks:  # none when it never started
            if saved is None:
                os.environ.pop("FETCH_ALLOWED_NETWORKS", None)
            else:
                os.environ["FETCH_ALLOWED_NETWORKS"] = saved
        self._saved_networks = []

    def environment(self, client_id: str = "", client_secret: str = "") -> dict[str, str]:
        """What the fetcher needs to fetch from this source."""
        return {
            "MAP_URL_TEMPLATE": self.template,
            "MAP_CLIENT_ID": client_id,
            "MAP_CLIENT_SECRET": client_secret,
            "FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "FETCH_ALLOWED_NETWORKS": "127.0.0.1",
        }

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    @property
    def template(self) -> str:
        return (
            f"http://127.0.0.1:{self.port}/{{client_id}}_{{client_secret}}/{{layers}}/"
            "{width}x{height}/{center},{zoom}/{time}.png"
        )


def radar_source(monkeypatch: Any, width: int = 320, height: int = 240) -> MapSource:
    """A started source answering each valid time with a radar frame of its own (the same bytes each
    time it is asked), and the fetcher's environment pointed at it. Stop it when done."""
    from tests.images import encode, radar_frame

    server = MapSource()
    frames: dict[str, bytes] = {}

    def respond(path: str) -> Answer:
        found = re.search(r"/(\d{14})\.png$", path)
        stamp = found.group(1) if found else path
        if stamp not in frames:
            frames[stamp] = encode(radar_frame(len(frames), width, height))
        return Answer(body=frames[stamp])

    server.respond = respond
    for name, value in server.environment("id", "secret").items():
        monkeypatch.setenv(name, value)
    return server.start()
