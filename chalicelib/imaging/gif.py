"""Animated GIFs with one global palette and no dithering.

The palette is fitted to the colours of all frames: boxes of their histogram split in two
(the box with the largest squared error, where the halves keep the least), until there
are 255, refined by weighted k-means, which is what PSNR measures. The histogram is
exact while the frames have at most 2,048 colours between them; past that (smooth
gradients, blended overlays) it counts an eighth of the pixels in bins of 6 bits a
channel, each bin standing at the mean of the colours that fell in it. Every distinct
colour is then mapped to its nearest entry once, through a lookup over packed RGB filled
as colours are met. One palette for all frames means no flicker and small deltas; no
dithering keeps flat areas flat, which keeps both the error and the LZW output small.
Index 255 is left free to mark runs of pixels each frame after the first leaves
unchanged: transparent, over the frame before.

Frames with transparency (a pixel of alpha below 128: a transparent overlay, such as a WMS
radar layer, with no basemap under it) keep it: the palette is fitted to the opaque pixels
alone, and index 255 marks the transparent ones too, in every frame. A delta frame can only
leave a pixel as it was, so a frame after which some pixel turns transparent is cleared once
shown (disposal 2, restore to background: transparent in browsers and Pillow; the screen's
background index is 255 too), its box grown to cover those pixels, and the next frame draws
what is opaque in that box anew. Frames without transparency are written as they always were.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator, Sequence

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS: a second thread only spins on Lambda's share
import numpy as np  # noqa: E402
from PIL import Image, ImageFile  # noqa: E402

from .resample import lanczos  # noqa: E402

PALETTE_SIZE = 255
TRANSPARENT = 255  # the 256th index marks pixels a delta frame leaves unchanged
KMEANS_ROUNDS = 8
EXACT_COLOURS = 2048  # the frames' colours up to which the histogram is exact
BITS = 6  # otherwise, its bins: bits a channel
RUN = 8  # unchanged pixels a delta frame makes transparent together, when most pixels change
MOSTLY_SAME = 0.65  # the share of unchanged pixels above which each one is made transparent
SAMPLE_FROM = 250_000  # pixels a frame from which an eighth of them is enough for the histogram
_CHUNK = 8192


def encode_gif(
    frames: list[Image.Image],
    *,
    delay: int = 250,
    loop: int = 0,
    last_delay: int | None = None,
) -> bytes:
    """Frames (any mode and size; scaled to the first's size) to GIF bytes.

    Takes the frames over: the list is emptied, and each full-colour frame is let go as soon
    as it is written, so 48 frames fit well within a Lambda's memory.
    """
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    conformed = conform(frames)
    frames.clear()
    colours = fit_palette(conformed)
    size, transparent = conformed[0].size, has_transparency(conformed)
    return write_gif(
        colours,
        indexed(conformed, colours, release=True),
        size,
        delays(len(conformed), delay, last_delay),
        loop,
        transparent=transparent,
    )


def delays(count: int, delay: int, last_delay: int | None = None) -> list[int]:
    """Each frame's time on screen (ms): `delay`, the last one's `last_delay` when given."""
    return [delay] * (count - 1) + [last_delay if last_delay is not None else delay]


def indexed(frames: list[Image.Image], colours: np.ndarray, *, release: bool = False) -> Iterator[np.ndarray]:
    """Each frame (as conform gives them) as indexes into `colours` (uint8, height x width), its
    transparent pixels TRANSPARENT, in order; `release` lets go of each full-colour frame (its
    place in `frames` set to None) once it is mapped."""
    mapper = Mapper(colours)
    for index in range(len(frames)):
        packed = pack(frames[index])
        indices = mapper.indices(packed)
        if frames[index].mode == "RGBA":
            indices[packed == 0] = TRANSPARENT  # (0, 0, 0, 0); opaque pixels pack below 0
        yield indices
        if release:
            frames[index] = None  # type: ignore[call-overload]


def write_gif(
    colours: np.ndarray,
    frames: Iterable[np.ndarray],
    size: tuple[int, int],
    durations: Sequence[int],
    loop: int,
    *,
    transparent: bool = False,
) -> bytes:
    """The GIF of frames given as indexes into `colours` (at most 255 of them), each shown for its
    duration (ms, in steps of 10). With `transparent`, TRANSPARENT in a frame is a pixel shown
    transparent: each frame is compared with the canvas it is drawn on (the frame before, less
    what was cleared after it), and one after which a pixel turns transparent is cleared once shown."""
    width, height = size
    out = io.BytesIO()
    _header(out, width, height, _full(colours), loop, TRANSPARENT if transparent else 0)
    canvas = None  # what the frame is drawn over: TRANSPARENT where nothing shows
    pairs = _with_next(frames) if transparent else ((indices, None) for indices in frames)
    for index, (indices, following) in enumerate(pairs):
        cleared = None if following is None else turning_transparent(indices, following)
        if canvas is None:
            shown, box = indices, (0, 0, width, height)
        else:  # a delta frame: what did not change shows the canvas
            shown, box = unchanged_runs(indices, canvas, cleared)
        _frame(out, shown, box, durations[index], 1 if cleared is None else 2)
        canvas = indices
        if cleared is not None:  # restored to background (transparent) once shown
            left, top, right, bottom = box
            canvas = indices.copy()
            canvas[top:bottom, left:right] = TRANSPARENT
    out.write(b";")
    return out.getvalue()


def _with_next(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Each frame with the one after it (None after the last): a frame's disposal depends on it."""
    previous = None
    for indices in frames:
        if previous is not None:
            yield previous, indices
        previous = indices
    if previous is not None:
        yield previous, None


def turning_transparent(indices: np.ndarray, following: np.ndarray) -> np.ndarray | None:
    """The pixels opaque in a frame and transparent in the one after it, or None when there are
    none: drawing over the frame could only leave them as they are."""
    turning = (following == TRANSPARENT) & (indices != TRANSPARENT)
    return turning if turning.any() else None


def _header(out: io.BytesIO, width: int, height: int, table: np.ndarray, loop: int, background: int) -> None:
    """GIF89a, the screen with its global table of 256 colours and background index, and how
    often to play."""
    out.write(b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, background, 0) + table.tobytes())
    out.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00")


def _frame(out: io.BytesIO, shown: np.ndarray, box: tuple[int, int, int, int], delay: int, disposal: int) -> None:
    """One frame: drawn over the canvas, TRANSPARENT showing it through, then the part of `shown`
    in `box`, LZW-coded by Pillow's encoder, on the global table; once shown, left as it is
    (disposal 1) or its box restored to background (disposal 2)."""
    left, top, right, bottom = box
    gce = b"\x21\xf9\x04" + bytes([disposal << 2 | 1])
    out.write(gce + struct.pack("<H", delay // 10) + bytes([TRANSPARENT]) + b"\x00")
    out.write(b"\x2c" + struct.pack("<HHHHB", left, top, right - left, bottom - top, 0) + b"\x08")
    part = Image.fromarray(np.ascontiguousarray(shown[top:bottom, left:right]), "P")
    ImageFile._save(part, out, [ImageFile._Tile("gif", (0, 0, *part.size), 0, "P")])
    out.write(b"\x00")


def unchanged_runs(
    indices: np.ndarray, previous: np.ndarray, cover: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A delta frame: the pixels that did not change, transparent, and the box around those that
    did (and the pixels `cover` marks: the ones this frame's disposal is to clear). Where most
    change (a smooth field drifting), only aligned runs of RUN of them: a lone transparent pixel
    in a changing gradient breaks the strings LZW finds in the rows around it (4-6% fewer bytes
    on such maps; on a radar map, where most pixels stay, every one of them is worth a
    transparent index)."""
    same = indices == previous
    outside = same if cover is None else same & ~cover
    rows, columns = np.flatnonzero(~outside.all(axis=1)), np.flatnonzero(~outside.all(axis=0))
    if not len(rows):  # nothing changed: one transparent pixel
        return np.full((1, 1), TRANSPARENT, np.uint8), (0, 0, 1, 1)
    box = (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)
    if np.count_nonzero(same) >= MOSTLY_SAME * same.size:
        return np.where(same, np.uint8(TRANSPARENT), indices), box
    shown = indices.copy()
    height, width = indices.shape
    whole = width - width % RUN
    runs = same[:, :whole].reshape(height, -1, RUN).all(axis=2)
    shown[:, :whole][np.repeat(runs, RUN, axis=1)] = TRANSPARENT
    return shown, box


def conform(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """RGB frames, all of the first frame's size; RGBA ones when a frame has a pixel of alpha below
    128 (see transparent_pixels), each pixel then either opaque (alpha 255, its colour as RGB) or
    (0, 0, 0, 0)."""
    size = frames[0].size
    if any(transparent_pixels(frame) for frame in frames):
        return [_opaque_or_clear(frame, size) for frame in frames]
    out = []
    for frame in frames:
        if frame.mode == "LA":  # Pillow's LA to RGB leaves the alpha in the byte pack reads as X
            frame = frame.convert("RGBA")
        if frame.mode != "RGB":
            frame = frame.convert("RGB")
        if frame.size != size:
            frame = lanczos(frame, size)
        out.append(frame)
    return out


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")


def transparent_pixels(frame: Image.Image) -> bool:
    """Whether a pixel of the frame has alpha below 128: its own, or its palette entry's or colour
    key's (P with an RGBA palette or "transparency", L and RGB with "transparency")."""
    if frame.mode in ALPHA_MODES:
        return _least(frame.getchannel(len(frame.getbands()) - 1)) < 128  # alpha: the last band
    if frame.mode in ("P", "L", "RGB") and frame.has_transparency_data:
        return _least(frame.convert("RGBA").getchannel("A")) < 128
    return False


def _least(band: Image.Image) -> float:
    low = band.getextrema()[0]  # one band: (low, high)
    assert isinstance(low, (int, float))
    return low


def has_transparency(frames: Sequence[Image.Image]) -> bool:
    """Whether frames as conform gives them have transparent pixels (then they all are RGBA)."""
    return frames[0].mode == "RGBA"


def _opaque_or_clear(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The frame in RGBA of `size` (resized premultiplied), alpha below 128 made (0, 0, 0, 0) and
    the rest opaque."""
    rgba = frame if frame.mode == "RGBA" else frame.convert("RGBA")
    if rgba.size != size:
        rgba = lanczos(rgba, size)
    pixels = np.frombuffer(rgba.tobytes(), "<u4")  # r | g << 8 | b << 16 | a << 24
    kept = np.where(pixels >= np.uint32(128 << 24), pixels | np.uint32(0xFF000000), np.uint32(0))
    return Image.frombytes("RGBA", size, kept.tobytes())


def fit_palette(frames: Sequence[Image.Image], size: int = PALETTE_SIZE) -> np.ndarray:
    """Up to `size` distinct colours (uint8, n x 3) for the frames' opaque pixels: every colour when
    there are no more (as the histogram saw them), else split boxes refined by k-means; black
    alone when no pixel is opaque."""
    points, weights = colour_histogram(frames)
    if not len(points):
        return np.zeros((1, 3), np.uint8)
    if len(points) > size:
        points = _kmeans(points, weights, _split_boxes(points, weights, size))
    return np.unique(np.clip(np.rint(points), 0, 255).astype(np.uint8), axis=0)


def colour_histogram(frames: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """(points, weights): the frames' colours (float32, n x 3) and their pixel counts; exact
    when they have at most EXACT_COLOURS between them (Pillow counts a frame's, and stops early
    past that), else binned."""
    exact = _exact_histogram(frames)
    return exact if exact is not None else _binned_histogram(frames)


def _exact_histogram(frames: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray] | None:
    """None when the frames have more than EXACT_COLOURS between them, known early: the first
    and the last frame alone have three quarters of that."""
    first, last = _colours(frames[0]), _colours(frames[-1])
    if first is None or last is None or len(np.union1d(first[0], last[0])) > EXACT_COLOURS * 3 // 4:
        return None
    packed, counts = [first[0]], [first[1]]
    for frame in frames[1:]:
        found = _colours(frame)
        if found is None:
            return None
        packed.append(found[0])
        counts.append(found[1])
    colours, inverse = np.unique(np.concatenate(packed), return_inverse=True)
    if len(colours) > EXACT_COLOURS:
        return None
    weights = np.bincount(inverse.reshape(-1), weights=np.concatenate(counts), minlength=len(colours))
    return unpack(colours).astype(np.float32), weights


def _colours(frame: Image.Image) -> tuple[np.ndarray, np.ndarray] | None:
    """A frame's colours (packed) and their pixel counts, of its opaque pixels; None past
    EXACT_COLOURS."""
    clear = frame.mode == "RGBA"  # (0, 0, 0, 0) is one more, not counted
    found = frame.getcolors(EXACT_COLOURS + clear)
    if found is None:
        return None
    counts, colours = zip(*found)
    if clear:
        rgba = np.array(colours, np.uint32).reshape(-1, 4)
        opaque = rgba[:, 3] == 255
        if np.count_nonzero(opaque) > EXACT_COLOURS:
            return None
        rgb, weights = rgba[opaque, :3], np.array(counts, np.float64)[opaque]
        return rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16), weights
    rgb = np.array(colours, np.uint32).reshape(-1, 3)
    return rgb[:, 0] | (rgb[:, 1] << 8) | (rgb[:, 2] << 16), np.array(counts, np.float64)


def _binned_histogram(frames: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """Each occupied bin of BITS a channel, and how many pixels fell in it, over an eighth of the
    pixels of every frame (a large one), opaque ones only; the bin at the mean of its colours, over
    half of those (a bin too rare to be in that half, at its centre). Counted 8 frames at a time,
    so the samples of 48 frames never sit in memory together."""
    width, height = frames[0].size
    drop, mask, size = 8 - BITS, (1 << BITS) - 1, 1 << 3 * BITS
    counts, seen, sums = np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros((3, size))
    for start in range(0, len(frames), 8):
        group = frames[start : start + 8]
        if width * height >= SAMPLE_FROM:  # each frame at another of eight phases: grid lines are met
            group = [_eighth(frame, index % 2, index // 2 % 4) for index, frame in enumerate(group, start)]
        sample = np.concatenate([pack(frame).ravel() for frame in group])
        if group[0].mode == "RGBA":
            sample = sample[sample < 0]  # transparent pixels pack as 0
        bins = ((sample >> drop) & mask) | ((sample >> (8 + drop - BITS)) & (mask << BITS))
        bins |= (sample >> (16 + drop - 2 * BITS)) & (mask << 2 * BITS)
        counts += np.bincount(bins, minlength=size)
        half, half_bins = sample[::2], bins[::2]
        seen += np.bincount(half_bins, minlength=size)
        for channel, shift in enumerate((0, 8, 16)):
            sums[channel] += np.bincount(half_bins, weights=(half >> shift) & 255, minlength=size)
    occupied = np.flatnonzero(counts)
    centres = np.stack([(occupied >> (BITS * c)) & mask for c in range(3)], axis=1) * (1 << drop) + (1 << drop) / 2
    taken = seen[occupied]
    means = np.where(taken[:, None] > 0, sums[:, occupied].T / np.maximum(taken, 1)[:, None], centres)
    return means.astype(np.float32), counts[occupied].astype(np.float64)


def _eighth(frame: Image.Image, x: int, y: int) -> Image.Image:
    """The pixels of `frame` in every other column from x + 1, every fourth row from y + 2."""
    width, height = frame.size
    return frame.crop((x, y, width, height)).resize(((width - x) // 2, (height - y) // 4), Image.Resampling.NEAREST)


def _split_boxes(points: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """`size` weighted means of boxes of points: the box of the largest squared error split in two
    along its widest axis, where the halves keep the least squared error (Wu's criterion: on
    weather maps 0.2 to 1.2 dB better than a cut at the median), until there are `size`."""
    boxes: list[np.ndarray] = [np.arange(len(points))]
    errors = [_box_error(points, weights, boxes[0])]
    while len(boxes) < size:
        worst = int(np.argmax(errors))
        if errors[worst] <= 0:
            break
        box = boxes[worst]
        low, high = _best_split(points[box], weights[box])
        low, high = box[low], box[high]
        boxes[worst], errors[worst] = low, _box_error(points, weights, low)
        boxes.append(high)
        errors.append(_box_error(points, weights, high))
    return np.array([weights[box] @ points[box] / weights[box].sum() for box in boxes], np.float32)


def _best_split(inside: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two parts (indexes into `inside`) of the split along the axis of the widest spread
    that leaves the least squared error, from running sums along that axis's order."""
    mean = w @ inside / w.sum()
    order = np.argsort(inside[:, int(np.argmax(w @ (inside - mean) ** 2))], kind="stable")
    running_w = np.cumsum(w[order])
    running_x = np.cumsum(w[order, None] * inside[order], axis=0)
    running_xx = np.cumsum(w[order] * (inside[order] ** 2).sum(axis=1))
    left_w, right_w = running_w[:-1], running_w[-1] - running_w[:-1]
    left = running_xx[:-1] - (running_x[:-1] ** 2).sum(axis=1) / left_w
    right_x = running_x[-1] - running_x[:-1]
    right = (running_xx[-1] - running_xx[:-1]) - (right_x**2).sum(axis=1) / np.maximum(right_w, 1e-12)
    cut = int(np.argmin(left + right)) + 1
    return order[:cut], order[cut:]


def _box_error(points: np.ndarray, weights: np.ndarray, box: np.ndarray) -> float:
    if len(box) < 2:
        return 0.0
    inside, w = points[box], weights[box]
    return float(w @ ((inside - w @ inside / w.sum()) ** 2).sum(axis=1))


def _kmeans(points: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Weighted Lloyd rounds: each centre moved to the weighted mean of the points nearest it."""
    for _ in range(KMEANS_ROUNDS):
        nearest = _nearest(points, centres)
        totals = np.bincount(nearest, weights=weights, minlength=len(centres))
        sums = np.stack(
            [np.bincount(nearest, weights=points[:, c] * weights, minlength=len(centres)) for c in range(3)], axis=1
        )
        used = totals > 0
        moved = centres.copy()
        moved[used] = sums[used] / totals[used, None]
        if np.allclose(moved, centres, atol=0.05):
            return moved
        centres = moved
    return centres


class Mapper:
    """Each pixel's nearest palette entry, found once a distinct colour: a lookup over packed RGB
    (16 MB, touched only where colours occur), filled as frames bring new colours."""

    def __init__(self, colours: np.ndarray):
        self.colours = colours.astype(np.float32)
        self.lookup = np.full(1 << 24, TRANSPARENT, np.uint8)  # TRANSPARENT: not met yet

    def indices(self, packed: np.ndarray) -> np.ndarray:
        indices = self.lookup[packed]
        unknown = indices == TRANSPARENT
        if unknown.any():
            new = np.unique(packed[unknown])
            self.lookup[new] = _nearest(unpack(new).astype(np.float32), self.colours)
            indices[unknown] = self.lookup[packed[unknown]]
        return indices


def _full(colours: np.ndarray) -> np.ndarray:
    """256 distinct entries (the last transparent), the spare ones unlike any colour used."""
    taken = {tuple(c) for c in colours.tolist()}
    spare = (c for c in ((i, 255 - i, (i * 7) % 256) for i in range(256)) if c not in taken)
    padding = [next(spare) for _ in range(256 - len(colours))]
    return np.concatenate([colours, np.array(padding, np.uint8).reshape(-1, 3)])


def pack(frame: Image.Image) -> np.ndarray:
    """RGB pixels as r | g << 8 | b << 16 - 2**24, one per pixel (int32): Pillow's RGBX with its
    X of 255 read as is, an index from the end of a table of 2**24 (numpy's negative indexing).
    RGBA (as conform gives it): the same for opaque pixels, 0 for transparent ones."""
    raw = frame.tobytes("raw", "RGBA" if frame.mode == "RGBA" else "RGBX")
    return np.frombuffer(raw, "<i4").reshape(frame.height, frame.width)


def unpack(colours: np.ndarray) -> np.ndarray:
    return np.stack([colours & 255, (colours >> 8) & 255, (colours >> 16) & 255], axis=1).astype(np.uint8)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared RGB distance) for each point, in chunks."""
    centre_norms = (centres**2).sum(axis=1)
    out = np.empty(len(points), np.intp)
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        distances = centre_norms[None, :] - 2.0 * (block @ centres.T)
        out[start : start + _CHUNK] = distances.argmin(axis=1)
    return out
