"""Upload thumbnailer: an upload named like `canyon-400x400.jpg` gets a 400x400 thumbnail.

Triggered by S3 (ObjectCreated on the uploads bucket). The thumbnail goes to the
thumbnails bucket under `uploads/` with the same name; the mediator is told with
did-create-thumbnail, or did-fail-create-thumbnail when the upload can never make one.
Keys that do not end in -WxH.jpg, .jpeg or .png are skipped with a log line.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from .. import storage, telemetry
from ..aws import objects
from ..bus import send_to_mediator
from ..errors import PermanentError
from ..imaging.thumbnail import make_thumbnail
from ..log import logger
from ..messages import MAX_SIDE, DidCreateThumbnail, Location, failure
from ..settings import max_image_pixels, names

SIZED_NAME = re.compile(r"-(?P<width>\d+)x(?P<height>\d+)\.(?P<ext>jpe?g|png)$", re.IGNORECASE)
UPLOAD_IMAGE_ID = "upload"


class UploadError(PermanentError):
    """An upload whose name asks for something no thumbnail can be."""


def thumbnail_uploads(event: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
    """Every record of an S3 notification; returns the replies sent to the mediator."""
    with telemetry.invocation("thumbnail_upload", context):
        return _thumbnail_uploads(event)


def _thumbnail_uploads(event: dict[str, Any]) -> list[dict[str, Any]]:
    replies = []
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        logger.set_correlation_id(
            record["s3"]["object"].get("sequencer") or record.get("responseElements", {}).get("x-amz-request-id")
        )
        if not record.get("eventName", "ObjectCreated").startswith("ObjectCreated"):
            logger.info(f"skipped s3://{bucket}/{key}: {record.get('eventName')} is not an upload")
            continue
        reply = thumbnail_upload(bucket, key, event_time(record))
        if reply is not None:
            replies.append(reply)
    return replies


def thumbnail_upload(bucket: str, key: str, when: int) -> dict[str, Any] | None:
    source = Location(bucket=bucket, key=key)
    try:
        size = requested_size(key)
        if size is None:
            logger.info(f"skipped s3://{bucket}/{key}: its name does not end in -WxH.jpg, .jpeg or .png")
            return None
        width, height, fmt = size
        thumb = make_thumbnail(objects().get(source), width, height, fmt=fmt, max_pixels=max_image_pixels())
    except PermanentError as exc:
        failed = failure("create-thumbnail", exc, {"source": source.to_dict()})
        telemetry.failed(type(exc).__name__)
        send_to_mediator(failed)
        logger.error(f"no thumbnail of s3://{bucket}/{key}: {exc}")
        return failed.to_dict()
    location = objects().put(
        names().thumbnails_bucket, storage.upload_thumbnail_key(key, thumb.extension), thumb.data, thumb.content_type
    )
    reply = DidCreateThumbnail(
        image_id=UPLOAD_IMAGE_ID,
        valid_time=when,
        location=location,
        width=thumb.width,
        height=thumb.height,
        source=source,
    )
    send_to_mediator(reply)
    logger.info(f"thumbnail of s3://{bucket}/{key} at s3://{location.bucket}/{location.key}")
    return reply.to_dict()


def requested_size(key: str) -> tuple[int, int, Literal["jpeg", "png"]] | None:
    """(width, height, output format) from a name like canyon-400x400.jpg, or None."""
    match = SIZED_NAME.search(key)
    if not match or match.start() == 0:
        return None
    width, height = int(match["width"]), int(match["height"])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise UploadError(f"{key!r} asks for {width}x{height}; each side must be 1..{MAX_SIDE}")
    return width, height, "png" if match["ext"].lower() == "png" else "jpeg"


def event_time(record: dict[str, Any]) -> int:
    try:
        return int(datetime.fromisoformat(record["eventTime"]).timestamp())
    except (KeyError, ValueError):
        return int(time.time())
