"""Bearer-token authentication for every API request, compared in constant time."""

from __future__ import annotations

import hmac

from aiohttp import web

from watcher.api.errors import UnauthorizedError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="watcher"'}


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` against the configured token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def check(self, request: web.Request) -> None:
        """Return if the request carries the token; UnauthorizedError otherwise."""
        header = request.headers.get("Authorization")
        if header is None:
            raise UnauthorizedError("missing Authorization: Bearer <token> header")
        scheme, _, supplied = header.partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            raise UnauthorizedError("the Authorization header must be: Bearer <token>")
        # compare_digest over bytes takes the same time wherever the first difference is.
        candidate = supplied.strip().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(candidate, self._token):
            raise UnauthorizedError("invalid token")
