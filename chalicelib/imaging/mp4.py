"""Animations as H.264 MP4 (yuv420p, moov before mdat): x264 through a static ffmpeg, muxed here.

ffmpeg is a static binary (no library it links to, so no glibc it needs): imageio-ffmpeg's build
of ffmpeg 4.2.2 with libx264. On Lambda it comes in a layer of its own that only the GIF worker
carries (deploy/ffmpeg_layer.py), at /opt/bin/ffmpeg; in development the same binary comes with
the imageio-ffmpeg package of the dev lock; FFMPEG_BINARY names another.

The frames go to ffmpeg as raw RGB through a pipe; it converts them to BT.709 limited-range
yuv420p and x264 encodes them (CRF, a fast preset, no B-frames); what comes back is FLV, read
here only for its packets: the AVC configuration, each frame's NAL units, key frames, and each
frame's place in display order. The MP4 is written here, so that every frame is shown for
exactly its own duration (the last one's too: a GIF's `lastDelay`), with the sample table up
front for playing while it loads (what `-movflags +faststart` does). A loop is the player's
(`<video loop>`): MP4 has no loop count.

No B-frames: with them, Chromium playing the loop (`<video loop>`) came round after the last
frame had been shown for a frame's delay, not for its own, though the sample table says it by
the book (each frame's time from its composition offset): frames decoded in the order they are
shown leave a player nothing to reorder. They cost 4% more bytes on a radar loop of 12 frames at
800 x 600, 13% on a smooth temperature field. The muxer still writes the offsets of a stream
that has reordering (`timeline`).

H.264 has no alpha: frames with transparency (an overlay with no basemap under it) are composited
over GROUND, a neutral dark grey, as they are piped to ffmpeg.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from ..errors import PermanentError

CRF = 23  # x264's default quality, as ffmpeg's CLI uses it
PRESET = "veryfast"
# Lighter than veryfast's hexagon search and subpixel refinement (me=hex, subme=2): weather maps move
# slowly, and these cost the most CPU for what they give.
X264_PARAMS = "me=dia:subme=1"
TIMESCALE = 1000  # the MP4's clock: milliseconds, the unit of a GIF's delays
LAYER_BINARY = "/opt/bin/ffmpeg"  # where the ffmpeg layer puts it (/opt/bin is on Lambda's PATH)
FFMPEG_TIMEOUT = 60  # seconds
# What shows through a transparent pixel: a dark neutral grey, chosen rather than black by
# accident. Radar scales are drawn for dark grounds: on white the NWS scale's yellow, light green,
# cyan and top (white) levels keep a contrast ratio of 1.0-1.5 (WCAG's, of luminance); on this
# grey its dark blue 1.45 (it stands out by hue), every other level 2.0-13. Black would read as
# a dark basemap; a grey has no chroma to bleed into an echo's edges through 4:2:0.
GROUND = (48, 48, 48)


class EncoderMissing(PermanentError):
    """No ffmpeg: the function needs the ffmpeg layer (or FFMPEG_BINARY)."""


class EncodeError(PermanentError):
    """ffmpeg refused the frames, or gave what is not one H.264 frame per frame."""


def ffmpeg_path() -> str:
    """The ffmpeg to run: FFMPEG_BINARY; else the layer's; else the imageio-ffmpeg package's."""
    named = os.environ.get("FFMPEG_BINARY")
    if named:
        if not os.access(named, os.X_OK):
            raise EncoderMissing(f"FFMPEG_BINARY={named} is not an executable file")
        return named
    if os.access(LAYER_BINARY, os.X_OK):
        return LAYER_BINARY
    packaged = packaged_ffmpeg()
    if packaged is not None:
        return str(packaged)
    raise EncoderMissing(
        f"no ffmpeg: not at {LAYER_BINARY} (the ffmpeg layer, deploy/ffmpeg_layer.py), "
        "no imageio-ffmpeg package, no FFMPEG_BINARY"
    )


def packaged_ffmpeg() -> Path | None:
    """The static ffmpeg in the imageio-ffmpeg package, if it is installed (found without importing it)."""
    spec = importlib.util.find_spec("imageio_ffmpeg")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder, "binaries").glob("ffmpeg-linux*"))
        if found and os.access(found[0], os.X_OK):
            return found[0]
    return None


def encode_mp4(
    frames: Sequence[Image.Image],
    durations: Sequence[int],
    *,
    crf: int = CRF,
    preset: str = PRESET,
    x264_params: str = X264_PARAMS,
) -> bytes:
    """Frames of one size, each shown for its duration (ms), as H.264 in MP4 bytes (of the frames'
    size, an odd side less its last pixel: even_size). RGB; frames of other modes are converted,
    those with alpha composited over GROUND."""
    if not frames or len(frames) != len(durations):
        raise ValueError("an MP4 needs frames and a duration for each")
    packets, config = _encode(frames, durations[0], crf, preset, x264_params)
    if len(packets) != len(frames):
        raise EncodeError(f"ffmpeg gave {len(packets)} frames for {len(frames)}")
    return mux(packets, config, durations, *even_size(*frames[0].size))


def even_size(width: int, height: int) -> tuple[int, int]:
    """The MP4's size for frames of this size: yuv420p's chroma covers 2x2 pixels, so an odd side
    loses its last column or row."""
    if width < 2 or height < 2:
        raise EncodeError(f"an MP4 needs frames of at least 2x2 pixels, not {width}x{height}")
    return width - width % 2, height - height % 2


def _encode(
    frames: Sequence[Image.Image], delay: int, crf: int, preset: str, x264_params: str
) -> tuple[list[Packet], bytes]:
    width, height = frames[0].size
    # 4:2:0 takes even sides: an odd side loses its last column or row (see even_size)
    even = even_size(width, height)
    crop = f"crop={even[0]}:{even[1]}:0:0," if even != (width, height) else ""
    command = [
        ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-threads", "1",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", f"1000/{delay}", "-i", "pipe:0",
        "-vf", f"{crop}scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-threads", "1", "-bf", "0",
        *(("-x264-params", x264_params) if x264_params else ()),
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-f", "flv", "pipe:1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    out: list[bytes] = []
    errors: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(process.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    try:
        for frame in frames:
            process.stdin.write(flatten(frame).tobytes())
        process.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg stopped early: its error says why
    try:
        code = process.wait(timeout=FFMPEG_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise EncodeError(f"ffmpeg took more than {FFMPEG_TIMEOUT} s") from None
    for reader in readers:
        reader.join()
    if code != 0:
        said = b"".join(errors).decode(errors="replace").strip()[-1000:]
        raise EncodeError(f"ffmpeg exited {code}: {said}")
    return read_flv(b"".join(out))


def flatten(frame: Image.Image) -> Image.Image:
    """The frame in RGB: as it is, or composited over GROUND where it has alpha."""
    if frame.mode == "RGB":
        return frame
    if not frame.has_transparency_data:
        return frame.convert("RGB")
    ground = Image.new("RGBA", frame.size, (*GROUND, 255))
    return Image.alpha_composite(ground, frame.convert("RGBA")).convert("RGB")


class Packet(NamedTuple):
    """One frame's H.264 access unit (NAL units, each after its 4-byte length), as decoded in turn."""

    data: bytes
    key: bool
    shown: int  # its time on ffmpeg's clock (ms): the order frames are shown in


def read_flv(data: bytes) -> tuple[list[Packet], bytes]:
    """The video packets of an FLV stream and its AVC decoder configuration (avcC's body)."""
    if data[:3] != b"FLV" or len(data) < 13:
        raise EncodeError("ffmpeg's output is not FLV")
    at = struct.unpack(">I", data[5:9])[0] + 4  # past the header and PreviousTagSize0
    packets: list[Packet] = []
    config = b""
    while at + 11 <= len(data):
        kind = data[at]
        size = int.from_bytes(data[at + 1 : at + 4], "big")
        time = int.from_bytes(data[at + 4 : at + 7], "big") | data[at + 7] << 24
        body = data[at + 11 : at + 11 + size]
        at += 11 + size + 4
        if kind != 9 or len(body) < 5:
            continue
        if body[0] & 0x0F != 7:
            raise EncodeError("ffmpeg's output is not AVC")
        offset = int.from_bytes(body[2:5], "big", signed=True)  # composition time: shown minus decoded
        if body[1] == 0:
            config = bytes(body[5:])
        elif body[1] == 1:
            packets.append(Packet(bytes(body[5:]), body[0] >> 4 == 1, time + offset))
    if not config:
        raise EncodeError("ffmpeg's output has no AVC configuration")
    return packets, config


# MP4 ---------------------------------------------------------------------------------------------


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """(count, value) runs, as stts and ctts write them."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value:
            runs[-1] = (runs[-1][0] + 1, value)
        else:
            runs.append((1, value))
    return runs


def timeline(packets: Sequence[Packet], durations: Sequence[int]) -> tuple[list[int], list[int], int]:
    """For packets in decoding order: each one's decoding time, composition offset and the delay
    before the first is shown (the edit list's media time), on TIMESCALE, from the frames' own
    durations. Frame k is shown from the sum of the durations before it, for its own; decoding
    times are those same times in turn, and each composition offset is at least 0."""
    order = sorted(range(len(packets)), key=lambda i: packets[i].shown)
    position = [0] * len(packets)
    for place, index in enumerate(order):
        position[index] = place  # the packet decoded index-th is shown place-th
    starts = [0]
    for duration in durations[:-1]:
        starts.append(starts[-1] + duration)
    decoded = starts[: len(packets)]
    shift = max(0, *(decoded[i] - starts[position[i]] for i in range(len(packets))))
    offsets = [starts[position[i]] + shift - decoded[i] for i in range(len(packets))]
    return decoded, offsets, shift


def mux(packets: Sequence[Packet], config: bytes, durations: Sequence[int], width: int, height: int) -> bytes:
    """An MP4 of one H.264 track: ftyp, moov (sample tables up front), mdat."""
    decoded, offsets, shift = timeline(packets, durations)
    shown = sum(durations)  # what the movie shows: every frame for its duration
    # decoding-time deltas: each to the next; the last so the media ends as the last frame shown does
    deltas = [b - a for a, b in zip(decoded, decoded[1:])] + [shown + shift - decoded[-1]]
    media = sum(deltas)
    stts = _runs(deltas)
    table = [
        _full(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(config, width, height)),
        _full(b"stts", 0, 0, struct.pack(">I", len(stts)), *(struct.pack(">II", n, v) for n, v in stts)),
    ]
    if any(offsets):
        ctts = _runs(offsets)
        table.append(_full(b"ctts", 0, 0, struct.pack(">I", len(ctts)), *(struct.pack(">II", n, v) for n, v in ctts)))
    if not all(packet.key for packet in packets):
        keys = [i + 1 for i, packet in enumerate(packets) if packet.key]
        table.append(_full(b"stss", 0, 0, struct.pack(">I", len(keys)), *(struct.pack(">I", k) for k in keys)))
    table += [
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(packets), 1)),  # one chunk of every sample
        _full(b"stsz", 0, 0, struct.pack(">II", 0, len(packets)), *(struct.pack(">I", len(p.data)) for p in packets)),
    ]

    def moov(chunk_offset: int) -> bytes:
        stco = _full(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset))
        minf = _box(
            b"minf",
            _full(b"vmhd", 0, 1, bytes(8)),
            _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
            _box(b"stbl", *table, stco),
        )
        mdia = _box(
            b"mdia",
            _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, media, 0x55C4, 0)),  # language "und"
            _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\0"),
            minf,
        )
        edit = _box(b"edts", _full(b"elst", 0, 0, struct.pack(">IIiHH", 1, shown, shift, 1, 0))) if shift else b""
        tkhd = _full(
            b"tkhd", 0, 3, struct.pack(">IIIII8xhhhH", 0, 0, 1, 0, shown, 0, 0, 0, 0), _MATRIX,
            struct.pack(">II", width << 16, height << 16),
        )  # fmt: skip
        mvhd = _full(
            b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, shown), struct.pack(">IH10x", 0x10000, 0x100),
            _MATRIX, bytes(24), struct.pack(">I", 2),
        )  # fmt: skip
        return _box(b"moov", mvhd, _box(b"trak", tkhd, edit, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    head = len(ftyp) + len(moov(0)) + 8  # the first sample's offset: after ftyp, moov and mdat's header
    samples = b"".join(packet.data for packet in packets)
    return ftyp + moov(head) + struct.pack(">I", 8 + len(samples)) + b"mdat" + samples


def _avc1(config: bytes, width: int, height: int) -> bytes:
    """The visual sample entry of H.264 with its decoder configuration."""
    return _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
        struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
        struct.pack(">Hh", 0x18, -1), _box(b"avcC", config),
    )  # fmt: skip
