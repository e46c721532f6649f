"""Animated GIFs with one global palette and no dithering.

Weather maps are drawn in a few thousand colours (a basemap, a discrete colour scale,
a legend), so the palette is fitted to the exact colour histogram of all frames:
weighted k-means started from Pillow's octree palette, then every colour mapped to
its nearest palette entry through a lookup table. One palette for all frames means
no flicker between frames and small deltas; no dithering means flat areas stay flat,
which keeps both the error and the LZW output small. Index 255 is left free to mark
the pixels each frame after the first leaves unchanged: transparent, over the frame before.

Frames with too many colours for an exact histogram (photographs) fall back to the
octree palette with Pillow's own mapping.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

PALETTE_SIZE = 255
TRANSPARENT = 255  # the 256th index marks pixels a delta frame leaves unchanged
MAX_EXACT_COLOURS = 1 << 16
KMEANS_ROUNDS = 6
_CHUNK = 8192


class Palette(NamedTuple):
    colours: np.ndarray  # (n, 3) uint8
    lookup: np.ndarray | None  # packed colour -> index, for the exact path


def encode_gif(
    frames: list[Image.Image],
    *,
    delay: int = 250,
    loop: int = 0,
    last_delay: int | None = None,
) -> bytes:
    """Frames (any mode and size; scaled to the first's size) to GIF bytes.

    Takes the frames over: the list is emptied, and each full-colour frame is let go
    as soon as it is indexed, so 48 frames fit well within a Lambda's memory.
    """
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    rgb = conform(frames)
    frames.clear()
    palette = fit_palette(rgb)
    indexed, previous = [], None
    for index in range(len(rgb)):
        frame = apply_palette(rgb[index], palette)
        rgb[index] = None  # type: ignore[call-overload]
        indices = np.asarray(frame)
        if previous is not None:  # a delta frame: what did not change shows the frame before
            frame = Image.fromarray(np.where(indices == previous, np.uint8(TRANSPARENT), indices), "P")
            frame.putpalette(palette.colours.tobytes())
        indexed.append(frame)
        previous = indices
    del palette, rgb, previous
    durations = [delay] * len(indexed)
    if last_delay is not None:
        durations[-1] = last_delay
    buffer = io.BytesIO()
    indexed[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=durations,
        loop=loop,
        optimize=False,  # the transparent deltas are made above: Pillow's own way is a Python loop per pixel
        transparency=TRANSPARENT,  # the reserved index
        disposal=1,  # each frame is drawn over the one before; Pillow crops it to what changed
    )
    return share_global_table(buffer.getvalue())


def conform(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """RGB frames, all of the first frame's size."""
    size = frames[0].size
    out = []
    for frame in frames:
        if frame.mode != "RGB":
            frame = frame.convert("RGB")
        if frame.size != size:
            frame = frame.resize(size, Image.Resampling.LANCZOS)
        out.append(frame)
    return out


def fit_palette(frames: Sequence[Image.Image], size: int = PALETTE_SIZE) -> Palette:
    histogram = colour_histogram(frames)
    if histogram is None:
        return Palette(_full(_octree_palette(frames, size)), None)
    colours, counts = histogram
    rgb = unpack(colours)
    if len(colours) <= size:
        centres, nearest = rgb.astype(np.float32), np.arange(len(colours))
    else:
        centres = _octree_palette(frames, size).astype(np.float32)
        centres, nearest = _kmeans(rgb.astype(np.float32), counts, centres)
    centres, merged = np.unique(np.clip(np.rint(centres), 0, 255).astype(np.uint8), axis=0, return_inverse=True)
    lookup = np.zeros(1 << 24, np.uint8)  # 16 MB, touched only where colours occur
    lookup[colours] = merged.reshape(-1)[nearest]
    return Palette(_full(centres), lookup)


def _full(colours: np.ndarray) -> np.ndarray:
    """256 distinct entries (Pillow maps frames to the table by colour), the last transparent."""
    colours = np.unique(colours[:TRANSPARENT], axis=0)
    taken = {tuple(c) for c in colours.tolist()}
    spare = (c for c in ((i, 255 - i, (i * 7) % 256) for i in range(256)) if c not in taken)
    padding = [next(spare) for _ in range(256 - len(colours))]
    return np.concatenate([colours, np.array(padding, np.uint8).reshape(-1, 3)])


def apply_palette(frame: Image.Image, palette: Palette) -> Image.Image:
    """An RGB frame as a "P" image on `palette`, with no dithering."""
    if palette.lookup is None:
        reference = Image.new("P", (1, 1))
        reference.putpalette(palette.colours[:TRANSPARENT].tobytes())
        indexed = frame.quantize(palette=reference, dither=Image.Dither.NONE)
        indexed.putpalette(palette.colours.tobytes())
        return indexed
    indexed = Image.fromarray(np.take(palette.lookup, pack(frame)), "P")
    indexed.putpalette(palette.colours.tobytes())
    return indexed


def pack(frame: Image.Image) -> np.ndarray:
    """RGB pixels as uint32 r | g << 8 | b << 16, one per pixel."""
    rgbx = np.frombuffer(frame.tobytes("raw", "RGBX"), "<u4").reshape(frame.height, frame.width)
    return rgbx & np.uint32(0x00FFFFFF)


def unpack(colours: np.ndarray) -> np.ndarray:
    return np.stack([colours & 255, (colours >> 8) & 255, (colours >> 16) & 255], axis=1).astype(np.uint8)


def colour_histogram(frames: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray] | None:
    """(packed colours, pixel counts) over all frames, or None past MAX_EXACT_COLOURS."""
    packed_parts, count_parts = [], []
    for frame in frames:
        found = frame.getcolors(MAX_EXACT_COLOURS)
        if found is None:
            return None
        frame_counts, frame_colours = zip(*found)
        rgb = np.array(frame_colours, np.uint32).reshape(-1, 3)
        packed_parts.append(rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16))
        count_parts.append(np.array(frame_counts, np.int64))
    colours, inverse = np.unique(np.concatenate(packed_parts), return_inverse=True)
    if len(colours) > MAX_EXACT_COLOURS:
        return None
    counts = np.bincount(inverse, weights=np.concatenate(count_parts), minlength=len(colours))
    return colours, counts


def _octree_palette(frames: Sequence[Image.Image], size: int) -> np.ndarray:
    """Pillow's fast octree palette of a mosaic of every frame at a third of its size."""
    width, height = frames[0].size
    step = 3 if width >= 96 and height >= 96 else 1
    tile = (max(1, width // step), max(1, height // step))
    mosaic = Image.new("RGB", (tile[0], tile[1] * len(frames)))
    for i, frame in enumerate(frames):
        small = frame.resize(tile, Image.Resampling.NEAREST) if step > 1 else frame
        mosaic.paste(small, (0, tile[1] * i))
    quantized = mosaic.quantize(size, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    used = max(1, len(quantized.getcolors(256) or ()))
    colours = np.asarray((quantized.getpalette() or [])[: 3 * size], np.uint8).reshape(-1, 3)
    return colours[: max(used, 1)]


def _kmeans(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd rounds on integer centres; returns centres and each point's nearest."""
    centres = np.rint(centres)
    nearest = _nearest(points, centres)
    for _ in range(KMEANS_ROUNDS):
        totals = np.bincount(nearest, weights=weights, minlength=len(centres))
        sums = np.stack(
            [np.bincount(nearest, weights=points[:, c] * weights, minlength=len(centres)) for c in range(3)],
            axis=1,
        )
        used = totals > 0
        moved = centres.copy()
        moved[used] = np.rint(sums[used] / totals[used, None])
        if np.array_equal(moved, centres):
            break
        centres = moved
        nearest = _nearest(points, centres)
    return centres, nearest


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared RGB distance) for each point, in chunks."""
    centre_norms = (centres**2).sum(axis=1)
    out = np.empty(len(points), np.intp)
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        distances = centre_norms[None, :] - 2.0 * (block @ centres.T)
        out[start : start + _CHUNK] = distances.argmin(axis=1)
    return out


def share_global_table(data: bytes) -> bytes:
    """Drop each frame's local colour table that repeats the global one.

    Pillow writes a local table on every delta frame unless it is given a palette to
    remap each frame to, which costs more than the rest of the encoding; the frames
    here all use the global table already, so the copies are dropped afterwards.
    """
    if len(data) < 13 or not data[10] & 0x80:
        return data
    table_end = 13 + 3 * (2 << (data[10] & 7))
    global_table = data[13:table_end]
    out = bytearray(data[:table_end])
    position = table_end
    while position < len(data):
        introducer = data[position]
        if introducer == 0x2C:  # image descriptor: 10 bytes, maybe a table, then LZW data
            flags = data[position + 9]
            local_end = position + 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
            if flags & 0x80 and data[position + 10 : local_end] == global_table:
                out += data[position : position + 9] + bytes([flags & ~0x87 & 0xFF])
            else:
                out += data[position:local_end]
            position = _copy_sub_blocks(data, local_end + 1, out, data[local_end : local_end + 1])
        elif introducer == 0x21:  # extension: label, then sub-blocks
            position = _copy_sub_blocks(data, position + 2, out, data[position : position + 2])
        else:  # trailer
            out += data[position:]
            break
    return bytes(out)


def _copy_sub_blocks(data: bytes, position: int, out: bytearray, head: bytes) -> int:
    start = position
    while data[position]:
        position += data[position] + 1
    out += head + data[start : position + 1]
    return position + 1
