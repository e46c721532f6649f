"""The animation formats beside the GIF: animated WebP and H.264 MP4, as pure functions of frames,
through the GIF worker, and the MP4 played by Chromium."""

from __future__ import annotations

import base64
import io
import struct
import subprocess

import numpy as np
import pytest
from PIL import Image

from chalicelib import messages
from chalicelib.imaging import gif as gifs
from chalicelib.imaging import mp4, webp
from chalicelib.imaging.animation import encode_animation
from tests.conftest import CHROMIUM, needs_chromium
from tests.images import encode, gif_as_shown, radar_frame, radar_overlay

integration = pytest.mark.integration  # runs ffmpeg (a subprocess)


def radar(count: int = 6, width: int = 320, height: int = 240) -> list[Image.Image]:
    return [radar_frame(i, width, height) for i in range(count)]


def noisy(count: int = 4, width: int = 256, height: int = 192) -> list[Image.Image]:
    """Photo-like frames: smooth gradients under fine grain (in brightness, as a sensor's), thousands
    of colours (a GIF's palette loses much of them; lossy WebP keeps more in fewer bytes)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        base = np.stack([x / width * 255, y / height * 255, (x + y + 8 * i) % 255], axis=2)
        frames.append(Image.fromarray(np.clip(base + rng.normal(0, 6, (height, width, 1)), 0, 255).astype(np.uint8)))
    return frames


def quantised(frames: list[Image.Image]) -> tuple[np.ndarray, list[np.ndarray], list[Image.Image]]:
    rgb = gifs.conform(frames)
    colours = gifs.fit_palette(rgb)
    return colours, list(gifs.indexed(rgb, colours)), rgb


def overlay(count: int = 6, width: int = 320, height: int = 240) -> list[Image.Image]:
    """A transparent overlay's frames (pixels turn transparent in each), the fourth twice."""
    frames = [radar_overlay(i, width, height) for i in range(count)]
    frames.insert(4, frames[3].copy())
    return frames


def noisy_overlay(count: int = 4) -> list[Image.Image]:
    """noisy() frames with a transparent hole moving east and a transparent strip on the right:
    lossy WebP wins on them, as on noisy() itself."""
    frames = []
    for i, frame in enumerate(noisy(count)):
        y, x = np.mgrid[0 : frame.height, 0 : frame.width]
        alpha = np.where((x - 60 - 20 * i) ** 2 + (y - 96) ** 2 < 30**2, 0, 255).astype(np.uint8)
        alpha[:, 230:] = 0
        frames.append(Image.fromarray(np.dstack([np.asarray(frame), alpha]), "RGBA"))
    return frames


def alpha_of(frame: Image.Image) -> np.ndarray:
    """What a GIF keeps of a frame's alpha: 0 below 128, else 255."""
    return np.where(np.asarray(frame.convert("RGBA"))[..., 3] < 128, 0, 255).astype(np.uint8)


# WebP ----------------------------------------------------------------------------------------


class TestWebP:
    def test_lossless_shows_the_gifs_pixels_for_each_frames_duration(self):
        frames = radar(6)
        colours, indices, rgb = quantised(frames)
        durations = [100] * 5 + [900]
        made = webp.encode_webp(colours, indices, durations, loop=3, sources=rgb)
        assert made.lossless
        image = Image.open(io.BytesIO(made.data))
        assert (image.format, image.n_frames, image.size, image.info["loop"]) == ("WEBP", 6, (320, 240), 3)
        shown = []
        for number in range(6):
            image.seek(number)
            pixels = np.asarray(image.convert("RGB"))  # loads it: its duration is known then
            shown.append(image.info["duration"])
            assert np.array_equal(pixels, colours[indices[number]]), number
        assert shown == durations
        gif = gifs.write_gif(colours, indices, (320, 240), durations, 3)
        assert len(made.data) < len(gif)
        assert webp.mean_psnr(webp.decode(made.data), rgb) == pytest.approx(webp.gif_psnr(colours, indices, rgb))

    def test_a_frame_that_changes_nothing_and_one_that_changes_everything(self):
        frames = [radar_frame(0), radar_frame(0), Image.new("RGB", (320, 240), (200, 30, 30)), radar_frame(1)]
        colours, indices, rgb = quantised(frames)
        data = webp.encode_webp(colours, indices, [50, 60, 70, 80]).data
        for number, frame in enumerate(webp.decode(data)):
            assert np.array_equal(np.asarray(frame), colours[indices[number]]), number

    def test_lossy_where_smaller_at_no_lower_psnr_than_the_gif(self):
        frames = noisy()
        colours, indices, rgb = quantised(frames)
        made = webp.encode_webp(colours, indices, [200] * 4, sources=rgb)
        lossless = webp.encode_lossless(colours, indices, [200] * 4, 0)
        assert not made.lossless and made.quality in webp.LOSSY_QUALITIES
        assert len(made.data) < len(lossless.data)
        assert webp.mean_psnr(webp.decode(made.data), rgb) >= webp.gif_psnr(colours, indices, rgb)
        image = Image.open(io.BytesIO(made.data))
        assert (image.n_frames, image.size) == (4, (256, 192))

    def test_lossless_where_lossy_cannot_keep_the_gifs_psnr(self):
        """Radar colours' sharp edges: VP8's 4:2:0 chroma stays dBs under the GIF at any quality."""
        colours, indices, rgb = quantised(radar(4))
        assert webp.lossy_quality(colours, indices[0], rgb[0], 10**9) is None
        assert webp.encode_webp(colours, indices, [100] * 4, sources=rgb).lossless


class TestTransparentWebP:
    def test_lossless_keeps_the_gifs_transparency_and_colours_in_every_frame(self):
        frames = overlay()
        colours, indices, conformed = quantised(list(frames))
        made = webp.encode_webp(colours, indices, [100] * len(frames), sources=conformed)
        assert made.lossless
        back = webp.decode(made.data, "RGBA")
        assert len(back) == len(frames)
        for number, (frame, shown) in enumerate(zip(frames, back)):
            pixels, alpha, source = np.asarray(shown), alpha_of(frame), np.asarray(frame)
            assert np.array_equal(pixels[..., 3], alpha), number  # alpha exact
            opaque = alpha == 255
            assert np.array_equal(pixels[opaque, :3], source[opaque, :3]), number
        assert webp.mean_psnr(back, conformed) == webp.gif_psnr(colours, indices, conformed) == 99.0

    def test_a_frame_that_turns_pixels_transparent_replaces_its_box(self):
        """Blending could only leave a pixel as it was: such a frame is coded whole in its box."""
        frames = [radar_overlay(0), radar_overlay(0), radar_overlay(3)]
        frames[1].paste((0, 0, 0, 0), (30, 110, 50, 130))  # a hole in the echo, all else as before
        colours, indices, _ = quantised(list(frames))
        for number, (current, previous) in enumerate(zip(indices[1:], indices), 1):
            box, shown, blend = webp._delta(current, previous)
            assert not blend, number
        back = webp.decode(webp.encode_lossless(colours, indices, [100] * 3, 0).data, "RGBA")
        for number, (frame, shown) in enumerate(zip(frames, back)):
            assert np.array_equal(np.asarray(shown)[..., 3], alpha_of(frame)), number

    def test_lossy_keeps_alpha_exact_and_the_gifs_psnr_over_the_opaque_pixels(self):
        frames = noisy_overlay()
        colours, indices, conformed = quantised(list(frames))
        made = webp.encode_webp(colours, indices, [200] * 4, sources=conformed)
        assert not made.lossless and made.quality in webp.LOSSY_QUALITIES
        assert len(made.data) < len(webp.encode_lossless(colours, indices, [200] * 4, 0).data)
        back = webp.decode(made.data, "RGBA")
        for number, (frame, shown) in enumerate(zip(frames, back)):
            assert np.array_equal(np.asarray(shown)[..., 3], alpha_of(frame)), number
        assert webp.mean_psnr(back, conformed) >= webp.gif_psnr(colours, indices, conformed)
        # over the opaque pixels alone: what lossy does under transparent ones is not seen
        gif_opaque = webp.gif_psnr(colours, indices, conformed)
        gif_everywhere = np.mean([webp.psnr(colours[np.minimum(i, len(colours) - 1)], np.asarray(s)[..., :3])
                                  for i, s in zip(indices, conformed)])  # fmt: skip
        assert gif_opaque > gif_everywhere

    def test_lossy_whose_alpha_does_not_come_back_is_not_chosen(self, monkeypatch):
        frames = noisy_overlay()
        colours, indices, conformed = quantised(list(frames))
        coded = webp.encode_lossy
        monkeypatch.setattr(
            webp, "encode_lossy", lambda f, *a: coded([frame.convert("RGB") for frame in f], *a)
        )  # its alpha lost
        assert webp.encode_webp(colours, indices, [200] * 4, sources=conformed).lossless


# MP4: the container, without ffmpeg -----------------------------------------------------------


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, body start, body end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    found = []
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        found.append((kind, start + 8, start + size))
        start += size
    return found


def find(data: bytes, path: str) -> bytes:
    start, end = 0, len(data)
    for kind in path.split("/"):
        start, end = next((s, e) for k, s, e in boxes(data, start, end) if k == kind.encode())
    return data[start:end]


def shown_durations(data: bytes) -> list[int]:
    """Each frame's time on screen (ms), in display order, as ISO BMFF's tables say: decoding times
    from stts, composition offsets from ctts, less the edit list's media time."""
    stbl = "moov/trak/mdia/minf/stbl"
    scale = struct.unpack(">I", find(data, "moov/trak/mdia/mdhd")[12:16])[0]
    stts = find(data, stbl + "/stts")
    deltas = [
        d
        for i in range(struct.unpack(">I", stts[4:8])[0])
        for d in [struct.unpack(">II", stts[8 + 8 * i : 16 + 8 * i])]
    ]
    decode = [0]
    for count, delta in deltas:
        for _ in range(count):
            decode.append(decode[-1] + delta)
    end = decode.pop()
    try:
        ctts = find(data, stbl + "/ctts")
        offsets = [
            o
            for i in range(struct.unpack(">I", ctts[4:8])[0])
            for count, o in [struct.unpack(">II", ctts[8 + 8 * i : 16 + 8 * i])]
            for _ in range(count)
        ]
    except StopIteration:
        offsets = [0] * len(decode)
    try:
        elst = find(data, "moov/trak/edts/elst")
        media_time = struct.unpack(">i", elst[12:16])[0]
    except StopIteration:
        media_time = 0
    shown = sorted(d + o - media_time for d, o in zip(decode, offsets))
    ends = shown[1:] + [end - media_time]
    assert shown[0] == 0
    return [(b - a) * 1000 // scale for a, b in zip(shown, ends)]


def test_the_mp4_timeline_shows_each_frame_for_its_duration_with_b_frames():
    """Packets as x264 gives them with B-frames (decoded I P B B P B), durations with a longer last."""
    shown_order = [0, 3, 1, 2, 5, 4]
    packets = [mp4.Packet(b"\0\0\0\1\x65", i == 0, 40 * s + 80) for i, s in enumerate(shown_order)]
    durations = [100, 100, 100, 100, 100, 700]
    data = mp4.mux(packets, b"\1\x64\0\x1f\xff\xe1\0\0\1\0\0", durations, 320, 240)
    assert [kind for kind, _, _ in boxes(data)] == [b"ftyp", b"moov", b"mdat"]  # faststart
    assert shown_durations(data) == durations
    stco = find(data, "moov/trak/mdia/minf/stbl/stco")
    assert data[struct.unpack(">I", stco[8:12])[0] :] == b"".join(p.data for p in packets)
    assert struct.unpack(">II", find(data, "moov/trak/tkhd")[76:84]) == (320 << 16, 240 << 16)
    assert struct.unpack(">I", find(data, "moov/mvhd")[16:20])[0] == 1200  # ms shown in all


def test_x264_reorders_no_frame_so_players_show_each_for_its_duration():
    """A smooth field drifting is what x264 puts B-frames in by default; here frames are decoded in
    the order they are shown (no composition offsets), each shown for its duration, the last too."""
    from local.mapsource import render

    frames = [
        Image.open(io.BytesIO(render("flat-dk,temp-gradient", 320, 240, "tulsa,ok", 6, 600 * k))) for k in range(6)
    ]
    durations = [250] * 5 + [1000]
    data = mp4.encode_mp4([frame.convert("RGB") for frame in frames], durations)
    assert b"ctts" not in [kind for kind, _, _ in boxes(find(data, "moov/trak/mdia/minf/stbl"))]
    assert shown_durations(data) == durations


def test_without_reordering_no_composition_offsets_or_edit_list():
    packets = [mp4.Packet(b"\0\0\0\1\x65", True, 250 * i) for i in range(3)]
    data = mp4.mux(packets, b"\1\x64\0\x1f\xff\xe1\0\0\1\0\0", [250, 250, 40], 64, 48)
    stbl = [kind for kind, _, _ in boxes(find(data, "moov/trak/mdia/minf/stbl"))]
    assert (
        b"ctts" not in stbl and b"stss" not in stbl and b"edts" not in [k for k, _, _ in boxes(find(data, "moov/trak"))]
    )
    assert shown_durations(data) == [250, 250, 40]


def test_ffmpeg_is_looked_for_in_the_named_file_then_the_layer_then_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "none"))
    with pytest.raises(mp4.EncoderMissing, match="FFMPEG_BINARY"):
        mp4.ffmpeg_path()
    monkeypatch.delenv("FFMPEG_BINARY")
    layer = tmp_path / "opt-bin-ffmpeg"
    layer.write_bytes(b"")
    layer.chmod(0o755)
    monkeypatch.setattr(mp4, "LAYER_BINARY", str(layer))
    assert mp4.ffmpeg_path() == str(layer)
    monkeypatch.setattr(mp4, "LAYER_BINARY", str(tmp_path / "missing"))
    assert mp4.ffmpeg_path() == str(mp4.packaged_ffmpeg())  # the dev lock's imageio-ffmpeg
    monkeypatch.setattr(mp4, "packaged_ffmpeg", lambda: None)
    with pytest.raises(mp4.EncoderMissing, match="the ffmpeg layer"):
        mp4.ffmpeg_path()


# MP4 through ffmpeg --------------------------------------------------------------------------


def decoded(data: bytes, width: int, height: int) -> list[np.ndarray]:
    """The MP4's frames as RGB, decoded by the packaged ffmpeg (BT.709, as tagged)."""
    raw = subprocess.run(
        [mp4.ffmpeg_path(), "-loglevel", "error", "-i", "pipe:0", "-vf", "scale=in_color_matrix=bt709",
         "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"],
        input=data, capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = width * height * 3
    return [np.frombuffer(raw, np.uint8, size, i * size).reshape(height, width, 3) for i in range(len(raw) // size)]


@integration
def test_mp4_frames_durations_size_and_quality():
    frames = [radar_frame(i, 320, 240).convert("RGB") for i in range(8)]
    durations = [250] * 7 + [1500]
    data = mp4.encode_mp4(frames, durations)
    assert [kind for kind, _, _ in boxes(data)] == [b"ftyp", b"moov", b"mdat"]
    assert shown_durations(data) == durations
    assert find(data, "moov/trak/mdia/minf/stbl/stsd")[8 + 4 : 8 + 8] == b"avc1"
    back = decoded(data, 320, 240)
    assert len(back) == 8
    quality = np.mean([webp.psnr(b, np.asarray(f)) for b, f in zip(back, frames)])
    assert quality > 30  # sharp coloured edges in 4:2:0: far from lossless, far from broken


@integration
def test_an_odd_side_loses_its_last_pixel():
    frames = [radar_frame(i, 321, 241) for i in range(3)]
    data = mp4.encode_mp4(frames, [100, 100, 100])
    assert struct.unpack(">HH", find(data, "moov/trak/mdia/minf/stbl/stsd")[8 + 32 : 8 + 36]) == (320, 240)
    assert len(decoded(data, 320, 240)) == 3


@integration
def test_every_format_from_the_same_frames():
    encoded = encode_animation(radar(6), ["mp4", "webp", "gif"], delay=100, last_delay=500, loop=2)
    assert [o.format for o in encoded.outputs] == ["gif", "mp4", "webp"] and encoded.failures == []
    assert all((o.width, o.height) == (320, 240) for o in encoded.outputs)
    sizes = {o.format: len(o.data) for o in encoded.outputs}
    assert sizes["webp"] < sizes["gif"] and sizes["mp4"] < sizes["gif"]
    gif = Image.open(io.BytesIO(encoded.outputs[0].data))
    assert (gif.n_frames, gif.info["loop"]) == (6, 2)


def test_frames_with_alpha_are_composited_over_the_ground_for_the_mp4():
    frame = Image.new("RGBA", (4, 2), (200, 100, 0, 0))
    frame.putpixel((1, 0), (200, 100, 0, 255))
    frame.putpixel((2, 0), (200, 100, 0, 128))
    flat = np.asarray(mp4.flatten(frame))
    ground = np.array(mp4.GROUND)
    assert (flat[1, :] == ground).all() and (flat[0, 0] == ground).all() and (flat[0, 3] == ground).all()
    assert tuple(flat[0, 1]) == (200, 100, 0)
    assert np.abs(flat[0, 2].astype(int) - (np.array([200, 100, 0]) + ground) / 2).max() <= 1
    assert mp4.flatten(Image.new("LA", (2, 2), (255, 0))).getpixel((0, 0)) == mp4.GROUND
    rgb = radar_frame(0)
    assert mp4.flatten(rgb) is rgb


def far_from(opaque: np.ndarray, distance: int) -> np.ndarray:
    """Pixels more than `distance` pixels away (in x or in y) from every pixel `opaque` marks."""
    near = np.zeros_like(opaque)
    padded = np.pad(opaque, distance)
    height, width = opaque.shape
    for dy in range(2 * distance + 1):
        for dx in range(2 * distance + 1):
            near |= padded[dy : dy + height, dx : dx + width]
    return ~near


@integration
def test_a_transparent_overlay_in_every_format():
    """GIF and WebP transparent where the source is (browser-composed, disposal honoured), the MP4
    showing the ground there: every source frame decoded back from each."""
    frames = overlay()
    encoded = encode_animation([f.copy() for f in frames], ["webp", "mp4"], delay=100, last_delay=500)
    assert encoded.failures == []
    data = {o.format: o.data for o in encoded.outputs}
    shown, _ = gif_as_shown(data["gif"])
    back = webp.decode(data["webp"], "RGBA")
    video = decoded(data["mp4"], 320, 240)
    assert len(shown) == len(back) == len(video) == len(frames)
    for number, frame in enumerate(frames):
        alpha, source = alpha_of(frame), np.asarray(frame)
        opaque = alpha == 255
        for name, pixels in (("gif", shown[number]), ("webp", np.asarray(back[number]))):
            assert np.array_equal(pixels[..., 3], alpha), (name, number)
            assert np.array_equal(pixels[opaque, :3], source[opaque, :3]), (name, number)
    ground = np.array(mp4.GROUND)
    for number in (0, len(frames) - 1):  # the first and the last frame
        opaque = alpha_of(frames[number]) == 255
        off = np.abs(video[number].astype(int) - ground).max(axis=2)  # 48 comes back 47: limited range
        assert np.median(off[~opaque]) <= 1 and np.mean(off[~opaque] <= 3) > 0.95, number
        # x264 blurs an echo's sharp edges for some pixels around (less than a macroblock); past that
        # the ground is flat (black, or the colour transparent pixels carry, would be 18 to 60 off)
        far = far_from(opaque, 8)
        assert far.mean() > 0.5 and off[far].max() <= 6, number
    # it is the MP4 of the frames as the GIF shows them, laid over the ground by hand
    laid = []
    for frame in frames:
        ground = Image.new("RGB", frame.size, mp4.GROUND)
        ground.paste(frame.convert("RGB"), mask=Image.fromarray(alpha_of(frame)))
        laid.append(ground)
    assert data["mp4"] == mp4.encode_mp4(laid, gifs.delays(len(frames), 100, 500))


def test_a_failing_format_is_reported_and_the_others_made(monkeypatch):
    monkeypatch.setenv("FFMPEG_BINARY", "/nonexistent/ffmpeg")
    encoded = encode_animation(radar(3), ["gif", "webp", "mp4"])
    assert [o.format for o in encoded.outputs] == ["gif", "webp"]
    [failed] = encoded.failures
    assert failed.format == "mp4" and isinstance(failed.error, mp4.EncoderMissing)


# Messages and the worker ----------------------------------------------------------------------


def gif_request(locations, **extra):
    return {"type": "please-create-gif", "imageId": "temps", "locations": locations, "validTime": 1700000600, **extra}


def test_formats_are_optional_distinct_and_known():
    location = [{"Bucket": "frames", "Key": "a.png"}]
    assert messages.parse(gif_request(location)).wanted() == ["gif"]
    assert messages.parse(gif_request(location, formats=["mp4", "webp"])).wanted() == ["gif", "mp4", "webp"]
    for bad, says in ((["gif", "gif"], "once"), ([], "empty"), (["png"], "one of"), ("mp4", "array")):
        with pytest.raises(messages.MessageError, match=says):
            messages.parse(gif_request(location, formats=bad))
    assert "formats" not in messages.parse(gif_request(location)).to_dict()


class TestWorker:
    def frames(self, aws, count):
        return [aws.put(aws.names.frames_bucket, f"temps/{i}.png", encode(radar_frame(i))) for i in range(count)]

    @integration
    def test_each_format_beside_the_gif(self, aws, invoke_sns):
        invoke_sns("create_gif", gif_request(self.frames(aws, 5), formats=["webp", "mp4"], delay=100, lastDelay=800))
        reply = aws.reply()
        assert reply["type"] == "did-create-gif"
        bucket = aws.names.gifs_bucket
        assert [(o["format"], o["location"]) for o in reply["outputs"]] == [
            (f, {"Bucket": bucket, "Key": f"temps/1700000600.{f}"}) for f in ("gif", "webp", "mp4")
        ]
        assert reply["location"] == reply["outputs"][0]["location"] and reply["bytes"] == reply["outputs"][0]["bytes"]
        for output in reply["outputs"]:
            data = aws.get(**output["location"])
            assert len(data) == output["bytes"]
        head = aws.s3.head_object(Bucket=bucket, Key="temps/1700000600.mp4")
        assert head["ContentType"] == "video/mp4"
        assert shown_durations(aws.get(**reply["outputs"][2]["location"])) == [100] * 4 + [800]

    @integration
    def test_a_transparent_overlay_stays_transparent(self, aws, invoke_sns):
        """The frames as a WMS layer gives them (RGBA PNG, no basemap) through the worker."""
        frames = [radar_overlay(i) for i in range(4)]
        locations = [
            aws.put(aws.names.frames_bucket, f"temps/{i}.png", encode(frame)) for i, frame in enumerate(frames)
        ]
        invoke_sns("create_gif", gif_request(locations, formats=["webp", "mp4"]))
        reply = aws.reply()
        assert reply["type"] == "did-create-gif"
        data = {o["format"]: aws.get(**o["location"]) for o in reply["outputs"]}
        shown, _ = gif_as_shown(data["gif"])
        back = webp.decode(data["webp"], "RGBA")
        for number, frame in enumerate(frames):
            assert np.array_equal(shown[number][..., 3], alpha_of(frame)), number
            assert np.array_equal(np.asarray(back[number])[..., 3], alpha_of(frame)), number
        corner = decoded(data["mp4"], 320, 240)[0][200:, :40]  # far from the echo and the label
        assert np.abs(corner.astype(int) - np.array(mp4.GROUND)).max() <= 3

    @integration
    def test_a_format_that_fails_is_a_did_fail_naming_it(self, aws, invoke_sns, monkeypatch):
        monkeypatch.setenv("FFMPEG_BINARY", "/nonexistent/ffmpeg")
        invoke_sns("create_gif", gif_request(self.frames(aws, 3), formats=["mp4", "webp"], runId="r1"))
        replies = {r["type"]: r for r in aws.replies()}
        assert set(replies) == {"did-create-gif", "did-fail-create-gif"}
        failed = replies["did-fail-create-gif"]
        assert failed["format"] == "mp4" and "FFMPEG_BINARY" in failed["error"] and failed["runId"] == "r1"
        assert failed["request"]["formats"] == ["mp4", "webp"]
        assert [o["format"] for o in replies["did-create-gif"]["outputs"]] == ["gif", "webp"]
        assert aws.keys(aws.names.gifs_bucket) == ["temps/1700000600.gif", "temps/1700000600.webp"]

    @integration
    def test_no_formats_no_outputs(self, aws, invoke_sns):
        invoke_sns("create_gif", gif_request(self.frames(aws, 2)))
        reply = aws.reply()
        assert "outputs" not in reply and aws.keys(aws.names.gifs_bucket) == ["temps/1700000600.gif"]


# Chromium plays the MP4 to its last frame, and shows transparent GIFs and WebPs as their frames ---


@integration
@needs_chromium
def test_chromium_plays_the_mp4_to_its_last_frame_for_its_duration(tmp_path):
    from playwright.sync_api import sync_playwright

    frames = [radar_frame(i, 320, 240) for i in range(6)]
    durations = [200] * 5 + [1200]
    (tmp_path / "loop.mp4").write_bytes(mp4.encode_mp4(frames, durations))
    (tmp_path / "index.html").write_text('<video id="v" muted playsinline src="loop.mp4"></video>')
    script = """() => new Promise((resolve) => {
      const v = document.getElementById('v'); const shown = [];
      const seen = (now, meta) => { shown.push([meta.mediaTime, now]); v.requestVideoFrameCallback(seen); };
      v.requestVideoFrameCallback(seen);
      v.onerror = () => resolve({error: v.error && v.error.message});
      v.onended = () => resolve({duration: v.duration, width: v.videoWidth, height: v.videoHeight, shown,
                                 ended: performance.now()});
      v.play().catch((e) => resolve({error: String(e)}));
      setTimeout(() => resolve({timeout: v.currentTime, shown}), 20000);
    })"""
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page()
        page.goto((tmp_path / "index.html").as_uri())
        played = page.evaluate(script)
        browser.close()
    assert "error" not in played and "timeout" not in played, played
    assert (played["duration"], played["width"], played["height"]) == (2.2, 320, 240)
    times = [round(media, 3) for media, _ in played["shown"]]
    assert times[-1] == 1.0  # the last frame, shown at 5 x 200 ms
    last_shown = played["shown"][-1][1]
    assert 1000 <= played["ended"] - last_shown <= 2000, played  # for its 1,200 ms, give or take a frame


@integration
@needs_chromium
def test_chromium_shows_a_transparent_overlay_as_its_frames(tmp_path):
    """Chromium's own decoders (WebCodecs' ImageDecoder: each frame composed, disposal and blending
    honoured), frame by frame and the first again after the last, as a loop shows it."""
    from playwright.sync_api import sync_playwright

    frames = overlay()
    encoded = encode_animation([f.copy() for f in frames], ["webp"], delay=100)
    (tmp_path / "index.html").write_text("<html></html>")  # a file: ImageDecoder wants a secure context
    script = """async ([data, type]) => {
      const decoder = new ImageDecoder({data: Uint8Array.from(atob(data), (c) => c.charCodeAt(0)), type});
      await decoder.tracks.ready;
      const count = decoder.tracks.selectedTrack.frameCount, shown = [];
      for (const index of [...Array(count).keys(), 0]) {
        const {image} = await decoder.decode({frameIndex: index});
        const canvas = new OffscreenCanvas(image.displayWidth, image.displayHeight);
        canvas.getContext('2d').drawImage(image, 0, 0);
        image.close();
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let text = '';
        for (let i = 0; i < pixels.length; i += 8192) text += String.fromCharCode(...pixels.subarray(i, i + 8192));
        shown.push(btoa(text));
      }
      return shown;
    }"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"])
        page = browser.new_page()
        page.goto((tmp_path / "index.html").as_uri())
        shown = {
            o.format: page.evaluate(script, [base64.b64encode(o.data).decode(), f"image/{o.format}"])
            for o in encoded.outputs
        }
        browser.close()
    for name, pictures in shown.items():
        assert len(pictures) == len(frames) + 1, name
        for number, picture in enumerate(pictures):
            frame = frames[number % len(frames)]
            pixels = np.frombuffer(base64.b64decode(picture), np.uint8).reshape(240, 320, 4)
            alpha, opaque = alpha_of(frame), alpha_of(frame) == 255
            assert np.array_equal(pixels[..., 3], alpha), (name, number)
            assert np.array_equal(pixels[opaque, :3], np.asarray(frame)[opaque, :3]), (name, number)
