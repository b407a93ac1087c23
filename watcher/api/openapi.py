"""The OpenAPI 3.1 document served at ``/api/openapi.json``.

Request and response schemas are generated from the same pydantic models the handlers
validate and serialise with, so the document cannot drift from the code; the chain names
are those the daemon follows. The tests run schemathesis against the live API with it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from watcher import __version__
from watcher.api.delivery_specs import (
    MAX_DELIVERY_ID,
    DeliveryDetail,
    DeliveryView,
    ReplayBody,
    ReplayResult,
    TestResult,
)
from watcher.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from watcher.api.specs import (
    ADDRESS_PATTERN,
    NAME_PATTERN,
    AddressesBody,
    CreatedWebhook,
    RotateBody,
    RotatedSecret,
    WebhookCreate,
    WebhookFields,
    WebhookView,
)
from watcher.policy import DeliveryStatus

_REF = "#/components/schemas/{model}"


class ErrorBody(BaseModel):
    """Every error response: ARK's fields, plus one entry per bad field."""

    statusCode: int  # ARK's name
    error: str
    message: str
    errors: list[dict[str, str]]


def openapi_document(chains: Iterable[str]) -> dict[str, Any]:
    """The document for a daemon following ``chains``."""
    inputs: list[tuple[type[BaseModel], Any]] = [
        (WebhookCreate, "validation"),
        (WebhookFields, "validation"),
        (AddressesBody, "validation"),
        (RotateBody, "validation"),
        (ReplayBody, "validation"),
    ]
    outputs: list[tuple[type[BaseModel], Any]] = [
        (WebhookView, "serialization"),
        (CreatedWebhook, "serialization"),
        (RotatedSecret, "serialization"),
        (DeliveryView, "serialization"),
        (DeliveryDetail, "serialization"),
        (ReplayResult, "serialization"),
        (TestResult, "serialization"),
        (ErrorBody, "serialization"),
    ]
    _, top = models_json_schema([*inputs, *outputs], ref_template=_REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    names = sorted(chains)
    for name in ("WebhookCreate", "WebhookFields"):
        schemas[name]["properties"]["chain"]["enum"] = names
        if names:
            schemas[name]["examples"] = [_example(names[0])]
    patch = copy.deepcopy(schemas["WebhookFields"])
    patch.pop("required", None)
    patch["title"] = "WebhookPatch"
    patch["description"] = "Fields to replace; the others keep their value."
    for prop in patch["properties"].values():
        prop.pop("default", None)
    schemas["WebhookPatch"] = patch
    schemas["PageMeta"] = _page_meta()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "watcher admin API",
            "version": __version__,
            "description": (
                "Manage webhook subscriptions of a running watcher and their deliveries. "
                "Subscriptions defined in the configuration file are listed with source "
                "'file'; their definitions are read-only here (409 Conflict): change the "
                "file and reload with SIGHUP. Enabling, disabling, test-firing, replaying "
                "and the delivery log work for both."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
    }


def _paths() -> dict[str, Any]:
    webhook_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": NAME_PATTERN},
    }
    address = {
        "name": "address",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ADDRESS_PATTERN},
    }
    delivery_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERY_ID},
    }
    one = _data("WebhookView")
    return {
        "/api/webhooks": {
            "get": {
                "operationId": "listWebhooks",
                "summary": "List webhooks, file-defined ones first",
                "parameters": _paging(),
                "responses": {
                    "200": _json("A page of webhooks", _page("WebhookView")),
                    **_errors(400, 401),
                },
            },
            "post": {
                "operationId": "createWebhook",
                "summary": "Create a webhook; its signing secret is returned this once",
                "requestBody": _body("WebhookCreate"),
                "responses": {
                    "201": {**_json("Created", _data("CreatedWebhook")), "links": _LINKS},
                    **_errors(400, 401, 409, 413, 422),
                },
            },
        },
        "/api/webhooks/{id}": {
            "parameters": [webhook_id],
            "get": {
                "operationId": "getWebhook",
                "summary": "One webhook",
                "responses": {"200": _json("The webhook", one), **_errors(401, 404)},
            },
            "put": {
                "operationId": "replaceWebhook",
                "summary": "Replace a webhook's definition (absent fields take defaults)",
                "requestBody": _body("WebhookFields"),
                "responses": {
                    "200": _json("The updated webhook", one),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
            "patch": {
                "operationId": "patchWebhook",
                "summary": "Change some fields of a webhook",
                "requestBody": _body("WebhookPatch"),
                "responses": {
                    "200": _json("The updated webhook", one),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Delete a webhook",
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 409)},
            },
        },
        "/api/webhooks/{id}/rotate-secret": {
            "parameters": [webhook_id],
            "post": {
                "operationId": "rotateWebhookSecret",
                "summary": "Replace the signing secret; the new one is returned this once",
                "description": "The old secret keeps signing next to the new one (both "
                "signatures are sent) for the overlap, so receivers can switch without "
                "losing a webhook.",
                "requestBody": {**_body("RotateBody"), "required": False},
                "responses": {
                    "200": _json("The new secret", _data("RotatedSecret")),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
        },
        "/api/webhooks/{id}/enable": _action(
            webhook_id,
            "enableWebhook",
            "Enable a webhook: deliveries recorded while disabled are sent now",
            one,
            None,
            (401, 404),
        ),
        "/api/webhooks/{id}/disable": _action(
            webhook_id,
            "disableWebhook",
            "Disable a webhook: events are still recorded, and sent once it is enabled",
            one,
            None,
            (401, 404),
        ),
        "/api/webhooks/{id}/test": _action(
            webhook_id,
            "testWebhook",
            "Send a signed sample event now and report the endpoint's answer",
            _data("TestResult"),
            None,
            (401, 404, 409),
        ),
        "/api/webhooks/{id}/replay": _action(
            webhook_id,
            "replayWebhook",
            "Re-queue every delivery of the webhook that failed in a time window",
            _data("ReplayResult"),
            "ReplayBody",
            (400, 401, 404, 413, 422),
        ),
        "/api/webhooks/{id}/deliveries": {
            "parameters": [webhook_id],
            "get": {
                "operationId": "listWebhookDeliveries",
                "summary": "The webhook's deliveries, newest first",
                "parameters": _delivery_filters(),
                "responses": {
                    "200": _json("A page of deliveries", _page("DeliveryView")),
                    **_errors(400, 401, 404),
                },
            },
        },
        "/api/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "summary": "Every webhook's deliveries, newest first",
                "parameters": [
                    *_delivery_filters(),
                    {
                        "name": "webhook_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json("A page of deliveries", _page("DeliveryView")),
                    **_errors(400, 401),
                },
            },
        },
        "/api/deliveries/{id}": {
            "parameters": [delivery_id],
            "get": {
                "operationId": "getDelivery",
                "summary": "One delivery with the body it sends and its attempt log",
                "responses": {
                    "200": _json("The delivery", _data("DeliveryDetail")),
                    **_errors(401, 404),
                },
            },
        },
        "/api/deliveries/{id}/retry": _action(
            delivery_id,
            "retryDelivery",
            "Send a delivery again now (a finished one gets a fresh retry schedule)",
            _data("DeliveryView"),
            None,
            (401, 404),
        ),
        "/api/webhooks/{id}/addresses": {
            "parameters": [webhook_id],
            "post": {
                "operationId": "addWebhookAddresses",
                "summary": "Watch more addresses (takes effect at the next block)",
                "requestBody": _body("AddressesBody"),
                "responses": {
                    "200": _json("The updated webhook", one),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
        },
        "/api/webhooks/{id}/addresses/{address}": {
            "parameters": [webhook_id, address],
            "delete": {
                "operationId": "removeWebhookAddress",
                "summary": "Stop watching one address",
                "responses": {
                    "200": _json("The updated webhook", one),
                    **_errors(401, 404, 409, 422),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {
                    "200": _json("The OpenAPI document", {"type": "object"}),
                    **_errors(401),
                },
            },
        },
    }


# What a client can do next with the id of a webhook it created.
_LINKS = {
    f"{op[0].upper()}{op[1:]}": {
        "operationId": op,
        "parameters": {"id": "$response.body#/data/id"},
    }
    for op in (
        "getWebhook",
        "replaceWebhook",
        "patchWebhook",
        "deleteWebhook",
        "rotateWebhookSecret",
        "addWebhookAddresses",
        "enableWebhook",
        "disableWebhook",
        "listWebhookDeliveries",
        "replayWebhook",
    )
}


def _example(chain: str) -> dict[str, Any]:
    return {
        "chain": chain,
        "url": "https://hooks.example.com/watcher",
        "events": ["tx.mined", "tx.confirmed"],
        "addresses": ["0xd8da6bf26964af9d7eed9e03e53415d37aa96045"],
    }


_ERROR_TEXT = {
    400: "The request cannot be read (not JSON, or a bad query parameter)",
    401: "Missing or invalid bearer token",
    404: "No such webhook or delivery",
    409: "The webhook comes from the configuration file (read-only), its id is taken, or "
    "it cannot run",
    413: "The request body is too large",
    422: "The request is invalid; errors name each field",
}


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": _REF.format(model="ErrorBody")}
    return {str(code): _json(_ERROR_TEXT[code], ref) for code in codes}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _data(model: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"$ref": _REF.format(model=model)}},
    }


def _body(model: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _action(
    parameter: dict[str, Any],
    operation: str,
    summary: str,
    result: dict[str, Any],
    body: str | None,
    errors: tuple[int, ...],
) -> dict[str, Any]:
    post: dict[str, Any] = {"operationId": operation, "summary": summary}
    if body is not None:
        post["requestBody"] = _body(body)
    post["responses"] = {"200": _json("Done", result), **_errors(*errors)}
    return {"parameters": [parameter], "post": post}


def _page(model: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["meta", "data"],
        "properties": {
            "meta": {"$ref": _REF.format(model="PageMeta")},
            "data": {"type": "array", "items": {"$ref": _REF.format(model=model)}},
        },
    }


def _paging() -> list[dict[str, Any]]:
    return [_query("page", 1, 10**9, 1), _query("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)]


def _delivery_filters() -> list[dict[str, Any]]:
    def time(name: str, text: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string", "format": "date-time"},
        }

    return [
        *_paging(),
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": [s.value for s in DeliveryStatus]},
        },
        time("since", "Created at or after this time."),
        time("until", "Created before this time."),
    ]


def _query(name: str, low: int, high: int, default: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": low, "maximum": high, "default": default},
    }


def _page_meta() -> dict[str, Any]:
    link = {"type": ["string", "null"]}
    return {
        "type": "object",
        "description": "ARK's pagination meta.",
        "required": [
            "count",
            "pageCount",
            "totalCount",
            "next",
            "previous",
            "self",
            "first",
            "last",
        ],
        "properties": {
            "count": {"type": "integer"},
            "pageCount": {"type": "integer"},
            "totalCount": {"type": "integer"},
            "next": link,
            "previous": link,
            "self": {"type": "string"},
            "first": {"type": "string"},
            "last": {"type": "string"},
        },
    }
