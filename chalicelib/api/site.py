"""The web page, the health check and openapi.json."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from chalice import Response

from .. import __version__
from ..aws import objects, queues, table
from ..aws.clients import error_code
from ..settings import names
from .openapi import HTML, OPERATIONS, answer, document, documented
from .params import HOST, PATH_PARAMETERS
from .schemas import Health, OpenApi

PAGE = Path(__file__).resolve().parent.parent / "web" / "index.html"

INLINE = re.compile(r"<(script|style)\b[^>]*>(.*?)</\1>", re.S)  # the page's inline blocks, hashed for its CSP

NONE = "'none'"


@documented(answer("healthy", Health), answer("something does not answer", Health, status=503))
def health() -> Response:
    """Version, and whether the table, buckets and queue answer."""
    n = names()
    checks: dict[str, str] = {}

    def check(name: str, call: Any) -> None:
        try:
            call()
            checks[name] = "ok"
        except Exception as exc:  # a health check reports, it does not fail; its page is public, so it
            # names the error's kind, never its text (an AccessDenied names the role, and the account)
            checks[name] = error_code(exc) or type(exc).__name__

    check("table", lambda: table().describe())
    for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket, n.uploads_bucket):
        check(bucket, lambda b=bucket: objects().check(b))
    check("queue", lambda: queues().check(n.mediator_queue))
    healthy = all(v == "ok" for v in checks.values())
    return Response(body={"version": __version__, "ok": healthy, "checks": checks}, status_code=200 if healthy else 503)


@documented(
    answer(
        "the page",
        media=HTML,
        headers=("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"),
    )
)
def page() -> Response:
    """The web page.

    Every animation's latest GIF, thumbnails, runs and failures; a form to create one."""
    html = PAGE.read_text()
    return Response(
        body=html, status_code=200, headers={"Content-Type": "text/html; charset=utf-8", **page_headers(html)}
    )


@documented(answer("OpenAPI 3.1", OpenApi))
def openapi(route_table: dict[str, Any]) -> dict[str, Any]:
    """This document.

    Every route of the app's table (app.routes), each described beside its body here."""
    from . import animations, images, operations, runs, sources  # noqa: F401 (their routes describe themselves)

    return document(route_table, OPERATIONS, PATH_PARAMETERS)


def page_headers(html: str) -> dict[str, str]:
    """The page's Content-Security-Policy and framing, sniffing and referrer protection.

    Its inline script and style are allowed by their sha256 hashes (no 'unsafe-inline'), made
    from the page as served. Images, and the MP4s it plays as video, come from the API (the
    links) and from where they redirect: S3 over https, or the emulator AWS_ENDPOINT_URL names;
    its icon is an empty data: URL, so the browser asks for no /favicon.ico (which answers 403),
    and it tells whether the browser decodes animated WebP from a data: image. It calls only its
    own API.
    """
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, content in INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    emulator = _emulator_origin()
    images = " ".join(["'self'", "data:", "https:", *emulator])  # data: for its empty icon and its WebP check
    media = " ".join(["'self'", "https:", *emulator])  # the MP4 links, and where they redirect
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(hashes['script']) or NONE}",
            f"style-src {' '.join(hashes['style']) or NONE}",
            f"img-src {images}",
            f"media-src {media}",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _emulator_origin() -> list[str]:
    """The origin of an S3 emulator (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), where image links redirect."""
    from urllib.parse import urlsplit

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return []
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return []
    if parts.scheme not in ("http", "https") or not HOST.fullmatch(parts.netloc):
        return []
    return [f"{parts.scheme}://{parts.netloc}"]
