"""24 weather frames (800x600) -> animated GIF: weathergif against imageio's defaults.

Baseline: imageio.v3.imwrite with its defaults, measured in the same run.
Targets: at most 0.2x its time, at most 0.65x its size, mean PSNR >= 41.5 dB
(each GIF frame decoded back with Pillow against its source), and a 48-frame GIF
under 200 MB peak RSS for the whole process, decoding frames as the worker does.

Also measured: Pillow-only encoders of the same GIF (one global palette from Pillow's
`quantize` on a mosaic of all frames, each frame mapped to it without dithering), which
is what the GIF worker could do without numpy (most of the Lambda layer).
Times are CPU time (what Lambda bills for), each encoder run in turn, round after round,
so that load on the machine falls on all of them alike.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from common import data_file, max_rss_mb, peak_rss_mb, reset_peak, verdict

FRAMES = [f"radar_{i:03d}.png" for i in range(24)]
DELAY = 250


def load_frames():
    from PIL import Image

    return [Image.open(data_file(name)).convert("RGB") for name in FRAMES]


def baseline(frames) -> bytes:
    import imageio.v3 as iio

    stack = np.stack([np.asarray(frame) for frame in frames])
    return iio.imwrite("<bytes>", stack, extension=".gif", duration=DELAY, loop=0)


def weathergif(frames) -> bytes:
    from chalicelib.imaging.gif import encode_gif

    return encode_gif(list(frames), delay=DELAY)


def pillow_only(frames, method) -> bytes:
    """One global palette from Pillow's quantize on a mosaic of every frame (full size), each
    frame mapped to it with no dithering; saved as weathergif saves (delta frames, index 255
    transparent, repeated local colour tables dropped)."""
    from PIL import Image, ImageChops

    from chalicelib.imaging.gif import PALETTE_SIZE, TRANSPARENT, share_global_table

    width, height = frames[0].size
    mosaic = Image.new("RGB", (width, height * len(frames)))
    for index, frame in enumerate(frames):
        mosaic.paste(frame, (0, height * index))
    palette = mosaic.quantize(PALETTE_SIZE, method=method, dither=Image.Dither.NONE)
    del mosaic
    indexed, previous = [], None
    for frame in frames:
        mapped = frame.quantize(palette=palette, dither=Image.Dither.NONE)
        indices = Image.frombytes("L", mapped.size, mapped.tobytes())  # the indices, not their colours
        if previous is not None:  # unchanged pixels transparent, in C as weathergif does it with numpy
            unchanged = ImageChops.difference(indices, previous).point(lambda v: 255 if v == 0 else 0, "1")
            shown = mapped.copy()
            shown.paste(TRANSPARENT, mask=unchanged)
            indexed.append(shown)
        else:
            indexed.append(mapped)
        previous = indices
    buffer = io.BytesIO()
    indexed[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=DELAY,
        loop=0,
        optimize=False,
        transparency=TRANSPARENT,
        disposal=1,
    )
    return share_global_table(buffer.getvalue())


def pillow_mediancut(frames) -> bytes:
    from PIL import Image

    return pillow_only(frames, Image.Quantize.MEDIANCUT)


def pillow_fastoctree(frames) -> bytes:
    from PIL import Image

    return pillow_only(frames, Image.Quantize.FASTOCTREE)


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int = 5) -> dict[str, tuple[float, float]]:
    """{name: (median CPU ms, median wall ms)}, running each fn once a round, in turn, after a warm-up."""
    for fn in fns.values():
        fn()
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    return {name: (statistics.median(cpu[name]) * 1000, statistics.median(wall[name]) * 1000) for name in fns}


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
    from chalicelib.imaging.decode import load, open_image
    from chalicelib.imaging.gif import encode_gif

    names = FRAMES * 2
    reset_peak()
    frames = [load(open_image(data_file(name).read_bytes(), 50_000_000)) for name in names]
    gif = encode_gif(frames, delay=DELAY)
    print(json.dumps({"peak_mb": max_rss_mb(), "frames": len(names), "kb": len(gif) // 1024}))


ENCODERS = {
    "imageio-defaults": baseline,
    "weathergif": weathergif,
    "pillow-mediancut": pillow_mediancut,
    "pillow-fastoctree": pillow_fastoctree,
}


def main() -> None:
    frames = load_frames()
    print(f"{len(frames)} frames of {frames[0].width}x{frames[0].height} -> GIF, {DELAY} ms a frame")
    outputs = {name: fn(frames) for name, fn in ENCODERS.items()}
    quality = {name: mean_psnr(data, frames) for name, data in outputs.items()}
    times = interleaved_ms({name: (lambda fn=fn: fn(frames)) for name, fn in ENCODERS.items()})
    base_cpu, base_size = times["imageio-defaults"][0], len(outputs["imageio-defaults"])
    ours_cpu, ours_size = times["weathergif"][0], len(outputs["weathergif"])
    print(f"  {'':18s} {'CPU':>9s} {'wall':>9s} {'size':>8s} {'PSNR':>8s}   against imageio     against weathergif")
    for name in ENCODERS:
        cpu, wall = times[name]
        size = len(outputs[name])
        print(
            f"  {name:18s} {cpu:6.0f} ms {wall:6.0f} ms {size / 1024:5.0f} KB {quality[name]:5.2f} dB"
            f"   {cpu / base_cpu:4.2f}x t {size / base_size:4.2f}x s"
            f"   {cpu / ours_cpu:4.2f}x t {size / ours_size:4.2f}x s {quality[name] - quality['weathergif']:+6.2f} dB"
        )
    print(f"  time ratio {ours_cpu / base_cpu:.2f}x (target <= 0.20): {verdict(ours_cpu / base_cpu <= 0.20)}")
    print(f"  size ratio {ours_size / base_size:.2f}x (target <= 0.65): {verdict(ours_size / base_size <= 0.65)}")
    psnr = quality["weathergif"]
    print(f"  mean PSNR {psnr:.2f} dB (target >= 41.5, aim 42.8): {verdict(psnr >= 41.5)}")
    big = peak_rss_mb(__file__)
    print(
        f"  {big['frames']} frames -> {big['kb']} KB GIF, process peak RSS {big['peak_mb']:.0f} MB "
        f"(target < 200): {verdict(big['peak_mb'] < 200)}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure_48()
    else:
        main()
