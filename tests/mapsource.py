"""A map source on loopback whose answers each test sets: status, headers, body, delay."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


class Answer(NamedTuple):
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = {}
    delay: float = 0.0


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
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MapSource:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    @property
    def template(self) -> str:
        return (
            f"http://127.0.0.1:{self.port}/{{client_id}}_{{client_secret}}/{{layers}}/"
            "{width}x{height}/{center},{zoom}/{time}.png"
        )
