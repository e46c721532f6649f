"""Structured JSON logging (Powertools Logger), one logger for the whole app.

Every record it, the root logger and the HTTP library's loggers make is redacted with the
request's redactor (chalicelib.redaction): the map source's keys never reach a log line.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

from .redaction import install as _install_redaction

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "weathergif"))
_install_redaction(logger)
