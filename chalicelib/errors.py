"""Errors that say a request can never succeed (no retry: a did-fail reply instead).

Anything else a worker raises is treated as passing (a timeout, throttling, a 5xx)
and left to the platform's retries.
"""


class PermanentError(Exception):
    """Retrying cannot help: bad input, a missing object, a refused source."""


class ImageError(PermanentError):
    """The bytes are not an image we can use (not one, truncated, too many pixels)."""


class SourceError(PermanentError):
    """The map source refused the request or answered something unusable."""


class ServiceException(SourceError):
    """The map source answered an OGC exception report (a WMS ServiceException) for a frame."""


class MissingObject(PermanentError):
    """An S3 object the request names does not exist."""
