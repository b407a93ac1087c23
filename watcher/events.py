"""Event construction and the webhook envelope: pure functions.

An event id is a digest of the chain facts that make the event what it is (chain, type,
transaction, block, address, direction). Re-processing a block after a crash therefore yields
the same ids, which the store's unique keys turn into no-ops and receivers can deduplicate on.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from watcher.addresses import checksum_ethereum
from watcher.matching import Match
from watcher.models import Block, Event, EventType, JSONObject, PendingConfirmation, Tx


def event_id(*facts: object) -> str:
    """A stable identifier for the event the ``facts`` describe."""
    digest = hashlib.sha256("|".join(str(f) for f in facts).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def mined_event(chain: str, block: Block, tx: Tx, match: Match, now: float) -> Event:
    """``tx.mined`` for one subscription watching one side of ``tx``."""
    eid = event_id(chain, EventType.TX_MINED, tx.hash, block.hash, match.address, match.direction)
    data: dict[str, Any] = {
        "tx_hash": tx.hash,
        "block_number": block.number,
        "block_hash": block.hash,
        "block_timestamp": block.timestamp,
        "confirmations": 1,
        "from": checksum_ethereum(tx.sender),
        "to": checksum_ethereum(tx.recipient) if tx.recipient is not None else None,
        "value": str(tx.value_wei),
        "address": checksum_ethereum(match.address),
        "direction": match.direction.value,
        "transaction": tx.raw,
    }
    return Event(
        id=eid,
        type=EventType.TX_MINED,
        chain=chain,
        subscription_id=match.subscription.id,
        tx_hash=tx.hash,
        block_number=block.number,
        block_hash=block.hash,
        created_at=now,
        data=data,
    )


def confirmed_event(pending: PendingConfirmation, confirmations: int, now: float) -> Event:
    """``tx.confirmed`` once ``pending`` reached its subscription's depth."""
    mined = pending.data
    eid = event_id(
        pending.chain,
        EventType.TX_CONFIRMED,
        mined["tx_hash"],
        mined["block_hash"],
        str(mined["address"]).lower(),
        mined["direction"],
    )
    data = {**mined, "confirmations": confirmations, "mined_event_id": pending.mined_event_id}
    return Event(
        id=eid,
        type=EventType.TX_CONFIRMED,
        chain=pending.chain,
        subscription_id=pending.subscription_id,
        tx_hash=str(mined["tx_hash"]),
        block_number=int(mined["block_number"]),
        block_hash=str(mined["block_hash"]),
        created_at=now,
        data=data,
    )


def envelope(event: Event) -> bytes:
    """The exact JSON body a subscriber receives (and the bytes that get signed)."""
    doc: JSONObject = {
        "id": event.id,
        "type": event.type.value,
        "timestamp": datetime.fromtimestamp(event.created_at, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "subscription": event.subscription_id,
        "chain": event.chain,
        "data": event.data,
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
