"""Thumbnails: cover (crop to exactly WxH) or contain (fit inside WxH).

Fast on big JPEGs: the decoder is asked for the smallest DCT scale (1/2, 1/4, 1/8)
that still covers 1.5 times the target, so a 4000x3000 photo never exists in memory at full
size, and the final Lanczos resize has room to undo what a DCT-domain reduction alone aliases
(at exactly the target, a 24 MP photo lost up to 4.5 dB against a full decode).

Faithful colours: the source's ICC profile (Display P3, Adobe RGB...) goes into the
thumbnail, JPEG or PNG, byte for byte (see decode.to_8bit_keeping_colour). No other
metadata does: EXIF orientation is applied to the pixels.
"""

from __future__ import annotations

import io
import math
from typing import Literal, NamedTuple

from PIL import Image, ImageOps

from ..errors import ImageError
from .decode import (
    has_alpha,
    icc_profile,
    load,
    open_image,
    png_rgb_pixels_at,
    png_rgb_strips,
    profile_fits,
    to_8bit_keeping_colour,
)
from .resample import lanczos, reduction, safe_box

Mode = Literal["cover", "contain"]
Format = Literal["auto", "jpeg", "png"]

JPEG_QUALITY = 85
# Huffman tables made for the image: 2-4% smaller at 400 px and under for a millisecond; at
# 1600 px 0.6% for 12 ms of CPU (half the encode), so only up to this many pixels.
OPTIMIZE_PIXELS = 1_000_000
DRAFT_MARGIN = 1.5  # the decoder's reduction leaves this much more than the target to resize: its own aliases
DRAFT_FLOOR = 0.9  # else it may leave as little as this of the target (resized up that little)
REDUCING_GAP = 3.0  # a box reduction first, by a whole factor that leaves this much for the Lanczos resize
STRIP_BYTES = 1 << 20  # a PNG's rows are decoded and reduced about this many bytes at a time
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112


class Thumbnail(NamedTuple):
    data: bytes
    width: int
    height: int
    format: str  # "jpeg" or "png"

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else "png"


def make_thumbnail(
    data: bytes,
    width: int,
    height: int,
    *,
    mode: Mode = "cover",
    fmt: Format = "auto",
    max_pixels: int,
) -> Thumbnail:
    image = open_image(data, max_pixels)
    pixels_at = png_rgb_pixels_at(image, data)
    # (a PNG's own getexif decodes it, to look for EXIF after the pixels: there is none here)
    if pixels_at is not None and Image.Image.getexif(image).get(_EXIF_ORIENTATION, 1) == 1:
        profile = icc_profile(image)
        resized = _resize_png_strips(data, pixels_at, image.size, width, height, mode)
        return _encode(resized, fmt, profile if profile_fits(profile, "RGB") else None)
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)  # a PNG's decodes it
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"input could not be decoded: {exc}") from None
    swap = orientation in _SWAPPING_ORIENTATIONS
    upright = (image.height, image.width) if swap else image.size
    scale = _scale(upright, (width, height), mode)
    if image.format == "JPEG" and scale < 1:
        image.draft(None, _draft_request(upright, scale, swap))
    image = load(image)
    profile = icc_profile(image)
    image = ImageOps.exif_transpose(image) if orientation != 1 else image
    if image.mode == "CMYK" and profile_fits(profile, "CMYK"):
        # converted through its profile once resized: littlecms's cost is per pixel
        resized, profile = to_8bit_keeping_colour(_resize(image, width, height, mode), profile)
    else:
        image, profile = to_8bit_keeping_colour(image, profile)
        resized = _resize(image, width, height, mode)
    return _encode(resized, fmt, profile)


def _draft_request(upright: tuple[int, int], scale: float, swap: bool) -> tuple[int, int]:
    """The size to ask a JPEG decoder for: DRAFT_MARGIN times the target, where that allows
    a reduction; else DRAFT_FLOOR of the target, which allows 1/2 where the source is 1.8 to 3
    times the target (a 1/2 DCT reduction aliases little: 0.02 dB from the full decode's at 2x,
    and resizing its last few per cent up costs less than 0.1 dB, measured)."""
    need = (math.ceil(upright[0] * scale * DRAFT_MARGIN), math.ceil(upright[1] * scale * DRAFT_MARGIN))
    if upright[0] // need[0] < 2 or upright[1] // need[1] < 2:
        need = (math.ceil(upright[0] * scale * DRAFT_FLOOR), math.ceil(upright[1] * scale * DRAFT_FLOOR))
    return (need[1], need[0]) if swap else need


def _scale(size: tuple[int, int], target: tuple[int, int], mode: Mode) -> float:
    ratios = (target[0] / size[0], target[1] / size[1])
    return max(ratios) if mode == "cover" else min(ratios)


def _geometry(
    src: tuple[int, int], width: int, height: int, mode: Mode
) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """The thumbnail's size, and the box of the source that it shows."""
    src_w, src_h = src
    if mode == "contain":
        scale = _scale(src, (width, height), mode)
        size = (max(1, min(width, round(src_w * scale))), max(1, min(height, round(src_h * scale))))
        return size, (0.0, 0.0, float(src_w), float(src_h))
    if src_w * height > src_h * width:  # wider than the target: trim the sides
        crop_w = src_h * width / height
        return (width, height), ((src_w - crop_w) / 2, 0.0, (src_w + crop_w) / 2, float(src_h))
    crop_h = src_w * height / width
    return (width, height), (0.0, (src_h - crop_h) / 2, float(src_w), (src_h + crop_h) / 2)


def _resize(image: Image.Image, width: int, height: int, mode: Mode) -> Image.Image:
    size, box = _geometry(image.size, width, height, mode)
    if size == image.size and box == (0.0, 0.0, float(image.width), float(image.height)):
        return image
    return lanczos(image, size, box, reducing_gap=_reducing_gap(box, size))


def _reducing_gap(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    """REDUCING_GAP; where the box is 2 to 3 times the target, a gap that reduces it by 2 first (as a
    JPEG's decoder does at 1/2: the box reduction aliases little there, and Lanczos then works on a
    quarter of the pixels)."""
    ratio = min((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])
    return max(1.0, ratio / 2 * 0.999) if 2 <= ratio < REDUCING_GAP else REDUCING_GAP


def _resize_png_strips(
    data: bytes, pixels_at: int, src: tuple[int, int], width: int, height: int, mode: Mode
) -> Image.Image:
    """What _resize makes of the whole decoded PNG, made a strip of rows at a time: each
    strip's part of the box (and the Lanczos filter's reach around it) reduced as
    Image.resize's reducing_gap would reduce it (and by 2 where the box is 1.8 to 2 times the
    target, as a JPEG's decoder is asked to: see _draft_request), the reductions put together,
    then resized."""
    size, box = _geometry(src, width, height, mode)
    factor_x, factor_y = reduction(box, size, _reducing_gap(box, size))
    if 2 * DRAFT_FLOOR <= min((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]) < 2:
        factor_x = factor_y = 2  # as a JPEG's decoder reduces by 2 there: its last few per cent resized up
    left, top, right, bottom = safe_box(src, size, box)
    reduced = Image.new("RGB", (-(-(right - left) // factor_x), -(-(bottom - top) // factor_y)))
    rows = factor_y * max(1, STRIP_BYTES // (src[0] * 4 * factor_y))
    for y, strip in png_rgb_strips(data, pixels_at, src, top, bottom, rows):
        part = (left, 0, right, strip.height)
        if (factor_x, factor_y) == (1, 1):
            reduced.paste(strip.crop(part), (0, y - top))
        else:
            reduced.paste(strip.reduce((factor_x, factor_y), part), (0, (y - top) // factor_y))
    inner = (
        (box[0] - left) / factor_x,
        (box[1] - top) / factor_y,
        (box[2] - left) / factor_x,
        (box[3] - top) / factor_y,
    )
    if size == reduced.size and inner == (0.0, 0.0, float(reduced.width), float(reduced.height)):
        return reduced
    return lanczos(reduced, size, inner)


def _encode(image: Image.Image, fmt: Format, profile: bytes | None) -> Thumbnail:
    out_format = fmt if fmt != "auto" else ("png" if has_alpha(image) else "jpeg")
    if out_format == "jpeg" and has_alpha(image):
        image = _flatten(image)
    # Always named: PNG would otherwise write whatever profile image.info still holds.
    icc = profile if profile_fits(profile, image.mode) else None
    buffer = io.BytesIO()
    if out_format == "jpeg":
        optimize = image.width * image.height <= OPTIMIZE_PIXELS
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=optimize, icc_profile=icc)
    else:
        image.save(buffer, "PNG", compress_level=6, icc_profile=icc)
    return Thumbnail(buffer.getvalue(), image.width, image.height, out_format)


def _flatten(image: Image.Image) -> Image.Image:
    """Alpha over white, for a JPEG of a transparent source; grey stays grey (and keeps a
    grey profile)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("L" if image.mode == "LA" else "RGB")
