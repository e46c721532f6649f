"""4000x3000 JPEG -> 400x400 cover thumbnail: weathergif against plain Pillow.

Baseline: Pillow's ImageOps.fit on the fully decoded image, measured in the same run.
Targets: at most 0.3x the baseline's time, peak memory under 15 MB.
Peak memory is the growth of a fresh process's peak RSS over the operation.
"""

from __future__ import annotations

import io
import json
import sys

from common import data_file, max_rss_mb, median_ms, peak_rss_mb, reset_peak, rss_mb, verdict

SOURCE = "photo_4000x3000.jpg"
SIZE = (400, 400)


def baseline(data: bytes) -> bytes:
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    image.load()
    out = io.BytesIO()
    ImageOps.fit(image, SIZE, Image.Resampling.LANCZOS).save(out, "JPEG", quality=85)
    return out.getvalue()


def weathergif(data: bytes) -> bytes:
    from chalicelib.imaging.thumbnail import make_thumbnail

    return make_thumbnail(data, *SIZE, max_pixels=50_000_000).data


METHODS = {"pillow-fit-full-decode": baseline, "weathergif": weathergif}


def measure(method: str) -> None:
    data = data_file(SOURCE).read_bytes()
    import PIL.Image  # noqa: F401  (libraries loaded before the baseline reading)
    import chalicelib.imaging.thumbnail  # noqa: F401

    reset_peak()
    before = rss_mb()
    METHODS[method](data)
    print(json.dumps({"peak_mb": max_rss_mb() - before}))


def main() -> None:
    data = data_file(SOURCE).read_bytes()
    print(f"{SOURCE} ({len(data) // 1024} KB) -> {SIZE[0]}x{SIZE[1]} cover")
    results = {}
    for name, fn in METHODS.items():
        ms = median_ms(lambda fn=fn: fn(data))
        peak = peak_rss_mb(__file__, name)["peak_mb"]
        results[name] = (ms, peak)
        print(f"  {name:26s} {ms:7.1f} ms   peak +{peak:5.1f} MB")
    base_ms = results["pillow-fit-full-decode"][0]
    ms, peak = results["weathergif"]
    ratio = ms / base_ms
    print(f"  time ratio {ratio:.2f}x of the baseline (target <= 0.30): {verdict(ratio <= 0.30)}")
    print(f"  peak memory {peak:.1f} MB (target < 15): {verdict(peak < 15)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2])
    else:
        main()
