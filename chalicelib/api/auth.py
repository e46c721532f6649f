"""Who may change things: a bearer token from configuration (API_TOKEN, or the SSM
parameter API_TOKEN_PARAMETER names).

Works the same under `chalice local` and API Gateway (a Chalice built-in authorizer).
With no token configured, nothing that changes state is allowed.
"""

from __future__ import annotations

import hmac
from typing import Any

from chalice import AuthResponse

from ..settings import api_token


def authorize(auth_request: Any) -> AuthResponse:
    try:
        expected = api_token()
    except Exception as exc:  # no token to be had: nobody may change anything
        from ..log import logger

        logger.error(f"no API token configured: {type(exc).__name__}: {exc}")
        expected = ""
    given = (auth_request.token or "").removeprefix("Bearer ").strip()
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return AuthResponse(routes=["*"], principal_id="api-token")
    return AuthResponse(routes=[], principal_id="anonymous")
