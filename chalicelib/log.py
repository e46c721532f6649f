"""Structured JSON logging (Powertools Logger), one logger for the whole app."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "weathergif"))
