"""Structured JSON logging (Powertools Logger), one logger for the whole app.

Every record it, the root logger and the HTTP library's loggers make is redacted with the
request's redactor (chalicelib.redaction): the map source's keys never reach a log line,
and the AWS SDK's own DEBUG lines (whole responses) are never written.

The correlation id belongs to the invocation, not to the logger. Powertools keeps what
`set_correlation_id` and `append_keys` set in its formatter, one per logger and so shared by
every thread of the process: under concurrency (the local event runtime runs handlers at once,
and a handler's own threads log too) a line took whatever id another invocation set last. Here
`set_correlation_id` sets a context variable, which a filter puts on each record as it is made
(`correlation_id`, where Powertools' JSON has it). Threads that work for an invocation run in a
copy of its context (chalicelib.threads.in_context) and log its id; `scope` gives each invocation
a fresh one (chalicelib.telemetry.invocation opens it around every handler). Values of a single
line go in `extra=`; `append_keys` stays the logger's, for what every line of the process shares.

The app's records go out once, through Powertools' handler (JSON on stdout). app.py's Chalice
leaves the logger of its name, which is this one's, alone (configure_logs=False): it would add a
plain handler beside this one, and every line would be printed twice.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger

from .redaction import install as _install_redaction

NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "weathergif")  # the app's logger

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


class ContextLogger(Logger):
    """Powertools' Logger, whose correlation id is the current context's (see the module's doc)."""

    def set_correlation_id(self, value: str | None) -> None:
        _correlation_id.set(value)

    def get_correlation_id(self) -> str | None:
        return _correlation_id.get()


class CorrelationFilter(logging.Filter):
    """Puts the current context's correlation id on each record (one given in `extra=` is kept).
    Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _correlation_id.get()
        return True


CORRELATION = CorrelationFilter()


def set_correlation_id(value: str | None) -> None:
    """The correlation id of the lines the current context logs from now on."""
    _correlation_id.set(value)


def correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def scope() -> Iterator[None]:
    """An invocation's lines: no correlation id until it sets one, and the one before it back after."""
    token = _correlation_id.set(None)
    try:
        yield
    finally:
        _correlation_id.reset(token)


logger = ContextLogger(service=NAME)
logger.addFilter(CORRELATION)  # the app's own records
logger.registered_handler.addFilter(CORRELATION)  # and any other that its handler prints
_install_redaction(logger)
# botocore logs whole responses at DEBUG (an SSM SecureString's value among them) before anyone
# could know what to redact in them: its loggers stay at INFO whatever the root logger's level.
for _name in ("botocore", "boto3", "s3transfer"):
    logging.getLogger(_name).setLevel(max(logging.INFO, logging.getLogger(_name).level))
