"""Opening untrusted image bytes safely, and normalising their modes."""

from __future__ import annotations

import io
import warnings
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from ..errors import ImageError

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")

# Our own pixel bound is checked before decoding; Pillow's global one would
# only warn below twice its value, so it is switched off in favour of ours.
Image.MAX_IMAGE_PIXELS = None


def open_image(data: bytes, max_pixels: int, what: str = "input") -> Image.Image:
    """Open (not yet decode) `data`; refuse non-images and decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"{what} is not an image ({len(data)} bytes starting {data[:8]!r})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} is not a readable image: {exc}") from None
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageError(
            f"{what} is {image.width}x{image.height} ({pixels} pixels), "
            f"over the bound of {max_pixels} pixels"
        )
    return image


def load(image: Image.Image, what: str = "input") -> Image.Image:
    """Decode `image`, turning a truncated or corrupt file into an ImageError."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{what} could not be decoded: {exc}") from None
    return image


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def to_8bit(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB or RGBA, whatever came in (palette, CMYK, 16-bit, float)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if has_alpha(image) else "RGB")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _scale_to_l(image)
    if mode in ("RGBa", "La"):
        return image.convert(mode.upper())
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _scale_to_l(image: Image.Image) -> Image.Image:
    """Deep greyscale to 8 bits: 16-bit by its full range, others by their extrema."""
    if image.mode.startswith("I;16"):
        low, high = 0, 65535
        image = image.convert("I")
    else:
        low, high = image.getextrema()
    if high <= low:
        return Image.new("L", image.size, 0 if high <= 0 else 255)
    scale = 255.0 / (high - low)
    return image.point(lambda v: (v - low) * scale).convert("L")


class Probe(NamedTuple):
    format: str  # Pillow's name: "PNG", "JPEG", ...
    width: int
    height: int

    @property
    def extension(self) -> str:
        return {"JPEG": "jpg"}.get(self.format, self.format.lower())

    @property
    def content_type(self) -> str:
        return Image.MIME.get(self.format, "application/octet-stream")


WEB_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


def probe_frame(data: bytes, size: tuple[int, int], max_pixels: int, what: str) -> Probe:
    """Check that `data` is a whole web image of exactly `size`; say what it is."""
    image = open_image(data, max_pixels, what)
    if image.format not in WEB_FORMATS:
        raise ImageError(f"{what} is {image.format}, not one of {', '.join(WEB_FORMATS)}")
    if image.size != size:
        raise ImageError(f"{what} is {image.width}x{image.height}, but {size[0]}x{size[1]} was asked")
    load(image, what)
    return Probe(image.format, image.width, image.height)
