"""HTTP handlers of ``/api/deliveries`` and of a webhook's outbox actions: thin, over
:class:`~watcher.api.operations.DeliveryOperations`.

``GET /api/deliveries`` and ``GET /api/webhooks/{id}/deliveries`` list deliveries newest
first, paginated like every list (ARK's ``meta``), filtered by ``status``, ``since`` and
``until`` (creation time); ``GET /api/deliveries/{id}`` adds the request body and the
attempt log. ``retry``, ``replay`` and ``test`` are POST actions.
"""

from __future__ import annotations

from aiohttp import web

from watcher.api.delivery_specs import (
    DeliveryQuery,
    ReplayBody,
    delivery_detail,
    delivery_view,
)
from watcher.api.operations import DeliveryOperations
from watcher.api.pagination import meta
from watcher.api.specs import parse_model
from watcher.api.webhooks import COLLECTION, json_body

DELIVERIES = "/api/deliveries"


def add_routes(app: web.Application, operations: DeliveryOperations) -> None:
    """Register the delivery routes of ``operations`` on ``app``."""
    handlers = _Handlers(operations)
    r = app.router
    r.add_get(DELIVERIES, handlers.list, allow_head=False)
    r.add_get(DELIVERIES + r"/{id:\d+}", handlers.get, allow_head=False)
    r.add_post(DELIVERIES + r"/{id:\d+}/retry", handlers.retry)
    r.add_get(COLLECTION + "/{id}/deliveries", handlers.list_for_webhook, allow_head=False)
    r.add_post(COLLECTION + "/{id}/replay", handlers.replay)
    r.add_post(COLLECTION + "/{id}/test", handlers.test)


class _Handlers:
    def __init__(self, operations: DeliveryOperations) -> None:
        self._ops = operations

    async def list(self, request: web.Request) -> web.Response:
        query = DeliveryQuery.from_query(request.query)
        return await self._page(DELIVERIES, query)

    async def list_for_webhook(self, request: web.Request) -> web.Response:
        webhook_id = request.match_info["id"]
        self._ops.known(webhook_id)
        query = DeliveryQuery.from_query(request.query, by_webhook=False)
        path = f"{COLLECTION}/{webhook_id}/deliveries"
        return await self._page(path, query.for_webhook(webhook_id))

    async def get(self, request: web.Request) -> web.Response:
        record, attempts = await self._ops.detail(int(request.match_info["id"]))
        return web.json_response(
            {"data": delivery_detail(record, attempts).model_dump(mode="json")}
        )

    async def retry(self, request: web.Request) -> web.Response:
        record = await self._ops.retry(int(request.match_info["id"]))
        return web.json_response({"data": delivery_view(record).model_dump(mode="json")})

    async def replay(self, request: web.Request) -> web.Response:
        body = parse_model(ReplayBody, await json_body(request))
        result = await self._ops.replay(request.match_info["id"], body)
        return web.json_response({"data": result.model_dump(mode="json")})

    async def test(self, request: web.Request) -> web.Response:
        result = await self._ops.test_fire(request.match_info["id"])
        return web.json_response({"data": result.model_dump(mode="json")})

    async def _page(self, path: str, query: DeliveryQuery) -> web.Response:
        records, total = await self._ops.page(query)
        return web.json_response(
            {
                "meta": meta(path, query.page, len(records), total, query.params),
                "data": [delivery_view(r).model_dump(mode="json") for r in records],
            }
        )
