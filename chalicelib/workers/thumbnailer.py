"""Thumbnailer: please-create-thumbnail -> a thumbnail in the thumbnails bucket -> did-create-thumbnail."""

from __future__ import annotations

from .. import storage
from ..aws import objects
from ..imaging.thumbnail import make_thumbnail
from ..messages import DidCreateThumbnail, PleaseCreateThumbnail
from ..settings import max_image_pixels, names
from .runner import Worker, reply


def create_thumbnail(request: PleaseCreateThumbnail) -> DidCreateThumbnail:
    source = objects().get(request.location)
    thumb = make_thumbnail(
        source, request.width, request.height, mode=request.mode, fmt=request.format, max_pixels=max_image_pixels()
    )
    key = storage.thumbnail_key(
        request.image_id,
        request.valid_time,
        request.width,
        request.height,
        request.mode,
        thumb.extension,
        run_time=request.run_time,
    )
    location = objects().put(names().thumbnails_bucket, key, thumb.data, thumb.content_type)
    return reply(
        DidCreateThumbnail,
        request,
        image_id=request.image_id,
        valid_time=request.valid_time,
        location=location,
        width=thumb.width,
        height=thumb.height,
        label=f"{request.width}x{request.height}-{request.mode}",
        run_time=request.run_time,
    )


WORKER = Worker("create-thumbnail", PleaseCreateThumbnail, create_thumbnail)
