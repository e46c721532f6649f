"""Where results live in S3: deterministic keys (the same request writes the same key).

Reads and writes go through the S3 adapter, chalicelib.aws.objects()."""

from __future__ import annotations


def frame_key(
    image_id: str, valid_time: int, width: int, height: int, extension: str, run_time: int | None = None
) -> str:
    """A frame; a forecast's under its run, so that two runs' frames for one valid time are kept apart."""
    run = "" if run_time is None else f"run-{run_time}/"
    return f"{image_id}/{width}x{height}/{run}{valid_time}.{extension}"


def basemap_key(image_id: str, width: int, height: int, view: str) -> str:
    """The basemap of a view (`view`: a digest of its source, layers, size, center and zoom), beside its frames."""
    return f"{image_id}/{width}x{height}/basemap-{view}.png"


def thumbnail_key(
    image_id: str, valid_time: int, width: int, height: int, mode: str, extension: str, run_time: int | None = None
) -> str:
    run = "" if run_time is None else f"run-{run_time}/"
    return f"{image_id}/{width}x{height}-{mode}/{run}{valid_time}.{extension}"


def upload_thumbnail_key(upload_key: str, extension: str) -> str:
    return f"uploads/{upload_key[: upload_key.rindex('.')]}.{extension}"


def gif_key(image_id: str, valid_time: int, run_time: int | None = None) -> str:
    """A GIF, by its newest frame; a forecast run's, by its run."""
    return f"{image_id}/run-{run_time}.gif" if run_time is not None else f"{image_id}/{valid_time}.gif"
