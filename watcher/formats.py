"""Webhook payload formats: pure functions from an event to the exact body bytes.

``native`` is watcher's own documented envelope. The others reproduce the bodies of services
whose receivers people already run, so those receivers keep working unchanged:

* ``blocksdk``: ``webhook_id, event, address, symbol, tx_hash, api_token`` (BlockSDK hooks;
  ``event`` is ``confirmed`` for ``tx.confirmed`` and ``unconfirmed`` otherwise, ``api_token``
  is the MD5 of the configured API token, as BlockSDK sends it).
* ``blockvision``: ``app, network, webhookType, timestamp, transaction`` (BlockVision;
  ``webhookType`` is ``Mined_Transaction`` for ``tx.mined``, ``Confirmed_Transaction`` for
  ``tx.confirmed``, and so on; ``transaction`` is the node's transaction object).
* ``blox``: ``application, event, data`` (BLOX CMS; ``data`` is the native ``data`` plus the
  event ``id``, ``chain`` and ``subscription``).

Bodies are rendered once, when the event is written to the outbox, and every attempt sends
(and signs) the stored bytes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from watcher.events import envelope
from watcher.models import Event, FormatOptions, PayloadFormat

BLOCKVISION_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def render(event: Event, fmt: PayloadFormat, options: FormatOptions) -> bytes:
    """The body a subscriber with format ``fmt`` receives for ``event``."""
    if fmt is PayloadFormat.NATIVE:
        return envelope(event)
    if fmt is PayloadFormat.BLOCKSDK:
        return _blocksdk(event, options)
    if fmt is PayloadFormat.BLOCKVISION:
        return _blockvision(event, options)
    if fmt is PayloadFormat.BLOX:
        return _blox(event, options)
    raise AssertionError(fmt)


def api_token_md5(token: str) -> str:
    """BlockSDK's ``api_token`` field: the hex MD5 of the API token."""
    return hashlib.md5(token.encode("utf-8"), usedforsecurity=False).hexdigest()


def blocksdk_event_name(event_type: str) -> str:
    """``confirmed`` for ``tx.confirmed``; everything earlier is ``unconfirmed``."""
    return "confirmed" if event_type == "tx.confirmed" else "unconfirmed"


def blockvision_webhook_type(event_type: str) -> str:
    """``tx.mined`` -> ``Mined_Transaction``, ``tx.dropped`` -> ``Dropped_Transaction``."""
    name = event_type.split(".", 1)[-1]
    return f"{name[:1].upper()}{name[1:]}_Transaction"


def blockvision_timestamp(created_at: float) -> str:
    """BlockVision's ``timestamp``: ``2022-03-20 14:22:53`` in UTC."""
    return datetime.fromtimestamp(created_at, UTC).strftime(BLOCKVISION_TIME_FORMAT)


def _blocksdk(event: Event, options: FormatOptions) -> bytes:
    webhook_id = options.blocksdk_webhook_id
    doc: dict[str, Any] = {
        "webhook_id": webhook_id if webhook_id is not None else event.subscription_id,
        "event": blocksdk_event_name(event.type.value),
        "address": event.data.get("address"),
        "symbol": options.blocksdk_symbol,
        "tx_hash": event.tx_hash,
        "api_token": options.blocksdk_api_token_md5,
    }
    return orjson.dumps(doc)


def _blockvision(event: Event, options: FormatOptions) -> bytes:
    doc: dict[str, Any] = {
        "app": options.blockvision_app or event.subscription_id,
        "network": options.blockvision_network,
        "webhookType": blockvision_webhook_type(event.type.value),
        "timestamp": blockvision_timestamp(event.created_at),
        "transaction": event.data.get("transaction"),
    }
    return orjson.dumps(doc)


def _blox(event: Event, options: FormatOptions) -> bytes:
    data = {
        "id": event.id,
        "chain": event.chain,
        "subscription": event.subscription_id,
        **event.data,
    }
    doc = {"application": options.blox_application, "event": event.type.value, "data": data}
    return orjson.dumps(doc)
