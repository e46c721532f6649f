"""Opening untrusted image bytes safely, and normalising their modes."""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
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
            f"{what} is {image.width}x{image.height} ({pixels} pixels), over the bound of {max_pixels} pixels"
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
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


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


# ICC profiles ------------------------------------------------------------------------
# A thumbnail keeps its source's colours by keeping its source's profile, byte for byte,
# wherever that profile still describes the pixels. Where it cannot (a CMYK profile on
# pixels made RGB), the pixels are converted through it to sRGB and left untagged.
# Untagged means sRGB to every viewer, as does a profile a viewer cannot read: so bytes
# that are no profile are dropped, and the thumbnail looks as its source does.

# What a JPEG's APP2 segments can carry: 255 segments of 65,519 bytes.
MAX_ICC_BYTES = 255 * 65519
_ICC_HEADER = 128 + 4  # the header and the tag count

# The colour space (the ICC header's signature) each mode's samples are in, where to_8bit
# keeps their encoding: palettes hold RGB, 16-bit greys are scaled by their full range.
# Not I and F (stretched to their extrema) nor HSV: no profile describes the result.
_SPACE = {
    "RGB": b"RGB ",
    "RGBA": b"RGB ",
    "RGBa": b"RGB ",
    "RGBX": b"RGB ",
    "P": b"RGB ",
    "PA": b"RGB ",
    "YCbCr": b"RGB ",  # the YCbCr of RGB samples; the profile is the RGB one
    "L": b"GRAY",
    "LA": b"GRAY",
    "La": b"GRAY",
    "1": b"GRAY",
    "I;16": b"GRAY",
    "I;16L": b"GRAY",
    "I;16B": b"GRAY",
    "I;16N": b"GRAY",
    "CMYK": b"CMYK",
    "LAB": b"Lab ",
}


def icc_profile(image: Image.Image) -> bytes | None:
    """The ICC profile `image` carries, as its bytes; None when it has none or what it
    has is no profile (no 'acsp' signature, shorter than its header says, more than a
    JPEG can carry)."""
    profile = image.info.get("icc_profile")
    if not isinstance(profile, bytes) or not _ICC_HEADER <= len(profile) <= MAX_ICC_BYTES:
        return None
    if profile[36:40] != b"acsp" or not _ICC_HEADER <= int.from_bytes(profile[:4], "big") <= len(profile):
        return None
    return profile


def profile_fits(profile: bytes | None, mode: str) -> bool:
    """Whether `profile` describes samples of `mode` (its colour space is theirs)."""
    return profile is not None and _SPACE.get(mode) == profile[16:20]


def to_8bit_keeping_colour(image: Image.Image, profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """to_8bit, and the ICC profile of the result: `profile` (the source's, from
    icc_profile) where it describes both the source's samples and the result's, else None.

    CMYK with a CMYK profile is converted through it to sRGB (the result untagged): Pillow's
    own CMYK conversion ignores the inks and the profile could not describe its RGB. A
    profile that is not the source's colour space, or that littlecms cannot use, is
    dropped, and the conversion is Pillow's."""
    if not profile_fits(profile, image.mode):
        return to_8bit(image), None
    if image.mode == "CMYK" and profile is not None:
        converted = _cmyk_to_srgb(image, profile)
        if converted is not None:
            return converted, None
    result = to_8bit(image)
    return result, profile if profile_fits(profile, result.mode) else None


def _cmyk_to_srgb(image: Image.Image, profile: bytes) -> Image.Image | None:
    transform = _cmyk_transform(profile)
    if transform is None:
        return None
    from PIL import ImageCms

    try:
        return ImageCms.applyTransform(image, transform)
    except ImageCms.PyCMSError:
        return None


@lru_cache(maxsize=4)
def _cmyk_transform(profile: bytes):  # -> ImageCms.ImageCmsTransform | None
    """littlecms's transform from `profile` to sRGB, or None if it cannot make one. Making
    it costs about 0.1 s, using it a few ms a thumbnail: a warm container keeps the last few."""
    from PIL import ImageCms  # littlecms: loaded only when a CMYK source has a profile

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "CMYK", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _scale_to_l(image: Image.Image) -> Image.Image:
    """Deep greyscale to 8 bits: 16-bit by its full range, others by their extrema."""
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
        image = image.convert("I")
    else:
        extrema = image.getextrema()  # one band: (min, max)
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
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
