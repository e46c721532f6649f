"""Who may change things, and read what reveals people: a bearer token from configuration
(API_TOKEN, or the SSM parameter API_TOKEN_PARAMETER names, which the authorizer and the
API's own function may read).

Works the same under `chalice local` and API Gateway (a Chalice built-in authorizer).
With no token configured, nothing that changes state is allowed. Public routes that show
more to the token's holder (email recipients) check the same token with `holds_token`.
"""

from __future__ import annotations

import hmac
from typing import Any

from chalice import AuthResponse

from ..credentials import api_token

HIDDEN = "the reason is shown with the API token (it may name email addresses)"


def token_matches(header: str | None) -> bool:
    """An Authorization header value ("Bearer <token>") that carries the configured token."""
    given = (header or "").removeprefix("Bearer ").strip()
    if not given:  # nothing to compare: no need to read the secret
        return False
    try:
        expected = api_token()
    except Exception as exc:  # no token to be had: nobody may change anything
        from ..log import logger

        logger.error(f"no API token configured: {type(exc).__name__}: {exc}")
        expected = ""
    return bool(expected) and hmac.compare_digest(given.encode(errors="replace"), expected.encode())


def authorize(auth_request: Any) -> AuthResponse:
    if token_matches(auth_request.token):
        return AuthResponse(routes=["*"], principal_id="api-token")
    return AuthResponse(routes=[], principal_id="anonymous")


def holds_token(request: Any) -> bool:
    """Whether a request to a public route carries the valid token (else it sees the public view)."""
    return token_matches((request.headers or {}).get("authorization"))
