"""24 weather frames (800x600) -> animated GIF: weathergif against imageio's defaults.

Baseline: imageio.v3.imwrite with its defaults, measured in the same run.
Targets: at most 0.2x its time, at most 0.65x its size, mean PSNR >= 41.5 dB
(each GIF frame decoded back with Pillow against its source), and a 48-frame GIF
under 200 MB peak RSS for the whole process, decoding frames as the worker does.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
from common import data_file, max_rss_mb, median_ms, peak_rss_mb, reset_peak, verdict

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


def main() -> None:
    frames = load_frames()
    print(f"{len(frames)} frames of {frames[0].width}x{frames[0].height} -> GIF, {DELAY} ms a frame")
    results = {}
    for name, fn in {"imageio-defaults": baseline, "weathergif": weathergif}.items():
        data = fn(frames)
        ms = median_ms(lambda fn=fn: fn(frames), runs=5)
        results[name] = (ms, len(data), mean_psnr(data, frames))
        print(f"  {name:18s} {ms:7.1f} ms {len(data) / 1024:8.0f} KB {results[name][2]:6.2f} dB")
    base_ms, base_size, _ = results["imageio-defaults"]
    ms, size, psnr = results["weathergif"]
    print(f"  time ratio {ms / base_ms:.2f}x (target <= 0.20): {verdict(ms / base_ms <= 0.20)}")
    print(f"  size ratio {size / base_size:.2f}x (target <= 0.65): {verdict(size / base_size <= 0.65)}")
    print(f"  mean PSNR {psnr:.2f} dB (target >= 41.5, aim 42.8): {verdict(psnr >= 41.5)}")
    big = peak_rss_mb(__file__)
    print(f"  {big['frames']} frames -> {big['kb']} KB GIF, process peak RSS {big['peak_mb']:.0f} MB "
          f"(target < 200): {verdict(big['peak_mb'] < 200)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure_48()
    else:
        main()
