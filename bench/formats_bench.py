"""24 weather frames (800x600) -> GIF, animated WebP and H.264 MP4: bytes, PSNR and CPU per format.

The three sets of gif_bench.py (radar, the benchmark's; temperature and satellite from the demo map
source). For each, in the same run:
- weathergif's GIF (the reference: bytes and PSNR), WebP (the GIF's own frames, lossless, or lossy
  where smaller at no lower PSNR) and MP4 (x264 by the packaged static ffmpeg, muxed here);
- ffmpeg's own CLI encodes of the same frames, from PNG files: libwebp (its defaults, lossy
  quality 75; and -lossless 1) and libx264 -crf 23 (its default preset, medium) with
  -movflags +faststart;
- the ceiling of yuv420p itself: x264 losslessly (-qp 0), whose PSNR no yuv420p MP4 passes;
- CPU: each encoder in turn, round after round (median of 5; ffmpeg's lossless WebP once), this process and its children
  (ffmpeg): the GIF whole; WebP given the GIF's palette and indexes (what it adds to a GIF
  request), and with method 0 (libwebp's fastest) for comparison; MP4 whole (ffmpeg's share too).
PSNR: mean over frames, each frame decoded back (Pillow for GIF and WebP, ffmpeg for MP4, BT.709
as tagged) against its source. Goals: WebP at most 0.5x the GIF's bytes at no lower PSNR; MP4 at
most 0.2x at 38 dB or more; each format's CPU no more than the GIF's.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from common import verdict  # noqa: E402
from gif_bench import DELAY, SETS, load, mean_psnr  # noqa: E402

from chalicelib.imaging import gif as gifs  # noqa: E402
from chalicelib.imaging import mp4, webp  # noqa: E402

ROUNDS = 5


def cpu() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cpu_ms(fns: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, list[float]]:
    """{name: CPU ms of each round}, each fn once a round, in turn, after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            started = cpu()
            fn()
            times[name].append((cpu() - started) * 1000)
    return times


def video_frames(data: bytes, width: int, height: int) -> list[np.ndarray]:
    """An MP4's frames in RGB, decoded by ffmpeg from a file (its moov may come last)."""
    with tempfile.NamedTemporaryFile(suffix=".mp4") as video:
        video.write(data)
        video.flush()
        raw = subprocess.run(
            [
                mp4.ffmpeg_path(),
                "-loglevel",
                "error",
                "-i",
                video.name,
                "-pix_fmt",
                "rgb24",
                "-f",
                "rawvideo",
                "pipe:1",
            ],
            capture_output=True,
            check=True,
        ).stdout
    size = width * height * 3
    return [np.frombuffer(raw, np.uint8, size, i * size).reshape(height, width, 3) for i in range(len(raw) // size)]


def video_psnr(data: bytes, frames) -> float:
    width, height = frames[0].size
    back = video_frames(data, width, height)
    assert len(back) == len(frames), (len(back), len(frames))
    return float(np.mean([webp.psnr(b, np.asarray(f)) for b, f in zip(back, frames)]))


def ffmpeg_cli(frames, folder: str, output: str, *args: str) -> tuple[bytes, float]:
    """ffmpeg's CLI on the frames as PNG files: its output and its CPU seconds."""
    before = cpu()
    subprocess.run(
        [mp4.ffmpeg_path(), "-loglevel", "error", "-y", "-framerate", str(1000 / DELAY), "-i", f"{folder}/%03d.png",
         *args, f"{folder}/{output}"],
        check=True,
    )  # fmt: skip
    spent = cpu() - before
    with open(f"{folder}/{output}", "rb") as handle:
        return handle.read(), spent


def span(values: list[float]) -> str:
    return f"{statistics.median(values):4.0f} ms ({min(values):.0f}-{max(values):.0f})"


def one_set(name: str) -> bool:
    """The figures of one frame set, printed; whether it meets the goals."""
    frames = load(name.split()[0])
    durations = gifs.delays(len(frames), DELAY)
    rgb = gifs.conform(frames)
    colours = gifs.fit_palette(rgb)
    indices = list(gifs.indexed(rgb, colours))

    def fastest_webp() -> bytes:
        method, effort = webp.LOSSLESS_METHOD, webp.LOSSLESS_EFFORT
        webp.LOSSLESS_METHOD, webp.LOSSLESS_EFFORT = 0, 10
        try:
            return webp.encode_lossless(colours, indices, durations, 0).data
        finally:
            webp.LOSSLESS_METHOD, webp.LOSSLESS_EFFORT = method, effort

    with tempfile.TemporaryDirectory() as folder:
        for index, frame in enumerate(frames):
            frame.save(f"{folder}/{index:03d}.png", compress_level=1)
        cli: dict[str, tuple[bytes, float]] = {}
        times = cpu_ms(
            {
                "gif": lambda: gifs.encode_gif(list(frames), delay=DELAY),
                "webp": lambda: webp.encode_webp(colours, indices, durations, 0, sources=rgb),
                "webp m0": fastest_webp,
                "mp4": lambda: mp4.encode_mp4(rgb, durations),
                "ffmpeg webp": lambda: cli.__setitem__(
                    "webp", ffmpeg_cli(frames, folder, "cli.webp", "-c:v", "libwebp", "-loop", "0")
                ),
                "ffmpeg x264": lambda: cli.__setitem__(
                    "x264",
                    ffmpeg_cli(
                        frames,
                        folder,
                        "cli.mp4",
                        "-c:v",
                        "libx264",
                        "-crf",
                        "23",
                        "-pix_fmt",
                        "yuv420p",
                        "-movflags",
                        "+faststart",
                    ),
                ),  # fmt: skip
            }
        )
        # once, not in the rounds: libwebp's lossless at ffmpeg's defaults takes some 10 s a set
        cli["webp lossless"] = ffmpeg_cli(
            frames, folder, "cli-lossless.webp", "-c:v", "libwebp", "-lossless", "1", "-loop", "0"
        )
        times["ffmpeg webp lossless"] = [cli["webp lossless"][1] * 1000]
        ceiling, _ = ffmpeg_cli(frames, folder, "qp0.mp4", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                                "-vf", "scale=out_color_matrix=bt709", "-colorspace", "bt709", "-pix_fmt", "yuv420p")  # fmt: skip
    gif = gifs.encode_gif(list(frames), delay=DELAY)
    made = webp.encode_webp(colours, indices, durations, 0, sources=rgb)
    video = mp4.encode_mp4(rgb, durations)
    quality = {
        "gif": mean_psnr(gif, frames),
        "webp": webp.mean_psnr(webp.decode(made.data), frames),
        "mp4": video_psnr(video, frames),
        "ffmpeg webp": webp.mean_psnr(webp.decode(cli["webp"][0]), frames),
        "ffmpeg webp lossless": webp.mean_psnr(webp.decode(cli["webp lossless"][0]), frames),
        "ffmpeg x264": video_psnr(cli["x264"][0], frames),
        "yuv420p": video_psnr(ceiling, frames),
    }
    sizes = {
        "gif": len(gif),
        "webp": len(made.data),
        "webp m0": len(fastest_webp()),
        "mp4": len(video),
        "ffmpeg webp": len(cli["webp"][0]),
        "ffmpeg webp lossless": len(cli["webp lossless"][0]),
        "ffmpeg x264": len(cli["x264"][0]),
    }
    gif_cpu = statistics.median(times["gif"])
    print(f"\n  {name}")
    for key in ("gif", "webp", "webp m0", "mp4", "ffmpeg webp", "ffmpeg webp lossless", "ffmpeg x264"):
        line = f"    {key:21s} {sizes[key] / 1024:6.0f} KB {sizes[key] / sizes['gif']:5.2f}x GIF"
        if key in quality:
            line += f"  {quality[key]:5.2f} dB ({quality[key] - quality['gif']:+.2f})"
        else:
            line += "  " + " " * 15
        line += f"  CPU {span(times[key])} {statistics.median(times[key]) / gif_cpu:4.2f}x GIF"
        if key == "webp":
            line += "  lossless" if made.lossless else f"  lossy q{made.quality}"
        print(line)
    print(
        f"    yuv420p itself (x264 -qp 0): {quality['yuv420p']:5.2f} dB, the most any yuv420p MP4 of these frames has"
    )
    webp_ok = sizes["webp"] <= 0.5 * sizes["gif"] and quality["webp"] >= quality["gif"] - 1e-6
    mp4_ok = sizes["mp4"] <= 0.2 * sizes["gif"] and quality["mp4"] >= 38
    cpu_ok = {key: statistics.median(times[key]) <= gif_cpu for key in ("webp", "mp4")}
    print(
        f"    goals: WebP <= 0.5x GIF at >= its PSNR: {verdict(webp_ok)}; MP4 <= 0.2x at >= 38 dB: "
        f"{verdict(mp4_ok)}; CPU <= GIF's: WebP {verdict(cpu_ok['webp'])}, MP4 {verdict(cpu_ok['mp4'])}"
    )
    print(
        f"    against ffmpeg's CLI: WebP {sizes['webp'] / sizes['ffmpeg webp lossless']:.2f}x its lossless bytes, "
        f"{quality['webp'] - quality['ffmpeg webp']:+.2f} dB over its lossy; MP4 "
        f"{sizes['mp4'] / sizes['ffmpeg x264']:.2f}x its bytes, {quality['mp4'] - quality['ffmpeg x264']:+.2f} dB, "
        f"{statistics.median(times['mp4']) / statistics.median(times['ffmpeg x264']):.2f}x its CPU"
    )
    return webp_ok and mp4_ok and all(cpu_ok.values())


def main() -> None:
    print(f"24 frames of 800x600 -> GIF, WebP, MP4 ({DELAY} ms a frame); CPU: median (range) of {ROUNDS} rounds")
    print(f"ffmpeg: {mp4.ffmpeg_path()}")
    ok = True
    for name in SETS:
        ok &= one_set(name)
    print(f"\n  all goals: {verdict(ok)}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
