"""Thumbnails of a 4000x3000 photo, JPEG and PNG, 400x400 and 1600 px: weathergif against plain Pillow.

Baseline ("naive"): Pillow's full decode, then ImageOps.fit (Lanczos), then save, measured in
the same run, rounds interleaved. CPU time (what Lambda bills; a function at 1 GB has about
0.6 of a vCPU): medians over the rounds. Peak memory: the growth of a fresh process's peak RSS
over the operation. Targets: at most pyvips's CPU time (libvips's thumbnail, the fastest
thumbnailer there is, measured in the same run: requirements-dev.txt installs it; it is not in
the bundle, no wheel of it fits Lambda's python3.11), and at most the ratios to naive this bench
was set when pyvips was measured elsewhere: 0.30x for the JPEG at 400x400, 0.44x for a PNG,
0.33x for a JPEG at 1600 px (a PNG has no reduced-scale decode: decoding it all sets its floor,
whatever the target's size; pyvips takes 0.48-0.54x naive's on these PNGs here); peak memory at
most naive's.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from typing import NamedTuple

from common import data_file, max_rss_mb, reset_peak, rss_mb, verdict

PHOTO = "photo_4000x3000.jpg"


class Case(NamedTuple):
    name: str
    source: str  # "jpeg" or "png"
    size: tuple[int, int]
    mode: str  # "cover" or "contain"
    target: float  # the CPU-time ratio to naive


CASES = [
    Case("4000x3000 JPEG -> 400x400 cover", "jpeg", (400, 400), "cover", 0.30),
    Case("4000x3000 PNG -> 400x400 cover", "png", (400, 400), "cover", 0.44),
    Case("4000x3000 JPEG -> 1600 wide (1600x1600 contain)", "jpeg", (1600, 1600), "contain", 0.33),
    Case("4000x3000 PNG -> 1600 wide (1600x1600 contain)", "png", (1600, 1600), "contain", 0.44),
    Case("4000x3000 JPEG -> 1600x1600 cover", "jpeg", (1600, 1600), "cover", 0.33),
    Case("4000x3000 PNG -> 1600x1600 cover", "png", (1600, 1600), "cover", 0.44),
]


def source(kind: str) -> bytes:
    """The photo as a JPEG (the reference file) or as a PNG made of it here (Pillow's defaults)."""
    data = data_file(PHOTO).read_bytes()
    if kind == "jpeg":
        return data
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "PNG")
    return out.getvalue()


def naive(data: bytes, case: Case) -> bytes:
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    image.load()
    if case.mode == "contain":
        fitted = ImageOps.contain(image, case.size, Image.Resampling.LANCZOS)
    else:
        fitted = ImageOps.fit(image, case.size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=85)
    return out.getvalue()


def weathergif(data: bytes, case: Case) -> bytes:
    from chalicelib.imaging.thumbnail import make_thumbnail

    return make_thumbnail(data, *case.size, mode=case.mode, fmt="jpeg", max_pixels=50_000_000).data  # type: ignore[arg-type]


def vips(data: bytes, case: Case) -> bytes:
    import pyvips  # type: ignore[import-not-found]

    pyvips.cache_set_max(0)  # each round does the work: no operation cached from the round before
    crop = "centre" if case.mode == "cover" else "none"
    image = pyvips.Image.thumbnail_buffer(data, case.size[0], height=case.size[1], crop=crop, size="both")
    return image.jpegsave_buffer(Q=85)


def has_pyvips() -> bool:
    try:
        import pyvips  # type: ignore[import-not-found]  # noqa: F401
    except Exception:  # noqa: BLE001 (not installed, or its libvips missing)
        return False
    return True


METHODS = {"naive": naive, "weathergif": weathergif, "pyvips": vips}


def measure(case_index: int, method: str) -> None:
    case = CASES[case_index]
    data = source(case.source)
    import PIL.Image  # noqa: F401  (libraries loaded before the baseline reading)

    import chalicelib.imaging.thumbnail  # noqa: F401

    if method == "pyvips":
        import pyvips  # type: ignore[import-not-found]  # noqa: F401

    reset_peak()
    before = rss_mb()
    METHODS[method](data, case)
    print(json.dumps({"peak_mb": max_rss_mb() - before}))


def peak_mb(case_index: int, method: str) -> float:
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(case_index), method], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def cpu_ms(case: Case, data: bytes, methods: list[str], rounds: int) -> dict[str, float]:
    """Median CPU time of each method, the methods taking turns in every round."""
    for name in methods:  # warm-up
        METHODS[name](data, case)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name in methods:
            started = time.process_time()
            METHODS[name](data, case)
            times[name].append(time.process_time() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def main() -> None:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 7
    methods = ["naive", "weathergif"] + (["pyvips"] if has_pyvips() else [])
    sources = {kind: source(kind) for kind in ("jpeg", "png")}
    print(f"{PHOTO}: JPEG {len(sources['jpeg']) // 1024} KB, PNG {len(sources['png']) // 1024} KB")
    print(f"CPU time: medians of {rounds} interleaved rounds; peak: a fresh process's growth")
    for index, case in enumerate(CASES):
        ms = cpu_ms(case, sources[case.source], methods, rounds)
        peaks = {name: peak_mb(index, name) for name in methods}
        print(f"{case.name}")
        for name in methods:
            print(f"  {name:10s} {ms[name]:7.1f} ms CPU   peak +{peaks[name]:5.1f} MB   {ms[name] / ms['naive']:.2f}x")
        ratio = ms["weathergif"] / ms["naive"]
        print(
            f"  weathergif {ratio:.2f}x naive's CPU (target <= {case.target:.2f}): {verdict(ratio <= case.target)};"
            f" peak {peaks['weathergif']:.1f} MB against naive's {peaks['naive']:.1f}:"
            f" {verdict(peaks['weathergif'] <= peaks['naive'])}"
        )
        if "pyvips" in ms:
            against = ms["weathergif"] / ms["pyvips"]
            print(f"  weathergif {against:.2f}x pyvips's CPU (target <= 1.00): {verdict(against <= 1.0)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(int(sys.argv[2]), sys.argv[3])
    else:
        main()
