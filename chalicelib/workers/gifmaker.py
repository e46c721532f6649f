"""GIF maker: please-create-gif -> an animated GIF (and the WebP and MP4 asked for) in the gifs
bucket -> did-create-gif."""

from __future__ import annotations

import os

from PIL import Image

from .. import redaction, storage, telemetry
from ..aws import objects
from ..bus import send_to_mediator
from ..imaging.animation import Failure, encode_animation
from ..imaging.decode import load, open_image
from ..log import logger
from ..messages import CONTENT_TYPES, DidCreateGif, Location, Output, PleaseCreateGif, failure
from ..settings import max_image_pixels, names
from .runner import Worker, reply


def max_gif_pixels() -> int:
    """Decoded pixels of all frames together: 48 frames of 1280x960 by default."""
    return int(os.environ.get("MAX_GIF_PIXELS") or 60_000_000)


def output_key(image_id: str, valid_time: int, format: str, run_time: int | None = None) -> str:
    """Each format next to the GIF: {imageId}/{validTime}.gif, .webp, .mp4 (a run's: run-{runTime}.*)."""
    return storage.gif_key(image_id, valid_time, run_time).removesuffix(".gif") + "." + format


def create_gif(request: PleaseCreateGif) -> DidCreateGif:
    count = len(request.locations)
    # Every frame within its share of the total bound keeps the sum within it.
    per_frame = min(max_image_pixels(), max_gif_pixels() // count)

    def decode(index: int, data: bytes) -> Image.Image:
        what = f"frame {index} ({request.locations[index].key}) of a {count}-frame GIF"
        return load(open_image(data, per_frame, what), what)

    frames = objects().read_all(request.locations, decode)
    width, height = frames[0].size
    encoded = encode_animation(
        frames, request.wanted(), delay=request.delay, last_delay=request.last_delay, loop=request.loop
    )
    telemetry.add("FramesPerGif", count)
    bucket = names().gifs_bucket
    stored: list[tuple[str, Location, int]] = []
    for output in encoded.outputs:  # the GIF first
        key = output_key(request.image_id, request.valid_time, output.format, request.run_time)
        location = objects().put(bucket, key, output.data, CONTENT_TYPES[output.format], frames=count)
        stored.append((output.format, location, len(output.data)))
    for failed in encoded.failures:
        _answer_format_failure(request, failed)
    gif_location, gif_bytes = stored[0][1], stored[0][2]
    outputs = (
        [Output(format=f, location=location, bytes=size) for f, location, size in stored]  # type: ignore[arg-type]
        if request.formats is not None
        else None
    )
    return reply(
        DidCreateGif,
        request,
        image_id=request.image_id,
        valid_time=request.valid_time,
        location=gif_location,
        frames=count,
        width=width,
        height=height,
        bytes=gif_bytes,
        outputs=outputs,
    )


def _answer_format_failure(request: PleaseCreateGif, failed: Failure) -> None:
    """A did-fail-create-gif naming the format that could not be made (its did-create-gif goes out
    with the others); the request as it came, for sending again."""
    answer = failure(WORKER.action, failed.error, request.to_dict(), extras=request.extras, **request.run()).replace(
        format=failed.format
    )
    redactor = redaction.active()
    answer = answer.replace(error=redactor(answer.error), request=redactor.scrub(answer.request)).checked()
    telemetry.failed(type(failed.error).__name__)
    send_to_mediator(answer)
    logger.error(
        f"create-gif could not make its {failed.format}: {answer.error}",
        extra={"action": WORKER.action, "format": failed.format, "error_type": type(failed.error).__name__},
    )


WORKER = Worker("create-gif", PleaseCreateGif, create_gif)
