"""SSM Parameter Store: SecureString secrets, read once per container."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
else:
    SSMClient = Any


class Parameters:
    def __init__(self, client: SSMClient):
        self._ssm = client

    @functools.cache  # noqa: B019 (one Parameters per container: secrets do not change while it lives)
    def secret(self, name: str) -> str:
        return self._ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
