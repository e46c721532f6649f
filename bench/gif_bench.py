"""24 weather frames (800x600) -> animated GIF: weathergif against imageio and ffmpeg.

Three sets: the benchmark radar frames (../shared/benchdata), and two of the demo map source's
smooth layers, which no code here was tuned on frame by frame: a temperature field in a
continuous colour ramp ("temp-gradient", the hard case) and infrared satellite clouds.

Baselines, measured in the same run:
- time: imageio.v3.imwrite with its defaults (CPU time, what Lambda bills for; each encoder
  in turn, round after round, so that load on the machine falls on all alike);
- size and quality: ffmpeg's palettegen (stats_mode=full) and paletteuse (dither=none), the
  best one-palette GIF of a common tool; mean PSNR of each GIF frame decoded back with Pillow
  against its source.
Targets: at most 0.2x imageio's CPU time; at most ffmpeg's size; +1.5 dB over ffmpeg on the
benchmark frames and on the temperature set; a 48-frame GIF under 200 MB peak RSS for the
whole process, decoding frames as the worker does.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the GIF worker runs numpy
import numpy as np  # noqa: E402
from common import data_file, max_rss_mb, peak_rss_mb, reset_peak, verdict  # noqa: E402

FRAMES = [f"radar_{i:03d}.png" for i in range(24)]
DELAY = 250
SETS = ("radar (benchmark)", "temp-gradient", "satellite")


def load(name: str):
    from PIL import Image

    if name.startswith("radar"):
        return [Image.open(data_file(frame)).convert("RGB") for frame in FRAMES]
    from local.mapsource import render

    return [
        Image.open(io.BytesIO(render(name, 800, 600, "tulsa,ok", 6, 1_700_000_000 + 300 * i))).convert("RGB")
        for i in range(24)
    ]


def imageio_gif(frames) -> bytes:
    import imageio.v3 as iio

    stack = np.stack([np.asarray(frame) for frame in frames])
    return iio.imwrite("<bytes>", stack, extension=".gif", duration=DELAY, loop=0)


def weathergif(frames) -> bytes:
    from chalicelib.imaging.gif import encode_gif

    return encode_gif(list(frames), delay=DELAY)


def ffmpeg_gif(frames) -> tuple[bytes, float]:
    """ffmpeg's GIF and the CPU seconds its process took."""
    with tempfile.TemporaryDirectory() as folder:
        for index, frame in enumerate(frames):
            frame.save(f"{folder}/{index:03d}.png", compress_level=1)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-framerate", "4", "-i", f"{folder}/%03d.png", "-vf",
             "split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=none", f"{folder}/out.gif"],
            check=True,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(f"{folder}/out.gif", "rb") as gif:
            return gif.read(), (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cpu_ms(fns: dict, rounds: int = 5) -> dict[str, float]:
    """{name: median CPU ms}, each fn once a round, in turn, after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            started = time.process_time()
            fn()
            times[name].append(time.process_time() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def mean_psnr(data: bytes, frames) -> float:
    from PIL import Image

    gif = Image.open(io.BytesIO(data))
    values = []
    for index, source in enumerate(frames):
        gif.seek(index)
        error = np.mean((np.asarray(gif.convert("RGB"), np.float64) - np.asarray(source, np.float64)) ** 2)
        values.append(99.0 if error == 0 else 10 * np.log10(255**2 / error))
    return float(np.mean(values))


def measure_48() -> None:
    """The GIF worker's path for 48 frames: PNG bytes -> decoded frames -> GIF bytes."""
    from chalicelib.imaging.decode import load as decode, open_image
    from chalicelib.imaging.gif import encode_gif

    names = FRAMES * 2
    reset_peak()
    frames = [decode(open_image(data_file(name).read_bytes(), 50_000_000)) for name in names]
    gif = encode_gif(frames, delay=DELAY)
    print(json.dumps({"peak_mb": max_rss_mb(), "frames": len(names), "kb": len(gif) // 1024}))


def main() -> None:
    have_ffmpeg = shutil.which("ffmpeg") is not None
    print(f"24 frames of 800x600 -> GIF, {DELAY} ms a frame; CPU time, median of 5 interleaved rounds")
    header = f"  {'set':18s} {'weathergif':>10s} {'imageio':>9s} {'ratio':>6s}   {'size':>7s} {'PSNR':>8s}"
    print(header + ("   ffmpeg: size, PSNR, CPU -> ours against it" if have_ffmpeg else "   (no ffmpeg here)"))
    ok = True
    for name in SETS:
        frames = load(name.split()[0])
        times = cpu_ms({"weathergif": lambda f=frames: weathergif(f), "imageio": lambda f=frames: imageio_gif(f)})
        ours = weathergif(frames)
        psnr = mean_psnr(ours, frames)
        ratio = times["weathergif"] / times["imageio"]
        line = (
            f"  {name:18s} {times['weathergif']:7.0f} ms {times['imageio']:6.0f} ms {ratio:5.2f}x"
            f"   {len(ours) / 1024:5.0f} KB {psnr:5.2f} dB"
        )
        ok &= ratio <= 0.20
        if have_ffmpeg:
            theirs, their_cpu = ffmpeg_gif(frames)
            their_psnr = mean_psnr(theirs, frames)
            size = len(ours) / len(theirs)
            line += (
                f"   {len(theirs) / 1024:5.0f} KB {their_psnr:5.2f} dB {their_cpu * 1000:5.0f} ms"
                f" -> {size:.2f}x size, {psnr - their_psnr:+.2f} dB"
            )
            ok &= size <= 1.0 and (name == "satellite" or psnr - their_psnr >= 1.5)
        print(line)
    print(f"  targets (<= 0.20x imageio's CPU; <= ffmpeg's size; >= +1.5 dB on radar and temperature): {verdict(ok)}")
    big = peak_rss_mb(__file__)
    print(
        f"  {big['frames']} frames -> {big['kb']} KB GIF, process peak RSS {big['peak_mb']:.0f} MB "
        f"(target < 200): {verdict(big['peak_mb'] < 200)}"
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[1:2] == ["--measure"]:
        measure_48()
    else:
        main()
