"""S3 objects: deterministic keys, reads that name what is missing, concurrent reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .aws import client
from .errors import MissingObject
from .messages import Location

T = TypeVar("T")
READ_THREADS = 8


def frame_key(image_id: str, valid_time: int, width: int, height: int, extension: str) -> str:
    return f"{image_id}/{width}x{height}/{valid_time}.{extension}"


def thumbnail_key(image_id: str, valid_time: int, width: int, height: int, mode: str, extension: str) -> str:
    return f"{image_id}/{width}x{height}-{mode}/{valid_time}.{extension}"


def gif_key(image_id: str, valid_time: int) -> str:
    return f"{image_id}/{valid_time}.gif"


# What S3 answers for an object that is not there, or for a key or bucket it can never hold.
_NOT_THERE = {"NoSuchKey", "404", "NotFound"}
_NEVER = {"NoSuchBucket", "InvalidArgument", "KeyTooLongError", "InvalidBucketName"}


def get_bytes(location: Location) -> bytes:
    from botocore.exceptions import ClientError

    try:
        response = client("s3").get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _NOT_THERE:
            raise MissingObject(f"s3://{location.bucket}/{location.key} does not exist") from None
        if code in _NEVER:
            raise MissingObject(f"s3://{location.bucket}/{location.key!r} cannot be read: {code}") from None
        raise  # throttling, a 5xx, access denied: may pass
    return response["Body"].read()


def put_bytes(bucket: str, key: str, data: bytes, content_type: str, **metadata: Any) -> Location:
    client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        Metadata={name: str(value) for name, value in metadata.items()},
    )
    return Location(Bucket=bucket, Key=key)


def read_all(locations: Sequence[Location], then: Callable[[int, bytes], T]) -> list[T]:
    """Read every object concurrently and apply `then(index, data)`, keeping order."""

    def one(indexed: tuple[int, Location]) -> T:
        index, location = indexed
        return then(index, get_bytes(location))

    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(locations)) or 1) as pool:
        return list(pool.map(one, enumerate(locations)))
