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

from .decode import has_alpha, icc_profile, load, open_image, profile_fits, to_8bit_keeping_colour

Mode = Literal["cover", "contain"]
Format = Literal["auto", "jpeg", "png"]

JPEG_QUALITY = 85
DRAFT_MARGIN = 1.5  # the decoder's reduction leaves this much more than the target to resize: its own aliases
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
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    swap = orientation in _SWAPPING_ORIENTATIONS
    upright = (image.height, image.width) if swap else image.size
    scale = _scale(upright, (width, height), mode)
    if image.format == "JPEG" and scale < 1:
        need = (math.ceil(upright[0] * scale * DRAFT_MARGIN), math.ceil(upright[1] * scale * DRAFT_MARGIN))
        image.draft(None, (need[1], need[0]) if swap else need)
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


def _scale(size: tuple[int, int], target: tuple[int, int], mode: Mode) -> float:
    ratios = (target[0] / size[0], target[1] / size[1])
    return max(ratios) if mode == "cover" else min(ratios)


def _resize(image: Image.Image, width: int, height: int, mode: Mode) -> Image.Image:
    src_w, src_h = image.size
    if mode == "contain":
        scale = _scale(image.size, (width, height), mode)
        size = (max(1, min(width, round(src_w * scale))), max(1, min(height, round(src_h * scale))))
        box = (0.0, 0.0, float(src_w), float(src_h))
    else:
        size = (width, height)
        if src_w * height > src_h * width:  # wider than the target: trim the sides
            crop_w = src_h * width / height
            box = ((src_w - crop_w) / 2, 0.0, (src_w + crop_w) / 2, float(src_h))
        else:
            crop_h = src_w * height / width
            box = (0.0, (src_h - crop_h) / 2, float(src_w), (src_h + crop_h) / 2)
    if size == image.size and box == (0.0, 0.0, float(src_w), float(src_h)):
        return image
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _encode(image: Image.Image, fmt: Format, profile: bytes | None) -> Thumbnail:
    out_format = fmt if fmt != "auto" else ("png" if has_alpha(image) else "jpeg")
    if out_format == "jpeg" and has_alpha(image):
        image = _flatten(image)
    # Always named: PNG would otherwise write whatever profile image.info still holds.
    icc = profile if profile_fits(profile, image.mode) else None
    buffer = io.BytesIO()
    if out_format == "jpeg":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, icc_profile=icc)
    else:
        image.save(buffer, "PNG", compress_level=6, icc_profile=icc)
    return Thumbnail(buffer.getvalue(), image.width, image.height, out_format)


def _flatten(image: Image.Image) -> Image.Image:
    """Alpha over white, for a JPEG of a transparent source; grey stays grey (and keeps a
    grey profile)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("L" if image.mode == "LA" else "RGB")
