"""What the local commands print: each line once.

The app's lines are JSON on stdout, through its own logger's handler (chalicelib/log.py), as
Lambda writes them to CloudWatch. The local tools' lines (the event runtime's one line per
invocation, in the place of Lambda's own REPORT line) are plain text on stderr, through the root
logger's handler. The app's logger sends its records on to the root logger too, where tests and
Lambda's runtime read them (Lambda's handler filters them out); here that would print them a
second time, as plain text, so the local commands stop them at the app's logger.
"""

from __future__ import annotations

import logging
import os

RUNTIME = "local.runtime"  # the event runtime's line per invocation


def configure(level: int = logging.WARNING, runtime: int = logging.INFO, app: str = "WARNING") -> None:
    """Plain lines of `level` and up on stderr (the event runtime's from `runtime` up); the app's
    lines from `app` up (unless POWERTOOLS_LOG_LEVEL says otherwise) once, as JSON on stdout."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", app)
    from chalicelib.log import NAME, logger

    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger(RUNTIME).setLevel(runtime)
    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])  # the logger may be older than the variable
    logging.getLogger(NAME).propagate = False
    for name in ("botocore", "boto3", "s3transfer"):  # "Found credentials in environment variables", ...
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
