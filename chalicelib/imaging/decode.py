"""Opening untrusted image bytes safely, and normalising their modes."""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Iterator
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


# PNG pixels, a strip at a time ---------------------------------------------------------
# Pillow's PNG decoder inflates with zlib and undoes the row filters one byte at a time:
# 0.45 s of CPU for a 12 MP photo. ISA-L inflates in a third of zlib's time, and libspng
# undoes the filters with SIMD; a strip at a time, a big PNG never exists in memory whole.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TAIL = (b"IEND", b"tIME")  # what may follow the pixels: nothing that Pillow would read as metadata
_STORED_BLOCK = 65535


def png_rgb_pixels_at(image: Image.Image, data: bytes) -> int | None:
    """Where the pixels of `image` (opened from `data`) start, if it is a PNG that
    png_rgb_strips can decode: 8-bit RGB, not interlaced, no colour key, one image, every
    chunk after its IDATs one that carries no metadata. None for any other image."""
    tile = getattr(image, "tile", [])  # an ImageFile's
    if image.format != "PNG" or image.mode != "RGB" or len(tile) != 1 or tile[0][0] != "zip" or tile[0][3] != "RGB":
        return None
    if (
        getattr(image, "is_animated", False)
        or "transparency" in image.info
        or image.info.get("interlace")
        or image.width * 3 + 1 > _STORED_BLOCK
    ):
        return None
    offset = tile[0][2]
    position, part = offset - 8, "pixels"
    while position + 8 <= len(data):
        kind = data[position + 4 : position + 8]
        if kind == b"IEND":
            return offset
        if kind != (b"IDAT" if part == "pixels" else None) and kind not in _PNG_TAIL:
            return None
        part = "pixels" if kind == b"IDAT" else "tail"
        position += 12 + int.from_bytes(data[position : position + 4], "big")
    return None


def png_rgb_strips(
    data: bytes, offset: int, size: tuple[int, int], start: int, stop: int, rows: int, what: str = "input"
) -> Iterator[tuple[int, Image.Image]]:
    """Rows `start` to `stop` of the PNG whose pixels start at `offset` (png_rgb_pixels_at),
    as RGBX images of `rows` rows (the last may have fewer), each with its first row's y.
    The rows above `start` are decoded (each row's filter refers to the one above) but not
    given; nothing below `stop` is. Corrupt or missing pixels raise ImageError."""
    import pyspng  # type: ignore[import-untyped]
    from isal import isal_zlib

    width, height = size
    stride = width * 3 + 1
    stop = min(stop, height)
    inflate = isal_zlib.decompressobj()
    buffer = bytearray()
    used = 0  # bytes of `buffer` already given
    above: bytes | None = None  # the last row given or skipped, unfiltered
    y = 0
    position = offset - 8
    try:
        while y < stop:
            end = start if y < start else min(y + rows, stop)
            while len(buffer) - used < (end - y) * stride:
                if data[position + 4 : position + 8] != b"IDAT":
                    raise ImageError(
                        f"{what} could not be decoded: its pixels end at row {y + (len(buffer) - used) // stride}"
                    )
                length = int.from_bytes(data[position : position + 4], "big")
                if used:
                    del buffer[:used]
                    used = 0
                buffer += inflate.decompress(memoryview(data)[position + 8 : position + 8 + length])
                position += 12 + length
            count = end - y
            with memoryview(buffer) as view:
                png = _png_of_rows(width, count, above, view[used : used + count * stride])
            used += count * stride
            try:
                pixels = pyspng.load(png, "RGBA")
            except RuntimeError as exc:
                raise ImageError(f"{what} could not be decoded: {exc}") from None
            if above is not None:
                pixels = pixels[1:]
            above = pixels[-1, :, :3].tobytes()
            if y >= start:
                yield y, Image.frombuffer("RGBX", (width, count), pixels, "raw", "RGBX", 0, 1)
            y = end
    except isal_zlib.error as exc:  # type: ignore[misc]
        raise ImageError(f"{what} could not be decoded: {exc}") from None


def _png_of_rows(width: int, count: int, above: bytes | None, rows: memoryview) -> bytes:
    """A PNG of `rows` (filtered, as in their file) stored uncompressed, after `above` (the
    row above them, unfiltered) when there is one: libspng undoes their filters."""
    parts: list[bytes | memoryview] = []
    if above is not None:
        count += 1
        first = b"\0" + above
        parts += (b"\0" + len(first).to_bytes(2, "little") + (len(first) ^ 0xFFFF).to_bytes(2, "little"), first)
    for start in range(0, len(rows), _STORED_BLOCK):
        block = rows[start : start + _STORED_BLOCK]
        parts += (b"\0" + len(block).to_bytes(2, "little") + (len(block) ^ 0xFFFF).to_bytes(2, "little"), block)
    parts[-2] = b"\1" + bytes(parts[-2])[1:]  # the last block
    body = sum(len(part) for part in parts) + 2 + 4
    ihdr = b"IHDR" + width.to_bytes(4, "big") + count.to_bytes(4, "big") + b"\x08\x02\0\0\0"
    head = _PNG_SIGNATURE + b"\0\0\0\x0d" + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
    # libspng (as pyspng asks it) checks neither the IDAT's CRC nor the zlib stream's Adler-32
    return b"".join((head, body.to_bytes(4, "big"), b"IDAT\x78\x01", *parts, bytes(8), b"\0\0\0\0IEND\xae\x42\x60\x82"))
