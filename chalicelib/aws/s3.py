"""S3: objects read and written by location, concurrent reads, presigned GETs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..threads import in_context
from ..errors import MissingObject
from ..messages import Location
from .clients import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

T = TypeVar("T")
READ_THREADS = 8
# What S3 answers for an object that is not there, or for a key or bucket it can never hold. S3 tells a
# missing key (404 NoSuchKey) only to a caller that may s3:ListBucket the bucket, and answers any other
# 403 AccessDenied: each function that reads here may list what it reads (deploy/policies.py).
#
# AccessDenied stays an error that may pass (raised: Lambda retries the event twice, then it lands in
# the worker failure queue, which alarms, and becomes a did-fail there): with the missing key told
# apart, it means the role may not read the object, which a policy just deployed (IAM's changes take
# a while to reach every request) or an operator's fix mends, and it is the operator's to see, not a
# frame's failure to record at once. Throttling (SlowDown) and 5xx may pass too.
_NOT_THERE = {"NoSuchKey", "404", "NotFound"}
_NEVER = {"NoSuchBucket", "InvalidArgument", "KeyTooLongError", "InvalidBucketName"}


class Objects:
    def __init__(self, client: S3Client):
        self._s3 = client
        if not knows(client, "PutObject", "IfNoneMatch"):
            send_as_header(client, "PutObject", "IfNoneMatch", "If-None-Match")

    def get(self, location: Location) -> bytes:
        """The object's bytes; MissingObject (never retried) when it is not there or cannot be."""
        try:
            response = self._s3.get_object(Bucket=location.bucket, Key=location.key)
        except Exception as exc:
            code = error_code(exc)
            if code in _NOT_THERE:
                raise MissingObject(f"s3://{location.bucket}/{location.key} does not exist") from None
            if code in _NEVER:
                raise MissingObject(f"s3://{location.bucket}/{location.key!r} cannot be read: {code}") from None
            raise  # throttling, a 5xx, access denied: may pass (see _NOT_THERE)
        return response["Body"].read()

    def put(self, bucket: str, key: str, data: bytes, content_type: str, **metadata: Any) -> Location:
        self._s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={name: str(value) for name, value in metadata.items()},
        )
        return Location(bucket=bucket, key=key)

    def put_new(self, bucket: str, key: str, data: bytes, content_type: str, **metadata: Any) -> bool:
        """Put the object only if there is none at `key` yet (S3's If-None-Match); False when there
        was one (another writer's came first, or is being written: 409 ConditionalRequestConflict)."""
        try:
            self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={name: str(value) for name, value in metadata.items()},
                IfNoneMatch="*",
            )
        except Exception as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise
        return True

    def read_all(self, locations: Sequence[Location], then: Callable[[int, bytes], T]) -> list[T]:
        """Read every object concurrently and apply `then(index, data)`, keeping order."""

        def one(indexed: tuple[int, Location]) -> T:
            index, location = indexed
            return then(index, self.get(location))

        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(locations)) or 1) as pool:
            return list(pool.map(in_context(one), enumerate(locations)))

    def presign(self, location: Location, expiry: int) -> str:
        """A GET URL for the object, signed with this function's credentials (it ends with them)."""
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=expiry
        )

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; how many there were."""
        count = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                count += len(keys)
        return count

    def check(self, bucket: str) -> None:
        """Raises unless the bucket answers (the health route)."""
        self._s3.head_bucket(Bucket=bucket)


def knows(client: Any, operation: str, member: str) -> bool:
    """Whether the botocore a client runs on has `member` among the operation's parameters."""
    return member in client.meta.service_model.operation_model(operation).input_shape.members


def send_as_header(client: Any, operation: str, member: str, header: str) -> None:
    """Let `client` take `member` for `operation` although its botocore does not know it: the parameter
    is taken off before botocore checks the parameters and sent as the HTTP `header` newer botocore
    sends it as (S3 reads the header alike). The python3.11 runtime's botocore (1.34) predates S3's
    conditional writes (IfNoneMatch on PutObject came with 1.35)."""
    key = f"weathergif:{member}"

    def take(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if member in params:
            context[key] = params.pop(member)

    def send(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if key in context:
            params["headers"][header] = context[key]

    service = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events
    events.register(f"before-parameter-build.{service}.{operation}", take, unique_id=f"{key}:take")
    events.register(f"before-call.{service}.{operation}", send, unique_id=f"{key}:send")
