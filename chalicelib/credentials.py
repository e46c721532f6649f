"""The secrets the app reads: the map sources' keys and the REST API's token, from the environment
or from SSM SecureStrings (read through the door to AWS, once per container). Nothing else of the
configuration needs AWS: chalicelib.settings and chalicelib.sources read the environment alone."""

from __future__ import annotations

import os

from .settings import API_TOKEN_PARAMETER, MAP_KEYS_PARAMETER
from .sources import Source


def source_keys(source: Source) -> tuple[str, str]:
    """A source's keys (client_id, client_secret): the legacy source's as before (map_keys), a
    configured one's from its SSM SecureString holding "client_id:client_secret" (once per container
    per parameter); ("", "") for a source with no keys. The fetcher asks only when the source's
    template has a key placeholder."""
    if source.legacy:
        return map_keys()
    if not source.keys_parameter:
        return "", ""
    client_id, _, client_secret = secret(source.keys_parameter).partition(":")
    return client_id.strip(), client_secret.strip()


def map_keys() -> tuple[str, str]:
    """The map source's keys: MAP_CLIENT_ID and MAP_CLIENT_SECRET, or else the SSM
    SecureString parameter MAP_KEYS_PARAMETER names, holding "client_id:client_secret".
    The fetcher asks only when its URL template has a key placeholder."""
    client_id, client_secret = os.environ.get("MAP_CLIENT_ID", ""), os.environ.get("MAP_CLIENT_SECRET", "")
    parameter = os.environ.get(MAP_KEYS_PARAMETER, "")
    if client_id or not parameter:
        return client_id, client_secret
    client_id, _, client_secret = secret(parameter).partition(":")
    return client_id.strip(), client_secret.strip()


def api_token() -> str:
    """The REST API's token: API_TOKEN, or else the SSM SecureString API_TOKEN_PARAMETER names."""
    token, parameter = os.environ.get("API_TOKEN", ""), os.environ.get(API_TOKEN_PARAMETER, "")
    return token if token or not parameter else secret(parameter).strip()


def secret(parameter: str) -> str:
    """An SSM SecureString, read once per container: secrets do not change while it lives."""
    from .aws import parameters

    return parameters().secret(parameter)
