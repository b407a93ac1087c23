"""HTTP handlers of the ``/api/webhooks`` resource: thin, over :class:`WebhookManager`.

Responses follow ARK's envelope: ``{"data": ...}`` for one resource, ``{"meta": ...,
"data": [...]}`` for a page. New and rotated secrets appear in exactly one response. The
outbox actions on a webhook (deliveries, replay, test) are in :mod:`watcher.api.deliveries`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from watcher.api.errors import BadRequestError, FieldError, InvalidError
from watcher.api.manager import WebhookManager
from watcher.api.pagination import Page, meta
from watcher.api.specs import CreatedWebhook, RotateBody, RotatedSecret, parse_model
from watcher.registry import Entry

COLLECTION = "/api/webhooks"
# Deeper JSON than this is refused before validation, whose recursion it would strain.
MAX_JSON_DEPTH = 32


def add_routes(app: web.Application, manager: WebhookManager) -> None:
    """Register the webhook routes of ``manager`` on ``app``."""
    handlers = _Handlers(manager)
    r = app.router
    r.add_get(COLLECTION, handlers.list, allow_head=False)
    r.add_post(COLLECTION, handlers.create)
    r.add_get(COLLECTION + "/{id}", handlers.get, allow_head=False)
    r.add_put(COLLECTION + "/{id}", handlers.replace)
    r.add_patch(COLLECTION + "/{id}", handlers.patch)
    r.add_delete(COLLECTION + "/{id}", handlers.delete)
    r.add_post(COLLECTION + "/{id}/rotate-secret", handlers.rotate_secret)
    r.add_post(COLLECTION + "/{id}/enable", handlers.enable)
    r.add_post(COLLECTION + "/{id}/disable", handlers.disable)
    r.add_post(COLLECTION + "/{id}/addresses", handlers.add_addresses)
    r.add_delete(COLLECTION + "/{id}/addresses/{address}", handlers.remove_address)


class _Handlers:
    def __init__(self, manager: WebhookManager) -> None:
        self._manager = manager

    async def list(self, request: web.Request) -> web.Response:
        page = Page.from_query(request.query)
        entries = self._manager.entries()
        shown = page.slice(entries)
        views = await self._manager.views(shown)
        return web.json_response(
            {
                "meta": meta(COLLECTION, page, len(shown), len(entries)),
                "data": [v.model_dump(mode="json") for v in views],
            }
        )

    async def create(self, request: web.Request) -> web.Response:
        entry, secret = await self._manager.create(await json_body(request))
        (shown,) = await self._manager.views([entry])
        created = CreatedWebhook(**shown.model_dump(), secret=secret)
        return web.json_response(
            {"data": created.model_dump(mode="json")},
            status=201,
            headers={"Location": f"{COLLECTION}/{entry.id}"},
        )

    async def get(self, request: web.Request) -> web.Response:
        return await self._one(self._manager.get(request.match_info["id"]))

    async def replace(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        return await self._one(await self._manager.replace(request.match_info["id"], body))

    async def patch(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        return await self._one(await self._manager.patch(request.match_info["id"], body))

    async def delete(self, request: web.Request) -> web.Response:
        await self._manager.delete(request.match_info["id"])
        return web.Response(status=204)

    async def enable(self, request: web.Request) -> web.Response:
        return await self._one(await self._manager.set_enabled(request.match_info["id"], True))

    async def disable(self, request: web.Request) -> web.Response:
        return await self._one(await self._manager.set_enabled(request.match_info["id"], False))

    async def rotate_secret(self, request: web.Request) -> web.Response:
        subscription_id = request.match_info["id"]
        body = RotateBody()
        if await has_body(request):
            body = parse_model(RotateBody, await json_body(request))
        secret, until = await self._manager.rotate_secret(subscription_id, body.overlap_s)
        rotated = RotatedSecret(
            id=subscription_id,
            secret=secret,
            previous_secret_until=None if until is None else datetime.fromtimestamp(until, UTC),
        )
        return web.json_response({"data": rotated.model_dump(mode="json")})

    async def add_addresses(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        return await self._one(await self._manager.add_addresses(request.match_info["id"], body))

    async def remove_address(self, request: web.Request) -> web.Response:
        info = request.match_info
        return await self._one(await self._manager.remove_address(info["id"], info["address"]))

    async def _one(self, entry: Entry) -> web.Response:
        (shown,) = await self._manager.views([entry])
        return web.json_response({"data": shown.model_dump(mode="json")})


async def has_body(request: web.Request) -> bool:
    """Whether the request has a body other than whitespace (for an optional one)."""
    return bool((await request.read()).strip())


async def json_body(request: web.Request) -> Any:
    """The request body as JSON: exact integers, no NaN or infinities, bounded nesting.

    Raises BadRequestError when it cannot be read as JSON (a body over the size limit has
    already been refused with 413 by aiohttp).
    """
    raw = await request.read()
    if not raw.strip():
        raise BadRequestError("the request needs a JSON body", [FieldError("", "is empty")])
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "unreadable"
        raise BadRequestError(
            "the request body is not valid JSON", [FieldError("", reason)]
        ) from None
    if _too_deep(value):
        raise InvalidError(
            "the request body is invalid",
            [FieldError("", f"is nested deeper than {MAX_JSON_DEPTH} levels")],
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _too_deep(value: Any) -> bool:
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        nested: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
        if not nested:
            return False
        level = nested
    return True
