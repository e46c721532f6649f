"""Lanczos resampling by fast_image_resize: Pillow's pixels, a fraction of its CPU."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from chalicelib.imaging.resample import lanczos


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def photo(size: tuple[int, int], mode: str) -> Image.Image:
    """Detail at every scale: noise over gradients."""
    bands = [
        Image.effect_noise(size, 40),
        Image.linear_gradient("L").resize(size),
        Image.radial_gradient("L").resize(size),
        Image.linear_gradient("L").rotate(90).resize(size),
    ]
    count = len(Image.new(mode, (1, 1)).getbands())
    return Image.merge(mode, bands[:count])


def pillow(image: Image.Image, size, box=None, reducing_gap=None) -> Image.Image:
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=reducing_gap)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "CMYK"])
@pytest.mark.parametrize(
    "src, size, box, gap",
    [
        ((600, 450), (200, 150), None, None),  # down by 3
        ((600, 450), (200, 200), (75.0, 0.0, 525.0, 450.0), 3.0),  # a cover crop, reduced by... nothing
        ((1200, 900), (150, 150), (150.0, 0.0, 1050.0, 900.0), 3.0),  # reduced by 2 first (not RGBA), as Pillow does
        ((500, 375), (800, 600), None, None),  # up
        ((500, 375), (400, 400), (62.75, 0.0, 437.75, 375.0), None),  # a fractional box
    ],
)
def test_the_same_pixels_as_pillow(mode, src, size, box, gap):
    image = photo(src, mode)
    ours = lanczos(image, size, box, reducing_gap=gap)
    assert ours.mode == mode and ours.size == size
    theirs = pillow(image, size, box, gap)
    if mode == "RGBA":  # what is seen: a nearly transparent pixel's colour is rounding noise, in both
        ours, theirs = ours.convert("RGBa"), theirs.convert("RGBa")
    assert psnr(ours, theirs) > 45  # rounding apart (54-58 dB on photos)


def test_transparent_pixels_lend_no_colour():
    # Left half transparent red, right half opaque blue: the edge blends blue with nothing.
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    image.paste(Image.new("RGBA", (100, 100), (0, 0, 255, 255)), (100, 0))
    out = lanczos(image, (50, 25))
    red, _, blue, alpha = out.getpixel((25, 12))  # type: ignore[misc]
    assert 0 < alpha < 255 and red < 8 and blue > 240


def test_modes_without_a_kernel_are_left_to_pillow():
    image = photo((300, 200), "LA")
    assert lanczos(image, (100, 67)).tobytes() == pillow(image, (100, 67)).tobytes()
    grey16 = Image.linear_gradient("L").resize((300, 200)).convert("I;16")
    assert lanczos(grey16, (100, 67)).tobytes() == pillow(grey16, (100, 67)).tobytes()


def test_threads_resize_at_once():
    sources = [photo((900, 600), "RGB") for _ in range(4)]
    expected = [lanczos(image, (300, 200)).tobytes() for image in sources]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: lanczos(sources[i % 4], (300, 200)).tobytes(), range(32)))
    assert results == [expected[i % 4] for i in range(32)]


def test_pillow_does_not_resize_the_modes_with_a_kernel(monkeypatch):
    """RGB, RGBA, L and CMYK go to the SIMD kernel (its speed: bench/thumbnail_bench.py)."""
    images = [photo((600, 400), mode) for mode in ("RGB", "RGBA", "L", "CMYK")]
    monkeypatch.setattr(Image.Image, "resize", lambda *args, **kwargs: pytest.fail("Pillow resized"))
    for image in images:
        assert lanczos(image, (200, 133), reducing_gap=2.0).size == (200, 133)


def test_the_kernel_uses_the_cpus_vector_instructions():
    import platform

    from cykooz_resizer import Resizer

    wanted = {"x86_64": ("avx2", "sse4_1"), "aarch64": ("neon",)}.get(platform.machine())
    if wanted is None:
        pytest.skip(f"no SIMD expectation for {platform.machine()}")
    assert Resizer().cpu_extensions.name in wanted


def test_rgba_is_not_box_reduced_first_as_pillow_does_not():
    """Pillow's resize drops reducing_gap for RGBA: thin lines of a transparent upload stay lines."""
    from PIL import ImageDraw

    image = Image.new("RGBA", (1680, 1260), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for x in range(-1260, 1680, 7):
        draw.line((x, 0, x + 1260, 1260), fill=(20, 60, 200, 255), width=1)
    ours = lanczos(image, (800, 600), reducing_gap=1.049).convert("RGBa")
    assert psnr(ours, pillow(image, (800, 600), reducing_gap=1.049).convert("RGBa")) > 35
