"""GIF maker: please-create-gif -> an animated GIF in the gifs bucket -> did-create-gif."""

from __future__ import annotations

import os

from PIL import Image

from .. import storage, telemetry
from ..aws import objects
from ..imaging.decode import load, open_image
from ..imaging.gif import encode_gif
from ..messages import DidCreateGif, PleaseCreateGif
from ..settings import max_image_pixels, names
from .runner import Worker, reply


def max_gif_pixels() -> int:
    """Decoded pixels of all frames together: 48 frames of 1280x960 by default."""
    return int(os.environ.get("MAX_GIF_PIXELS") or 60_000_000)


def create_gif(request: PleaseCreateGif) -> DidCreateGif:
    count = len(request.locations)
    # Every frame within its share of the total bound keeps the sum within it.
    per_frame = min(max_image_pixels(), max_gif_pixels() // count)

    def decode(index: int, data: bytes) -> Image.Image:
        what = f"frame {index} ({request.locations[index].key}) of a {count}-frame GIF"
        return load(open_image(data, per_frame, what), what)

    frames = objects().read_all(request.locations, decode)
    width, height = frames[0].size
    data = encode_gif(frames, delay=request.delay, loop=request.loop, last_delay=request.last_delay)
    telemetry.add("FramesPerGif", count)
    key = storage.gif_key(request.image_id, request.valid_time)
    location = objects().put(names().gifs_bucket, key, data, "image/gif", frames=count)
    return reply(
        DidCreateGif,
        request,
        image_id=request.image_id,
        valid_time=request.valid_time,
        location=location,
        frames=count,
        width=width,
        height=height,
        bytes=len(data),
    )


WORKER = Worker("create-gif", PleaseCreateGif, create_gif)
