"""Structured JSON logging (Powertools Logger), one logger for the whole app.

Every record it, the root logger and the HTTP library's loggers make is redacted with the
request's redactor (chalicelib.redaction): the map source's keys never reach a log line,
and the AWS SDK's own DEBUG lines (whole responses) are never written.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger

from .redaction import install as _install_redaction

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "weathergif"))
_install_redaction(logger)
# botocore logs whole responses at DEBUG (an SSM SecureString's value among them) before anyone
# could know what to redact in them: its loggers stay at INFO whatever the root logger's level.
for _name in ("botocore", "boto3", "s3transfer"):
    logging.getLogger(_name).setLevel(max(logging.INFO, logging.getLogger(_name).level))
