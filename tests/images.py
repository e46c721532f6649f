"""Small images made in memory for tests."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def quadrants(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    w, h = width // 2, height // 2
    draw.rectangle((0, 0, w - 1, h - 1), fill=(255, 0, 0))
    draw.rectangle((w, 0, width, h - 1), fill=(0, 255, 0))
    draw.rectangle((0, h, w - 1, height), fill=(0, 0, 255))
    draw.rectangle((w, h, width, height), fill=(255, 255, 255))
    return image if mode == "RGB" else image.convert(mode)


def jpeg(width: int, height: int, orientation: int | None = None, quality: int = 90) -> bytes:
    image = quadrants(width, height)
    if orientation is None:
        return encode(image, "JPEG", quality=quality)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=quality, exif=exif.tobytes())


def radar_frame(index: int, width: int = 320, height: int = 240) -> Image.Image:
    """A weather-map-like frame: a two-tone basemap and a moving band of rain colours."""
    image = Image.new("RGB", (width, height), (30, 60, 110))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 6, width * 4 // 5, height * 5 // 6), fill=(90, 120, 70))
    scale = [(0, 200, 0), (255, 255, 0), (255, 140, 0), (220, 0, 0), (160, 0, 160)]
    x = (index * 11) % width
    for level, colour in enumerate(scale):
        r = 60 - level * 11
        draw.ellipse((x - r, height // 2 - r, x + r, height // 2 + r), fill=colour)
    draw.text((5, 5), f"frame {index:03d}", fill=(255, 255, 255))
    return image
