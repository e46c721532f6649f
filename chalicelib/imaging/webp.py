"""Animated WebP: the GIF's own frames losslessly, or lossy where that is smaller at no lower PSNR.

Lossless: the frames as the GIF has them (one palette, the same indexes), each coded by libwebp's
lossless coder (Pillow's, which carries libwebp): the same pixels, so the same PSNR against the
source frames, in fewer bytes than LZW gives. The container is written here, one libwebp call a
frame: the first frame whole, each later one only the box of what changed, either with what did
not change transparent over the frame before (most of it unchanged: a radar field moving over a
fixed map) or as it is (most of it changed: a whole field drifting).

Lossy (VP8: 4:2:0 chroma) loses sharp coloured edges, so it rarely reaches a GIF's PSNR on a
weather map; a probe on the first frame says whether it can and at what quality, and only then
is the whole animation coded lossy, checked against the GIF's PSNR, and kept if smaller.

Transparency is the GIF's: its transparent index is alpha 0, every other pixel alpha 255. A
frame that turns a pixel transparent replaces its box (a blended frame could only leave it as it
was). Lossy frames carry the same alpha, coded losslessly (libwebp's alpha_quality 100); their
PSNR is over the opaque pixels, and they are kept only if their alpha comes back exact.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from .gif import TRANSPARENT  # the GIF's index of what is transparent in a frame, or unchanged in a delta frame

# libwebp's lossless method and effort (its `quality`): method 1 at 25 codes weather maps 13-22%
# smaller than its fastest (method 0) for about 1.7 times the CPU; more gains little
# (bench/formats_bench.py shows both).
LOSSLESS_METHOD = 1
LOSSLESS_EFFORT = 25
MOSTLY_SAME = 0.5  # the share of a changed box's pixels unchanged from which they go transparent
LOSSY_QUALITIES = (75, 85, 92, 97)  # tried on the first frame, lowest first
LOSSY_METHOD = 4
# dB over the GIF's first-frame PSNR a lossy probe must reach: later frames, coded as changes over
# lossy frames, lose more (on the temperature maps 0.6 dB), and a probe that passes costs a whole
# lossy encode and its check
LOSSY_MARGIN = 1.0


class WebP(NamedTuple):
    data: bytes
    lossless: bool
    quality: int  # the lossy quality, or the lossless effort


def encode_webp(
    colours: np.ndarray,
    indices: Sequence[np.ndarray],
    durations: Sequence[int],
    loop: int = 0,
    *,
    sources: Sequence[Image.Image] | None = None,
) -> WebP:
    """An animated WebP of frames given as indexes into `colours` (the GIF's; TRANSPARENT, 255, for
    a transparent pixel), each shown for its duration (ms). With the `sources` (the frames the GIF
    was made of, as gif.conform gives them: RGB, or RGBA with alpha 0 or 255), lossy is tried too
    and chosen where it is smaller and keeps at least the GIF's PSNR against them (over their
    opaque pixels) and exactly their alpha."""
    lossless = encode_lossless(colours, indices, durations, loop)
    if sources is None:
        return lossless
    quality = lossy_quality(colours, indices[0], sources[0], len(lossless.data) / len(indices))
    if quality is None:
        return lossless
    lossy = encode_lossy(sources, durations, loop, quality)
    if len(lossy) >= len(lossless.data):
        return lossless
    if sources[0].mode == "RGBA":
        back = decode(lossy, "RGBA")
        if not all(np.array_equal(np.asarray(b)[..., 3], np.asarray(s)[..., 3]) for b, s in zip(back, sources)):
            return lossless
    else:
        back = decode(lossy)
    if mean_psnr(back, sources) < gif_psnr(colours, indices, sources):
        return lossless
    return WebP(lossy, False, quality)


def encode_lossless(colours: np.ndarray, indices: Sequence[np.ndarray], durations: Sequence[int], loop: int) -> WebP:
    height, width = indices[0].shape
    rgba = np.zeros((256, 4), np.uint8)  # index 255 (never a GIF colour): transparent, or unchanged
    rgba[: len(colours), :3] = colours
    rgba[: len(colours), 3] = 255
    frames = []
    alpha = False
    previous: np.ndarray | None = None
    for number, current in enumerate(indices):
        if previous is None:
            box, shown, blend = (0, 0, width, height), current, False
        else:
            box, shown, blend = _delta(current, previous)
        left, top, right, bottom = box
        inside = shown[top:bottom, left:right]
        part = rgba[inside]
        if blend or (inside == TRANSPARENT).any():
            image = Image.fromarray(part, "RGBA")
        else:
            image = Image.fromarray(np.ascontiguousarray(part[..., :3]), "RGB")
        chunks = _still(image, lossless=True, quality=LOSSLESS_EFFORT, method=LOSSLESS_METHOD)
        frames.append(_frame(box, durations[number], blend, chunks))
        alpha |= image.mode == "RGBA"
        previous = current
    return WebP(_container(width, height, frames, loop, alpha), True, LOSSLESS_EFFORT)


def _delta(current: np.ndarray, previous: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray, bool]:
    """The box of what changed (its left and top even: a frame's offset is in steps of 2), the
    pixels to show in it, and whether they are blended over the frame before (unchanged ones
    transparent) or replace it (as they must where a pixel turns transparent)."""
    same = current == previous
    rows, columns = np.flatnonzero(~same.all(axis=1)), np.flatnonzero(~same.all(axis=0))
    if not len(rows):  # nothing changed: one transparent pixel's frame
        return (0, 0, 1, 1), np.full((1, 1), TRANSPARENT, np.uint8), True
    box = (int(columns[0]) & ~1, int(rows[0]) & ~1, int(columns[-1]) + 1, int(rows[-1]) + 1)
    left, top, right, bottom = box
    if np.count_nonzero(same[top:bottom, left:right]) >= MOSTLY_SAME * (right - left) * (bottom - top):
        inside, before = current[top:bottom, left:right], previous[top:bottom, left:right]
        if not ((inside == TRANSPARENT) & (before != TRANSPARENT)).any():
            return box, np.where(same, np.uint8(TRANSPARENT), current), True
    return box, current, False


def encode_lossy(frames: Sequence[Image.Image], durations: Sequence[int], loop: int, quality: int) -> bytes:
    """libwebp's animation encoder, lossy (it finds each frame's changed box itself)."""
    out = io.BytesIO()
    frames[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=list(frames[1:]),
        duration=list(durations),
        loop=loop,
        quality=quality,
        method=LOSSY_METHOD,
    )
    return out.getvalue()


def lossy_quality(
    colours: np.ndarray, indices: np.ndarray, source: Image.Image, lossless_per_frame: float
) -> int | None:
    """The lowest lossy quality whose first frame keeps the GIF's PSNR (with a margin) in fewer
    bytes than a lossless frame takes on average; None when none does."""
    target = gif_psnr(colours, [indices], [source]) + LOSSY_MARGIN
    for quality in LOSSY_QUALITIES:
        data = io.BytesIO()
        source.save(data, "WEBP", quality=quality, method=LOSSY_METHOD)
        if len(data.getvalue()) >= lossless_per_frame:
            return None  # higher qualities are larger still
        if mean_psnr(decode(data.getvalue(), source.mode), [source]) >= target:
            return quality
    return None


def gif_psnr(colours: np.ndarray, indices: Sequence[np.ndarray], sources: Sequence[Image.Image]) -> float:
    """The GIF's mean PSNR against the sources (RGBA ones: over their opaque pixels)."""
    if sources[0].mode != "RGBA":
        return float(np.mean([psnr(colours[i], np.asarray(s)) for i, s in zip(indices, sources)]))
    table = np.zeros((256, 3), np.uint8)
    table[: len(colours)] = colours
    return float(np.mean([psnr(table[i], *_opaque(s)) for i, s in zip(indices, sources)]))


def mean_psnr(frames: Sequence[Image.Image], sources: Sequence[Image.Image]) -> float:
    """Frames' mean PSNR against the sources (RGBA ones: over their opaque pixels)."""
    if sources[0].mode != "RGBA":
        return float(np.mean([psnr(np.asarray(f), np.asarray(s)) for f, s in zip(frames, sources)]))
    return float(np.mean([psnr(np.asarray(f)[..., :3], *_opaque(s)) for f, s in zip(frames, sources)]))


def _opaque(source: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.asarray(source)
    return pixels[..., :3], pixels[..., 3] == 255


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR of a against b, over the pixels `where` marks when given (99 when it marks none)."""
    if where is not None:
        a, b = a[where], b[where]
        if not a.size:
            return 99.0
    error = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if error == 0 else 10 * float(np.log10(255**2 / error))


def decode(data: bytes, mode: str = "RGB") -> list[Image.Image]:
    """Every frame of a WebP, composed as shown, in RGB (or `mode`)."""
    image = Image.open(io.BytesIO(data))
    frames = []
    for number in range(getattr(image, "n_frames", 1)):
        image.seek(number)
        frames.append(image.convert(mode))
    return frames


# The container (RIFF: VP8X, ANIM, then an ANMF chunk a frame) ---------------------------------


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


def _still(image: Image.Image, **options: object) -> bytes:
    """The image chunks (VP8L; or ALPH and VP8) of one WebP image as libwebp codes it."""
    out = io.BytesIO()
    image.save(out, "WEBP", **options)
    data, at, chunks = out.getvalue(), 12, b""
    while at + 8 <= len(data):
        tag, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if tag != b"VP8X":
            chunks += data[at : at + 8 + size + (size & 1)]
        at += 8 + size + (size & 1)
    return chunks


def _frame(box: tuple[int, int, int, int], duration: int, blend: bool, chunks: bytes) -> bytes:
    """One ANMF chunk: where its box is, how long it shows, how it covers the frame before."""
    left, top, right, bottom = box
    head = b"".join(
        value.to_bytes(3, "little") for value in (left // 2, top // 2, right - left - 1, bottom - top - 1, duration)
    )
    flags = 0 if blend else 0b10  # disposal: none; blending: alpha-blend, or replace the box
    return _chunk(b"ANMF", head + bytes([flags]) + chunks)


def _container(width: int, height: int, frames: list[bytes], loop: int, alpha: bool) -> bytes:
    flags = 0b10 | (0b10000 if alpha else 0)  # animation; alpha where a frame has any
    vp8x = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + _chunk(b"VP8X", vp8x) + _chunk(b"ANIM", struct.pack("<IH", 0xFFFFFFFF, loop)) + b"".join(frames)
    return b"RIFF" + struct.pack("<I", len(body)) + body
