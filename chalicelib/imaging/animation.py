"""One animation's frames in each format asked for: GIF always, and animated WebP and H.264 MP4.

The GIF is what email clients play; WebP and MP4 are for pages and apps, a fraction of its
bytes. All come from the same frames: the MP4 from the frames as they are, the WebP from the
GIF's own (its palette and indexes: the same pixels, losslessly, or lossy where that is
smaller at no lower PSNR). Frames with transparency keep it where the GIF has it (alpha below
128 transparent, the rest opaque): in the GIF and the WebP; the MP4, which has no alpha, shows
them over a neutral grey (mp4.GROUND). A format other than the GIF that fails is reported as
failed, the others are made; the GIF failing fails all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, get_args

from PIL import Image

from . import gif as gifs

Format = Literal["gif", "webp", "mp4"]
FORMATS: tuple[Format, ...] = get_args(Format)


class Output(NamedTuple):
    format: Format
    data: bytes
    width: int
    height: int


class Failure(NamedTuple):
    format: Format
    error: Exception


class Encoded(NamedTuple):
    outputs: list[Output]  # in the order asked for, the GIF first
    failures: list[Failure]


def encode_animation(
    frames: list[Image.Image],
    formats: Sequence[Format] = ("gif",),
    *,
    delay: int = 250,
    last_delay: int | None = None,
    loop: int = 0,
) -> Encoded:
    """The GIF of the frames (any mode and size; scaled to the first's size) and each other format
    in `formats`. Takes the frames over, as encode_gif does. Raises what the GIF raised; an error
    of another format is its Failure."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    wanted = [f for f in dict.fromkeys(formats) if f in FORMATS and f != "gif"]
    if not wanted:
        width, height = frames[0].size
        return Encoded(
            [Output("gif", gifs.encode_gif(frames, delay=delay, loop=loop, last_delay=last_delay), width, height)], []
        )
    conformed = gifs.conform(frames)  # RGB, or RGBA with alpha 0 or 255
    frames.clear()
    width, height = conformed[0].size
    durations = gifs.delays(len(conformed), delay, last_delay)
    outputs: list[Output] = []
    failures: list[Failure] = []
    extra: dict[str, Output] = {}
    if "mp4" in wanted:  # first: from the frames as they are, before they are let go
        try:
            from .mp4 import encode_mp4, even_size

            extra["mp4"] = Output("mp4", encode_mp4(conformed, durations), *even_size(width, height))
        except Exception as error:
            failures.append(Failure("mp4", error))
    colours = gifs.fit_palette(conformed)
    indices = list(gifs.indexed(conformed, colours))
    gif = gifs.write_gif(
        colours, indices, (width, height), durations, loop, transparent=gifs.has_transparency(conformed)
    )
    outputs.append(Output("gif", gif, width, height))
    if "webp" in wanted:
        try:
            from .webp import encode_webp

            webp = encode_webp(colours, indices, durations, loop, sources=conformed)
            extra["webp"] = Output("webp", webp.data, width, height)
        except Exception as error:
            failures.append(Failure("webp", error))
    conformed.clear()
    outputs += [extra[f] for f in wanted if f in extra]
    return Encoded(outputs, failures)
