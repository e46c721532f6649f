"""Small images made in memory for tests, and GIFs read back as a browser shows them."""

from __future__ import annotations

import functools
import io
import struct
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, sigma: float, seed: int = 0) -> Image.Image:
    """Grey noise as Pillow's Image.effect_noise makes it (normal about 128, clipped to 0-255), from
    a table of the normal's quantiles: a third of its CPU at 48 MP on first use, a tenth after."""
    draws = np.random.default_rng(seed).integers(0, 65536, (height, width), dtype=np.uint16)
    return Image.fromarray(_normal_table(sigma)[draws], "L")


@functools.lru_cache
def _normal_table(sigma: float) -> np.ndarray:
    """65,536 evenly spaced quantiles of the normal about 128, rounded and clipped to bytes."""
    quantiles = NormalDist(128, sigma).inv_cdf
    return np.clip(np.rint([quantiles((i + 0.5) / 65536) for i in range(65536)]), 0, 255).astype(np.uint8)


def detail(width: int, height: int) -> Image.Image:
    """A photo's worth of detail at every scale: noise in red and blue, a gradient in green."""
    return Image.merge(
        "RGB",
        (noise(width, height, 50, 1), Image.linear_gradient("L").resize((width, height)), noise(width, height, 30, 2)),
    )


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


def radar_overlay(index: int, width: int = 320, height: int = 240) -> Image.Image:
    """A transparent overlay's frame (a WMS radar layer, no basemap): a band of rain colours moving
    east on a fully transparent ground whose pixels carry a colour (not black, as a layer's may),
    its light rain 75% opaque (opaque in a GIF) inside a faint halo (alpha 90: transparent in it);
    a cell in the north-east, gone from frame 3 on; a label. Every frame turns some pixels that
    were opaque transparent: the echo's trailing edge."""
    image = Image.new("RGBA", (width, height), (30, 60, 110, 0))
    draw = ImageDraw.Draw(image)
    x, y = 40 + index * 23, height // 2
    draw.ellipse((x - 58, y - 58, x + 58, y + 58), fill=(0, 200, 0, 90))
    draw.ellipse((x - 50, y - 50, x + 50, y + 50), fill=(0, 200, 0, 191))
    for level, colour in enumerate([(255, 255, 0), (255, 140, 0), (220, 0, 0), (160, 0, 160)]):
        r = 40 - level * 9
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, 255))
    if index < 3:
        draw.rectangle((width - 70, 20, width - 30, 50), fill=(255, 140, 0, 255))
    draw.text((5, 5), f"frame {index:03d}", fill=(255, 255, 255, 255))
    return image


def gif_as_shown(data: bytes) -> tuple[list[np.ndarray], list[tuple[tuple[int, int, int, int], int]]]:
    """Each frame of a GIF as a browser shows it (RGBA, height x width x 4), composed as the
    GIF89a spec says: the canvas starts transparent, a frame's pixels of its transparent index
    leave the canvas as it is, and once shown its box is left (disposal 0, 1), restored to
    transparent (2) or to what was there before (3). Also each frame's box (left, top, right,
    bottom) and disposal. Each frame's LZW data is decoded by Pillow, as a GIF of its own."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    assert data[:6] == b"GIF89a" and flags & 0x80, "a global colour table"
    at = 13 + 3 * 2 ** ((flags & 7) + 1)
    table = np.frombuffer(data[13:at], np.uint8).reshape(-1, 3)
    canvas = np.zeros((height, width, 4), np.uint8)
    shown, frames = [], []
    disposal, transparent = 0, None
    while data[at] != 0x3B:
        if data[at] == 0x21:  # an extension: the graphic control one says disposal and transparency
            label, at = data[at + 1], at + 2
            body = b""
            while data[at]:
                body, at = body + data[at + 1 : at + 1 + data[at]], at + 1 + data[at]
            at += 1
            if label == 0xF9:
                disposal, transparent = body[0] >> 2 & 7, body[3] if body[0] & 1 else None
            continue
        assert data[at] == 0x2C, f"a block of kind {data[at]:#x}"
        left, top, w, h, local = struct.unpack("<HHHHB", data[at + 1 : at + 10])
        assert not local & 0x80, "no local colour table"
        start, at = at + 10, at + 11
        while data[at]:
            at += data[at] + 1
        at += 1
        alone = data[:6] + struct.pack("<HHB", w, h, flags) + data[11:13] + table.tobytes()
        alone += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + data[start:at] + b";"
        indices = np.asarray(Image.open(io.BytesIO(alone)))
        assert indices.shape == (h, w)
        before = canvas.copy()
        drawn = indices != transparent if transparent is not None else np.ones((h, w), bool)
        region = canvas[top : top + h, left : left + w]
        region[drawn, :3] = table[indices[drawn]]
        region[drawn, 3] = 255
        shown.append(canvas.copy())
        frames.append(((left, top, left + w, top + h), disposal))
        if disposal == 2:
            canvas[top : top + h, left : left + w] = 0
        elif disposal == 3:
            canvas = before
        disposal, transparent = 0, None
    return shown, frames


# ICC profiles made in memory -------------------------------------------------------
# Enough of ICC.1 (v2.1) to give littlecms, browsers and Pillow real profiles to work
# with, with no file from outside: an RGB display profile (matrix and tone curves) and
# a CMYK printer profile (a lut8 table from CMYK to Lab).

# Display P3's primaries, adapted to the D50 of the profile connection space (as in
# Apple's "Display P3" profile); sRGB's, for comparison.
DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
D50 = (0.9642, 1.0, 0.8249)


def _s15(value: float) -> bytes:
    return round(value * 65536).to_bytes(4, "big", signed=True)


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0"
        + len(ascii_text).to_bytes(4, "big")
        + ascii_text
        + b"\0" * 8  # no Unicode description
        + b"\0\0\0"
        + b"\0" * 67  # no ScriptCode description
    )


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A whole profile: header, tag table, then each tag's data, 4-byte aligned. A tag
    given the very bytes object of an earlier one points at its data, as real profiles
    share one tone curve among their channels."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, body, placed = [], b"", {}
    for signature, data in tags:
        if id(data) not in placed:
            placed[id(data)] = offset + len(body)
            body += data + b"\0" * (-len(data) % 4)
        entries.append(signature + placed[id(data)].to_bytes(4, "big") + len(data).to_bytes(4, "big"))
    size = 128 + table_size + len(body)
    header = (
        size.to_bytes(4, "big")
        + b"\0\0\0\0"
        + b"\x02\x10\0\0"
        + device_class
        + space
        + pcs
        + (2024).to_bytes(2, "big")
        + bytes([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])  # 2024-01-01 00:00:00
        + b"acsp"
        + b"\0" * 24
        + b"\0\0\0\0"  # platform, flags, device, attributes; perceptual
        + b"".join(_s15(v) for v in D50)
        + b"\0" * 48  # creator, profile ID, reserved
    )
    assert len(header) == 128
    return header + len(tags).to_bytes(4, "big") + b"".join(entries) + body


def srgb_curve(points: int) -> bytes:
    """A curveType sampling sRGB's tone response at `points` points."""
    values = []
    for i in range(points):
        v = i / (points - 1)
        linear = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
        values.append(round(linear * 65535).to_bytes(2, "big"))
    return b"curv\0\0\0\0" + points.to_bytes(4, "big") + b"".join(values)


def icc_rgb_profile(
    description: str = "Display P3 (made by weathergif's tests)",
    primaries: tuple[tuple[float, float, float], ...] = DISPLAY_P3,
    curve_points: int = 1024,
    shared_curve: bool = True,
) -> bytes:
    """An RGB display profile, Display P3 by default: its primaries and sRGB's tone
    curve, one for all channels or one each. littlecms takes at most 32,767 points a
    curve; three curves of 12,000 make a profile over 64 KB, more than one JPEG APP2
    segment holds."""
    curve = srgb_curve(curve_points)
    curves = (curve, curve, curve) if shared_curve else (curve, srgb_curve(curve_points), srgb_curve(curve_points))
    return _profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        [
            (b"desc", _desc(description)),
            (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
            (b"wtpt", _xyz(D50)),
            (b"rXYZ", _xyz(primaries[0])),
            (b"gXYZ", _xyz(primaries[1])),
            (b"bXYZ", _xyz(primaries[2])),
            (b"rTRC", curves[0]),
            (b"gTRC", curves[1]),
            (b"bTRC", curves[2]),
        ],
    )


def icc_gray_profile(gamma: float = 1.8) -> bytes:
    """A grey display profile: a gamma curve (1.8 by default, not sRGB's)."""
    curve = b"curv\0\0\0\0" + (1).to_bytes(4, "big") + round(gamma * 256).to_bytes(2, "big")
    return _profile(
        b"mntr",
        b"GRAY",
        b"XYZ ",
        [
            (b"desc", _desc(f"Grey, gamma {gamma} (made by weathergif's tests)")),
            (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
            (b"wtpt", _xyz(D50)),
            (b"kTRC", curve),
        ],
    )


def _lab_of_srgb(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIE Lab (D50) of an sRGB colour: linearise, to XYZ (D65), Bradford to D50, to Lab."""
    lin = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    to_xyz_d50 = (
        (0.4360747, 0.3850649, 0.1430804),
        (0.2225045, 0.7168786, 0.0606169),
        (0.0139322, 0.0971045, 0.7141733),
    )
    xyz = [sum(m * c for m, c in zip(row, lin)) for row in to_xyz_d50]

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = (f(v / w) for v, w in zip(xyz, D50))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def icc_cmyk_profile(inks: dict[str, tuple[int, int, int]] | None = None) -> bytes:
    """A CMYK printer profile: a 2x2x2x2 lut8 from CMYK to Lab, whose corners are the sRGB
    colours of its inks and their overprints. The default inks are process-like (cyan is
    (0, 160, 220), not the (0, 255, 255) of a naive conversion), so a test can tell
    whether a conversion used the profile."""
    ink = {"c": (0, 160, 220), "m": (220, 0, 130), "y": (255, 235, 0), "k": (30, 30, 30), **(inks or {})}
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    # overprint: multiply the inks' colours (0 ink is white paper)
                    colour = [1.0, 1.0, 1.0]
                    for name, on in zip("cmyk", (c, m, y, k)):
                        if on:
                            colour = [a * b / 255 for a, b in zip(colour, ink[name])]
                    lab = _lab_of_srgb(tuple(round(v * 255) for v in colour))
                    clut += bytes([round(lab[0] * 255 / 100), round(lab[1] + 128), round(lab[2] + 128)])
    ramp = bytes(range(256))
    identity = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut = b"mft1\0\0\0\0" + bytes([4, 3, 2, 0]) + identity + ramp * 4 + clut + ramp * 3
    return _profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        [
            (b"desc", _desc("CMYK inks (made by weathergif's tests)")),
            (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
            (b"wtpt", _xyz(D50)),
            (b"A2B0", lut),
        ],
    )
