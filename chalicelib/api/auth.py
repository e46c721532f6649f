"""Who may change things: a bearer token from configuration (API_TOKEN).

Works the same under `chalice local` and API Gateway (a Chalice built-in authorizer).
With no API_TOKEN configured, nothing that changes state is allowed.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from chalice import AuthResponse


def authorize(auth_request: Any) -> AuthResponse:
    expected = os.environ.get("API_TOKEN", "")
    given = (auth_request.token or "").removeprefix("Bearer ").strip()
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return AuthResponse(routes=["*"], principal_id="api-token")
    return AuthResponse(routes=[], principal_id="anonymous")
