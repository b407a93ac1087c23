"""The admin API application: authentication, JSON errors and the routes.

Every request, whatever its path, first needs the bearer token (so an unauthenticated
client learns nothing, not even which paths exist). Every failure is answered with the JSON
error body of :mod:`watcher.api.errors`; an unexpected exception is logged with its
traceback and answered with a bare 500, never with its text.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from watcher.api import deliveries, webhooks
from watcher.api.auth import CHALLENGE, BearerAuth
from watcher.api.errors import ApiError, UnauthorizedError, error_response
from watcher.api.manager import WebhookManager
from watcher.api.openapi import openapi_document
from watcher.api.operations import DeliveryOperations

log = structlog.get_logger()


def build_app(
    manager: WebhookManager,
    operations: DeliveryOperations,
    token: str,
    chains: Iterable[str],
    max_body_bytes: int,
) -> web.Application:
    """The aiohttp application of the admin API."""
    auth = BearerAuth(token)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            headers = CHALLENGE if isinstance(exc, UnauthorizedError) else None
            return error_response(exc.status, exc.message, exc.errors, headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return error_response(exc.status, exc.reason, headers=headers)
        except Exception:
            log.exception("api_request_failed", method=request.method, path=request.path)
            return error_response(500, "internal error")

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        auth.check(request)
        return await handler(request)

    document = openapi_document(chains)

    async def get_openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application(client_max_size=max_body_bytes, middlewares=[errors, authenticate])
    app.router.add_get("/api/openapi.json", get_openapi, allow_head=False)
    webhooks.add_routes(app, manager)
    deliveries.add_routes(app, operations)
    return app
