"""Where results live in S3: deterministic keys (the same request writes the same key).

Reads and writes go through the S3 adapter, chalicelib.aws.objects()."""

from __future__ import annotations


def frame_key(image_id: str, valid_time: int, width: int, height: int, extension: str) -> str:
    return f"{image_id}/{width}x{height}/{valid_time}.{extension}"


def thumbnail_key(image_id: str, valid_time: int, width: int, height: int, mode: str, extension: str) -> str:
    return f"{image_id}/{width}x{height}-{mode}/{valid_time}.{extension}"


def upload_thumbnail_key(upload_key: str, extension: str) -> str:
    return f"uploads/{upload_key[: upload_key.rindex('.')]}.{extension}"


def gif_key(image_id: str, valid_time: int) -> str:
    return f"{image_id}/{valid_time}.gif"
