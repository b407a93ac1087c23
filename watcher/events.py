"""Event construction and the webhook envelope: pure functions.

An event id is a digest of the chain facts that make the event what it is (chain, type,
transaction, block, log, address, direction). Re-processing a block after a crash therefore
yields the same ids, which the store's unique keys turn into no-ops and receivers can
deduplicate on.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from watcher.addresses import checksum_ethereum
from watcher.matching import Match
from watcher.models import (
    Activity,
    Block,
    Direction,
    Event,
    EventType,
    JSONObject,
    Kind,
    PendingTx,
    PoolMatch,
    TokenTransfer,
    Tx,
)


def event_id(*facts: object) -> str:
    """A stable identifier for the event the ``facts`` describe."""
    digest = hashlib.sha256("|".join(str(f) for f in facts).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def _checksum(address: str | None) -> str | None:
    return checksum_ethereum(address) if address is not None else None


def _make(
    eid: str, kind: EventType, chain: str, sub_id: str, data: JSONObject, now: float
) -> Event:
    number = data.get("block_number")
    return Event(
        id=eid,
        type=kind,
        chain=chain,
        subscription_id=sub_id,
        tx_hash=data.get("tx_hash"),
        block_number=int(number) if number is not None else None,
        block_hash=data.get("block_hash"),
        created_at=now,
        data=data,
    )


# --- mined, confirmed, reorged --------------------------------------------------------------


def native_data(block: Block, tx: Tx, match: Match) -> dict[str, Any]:
    """Event data for a transaction that moves the chain's own currency (or calls a contract)."""
    return {
        "kind": Kind.NATIVE.value,
        "tx_hash": tx.hash,
        "block_number": block.number,
        "block_hash": block.hash,
        "block_timestamp": block.timestamp,
        "confirmations": 1,
        "from": checksum_ethereum(tx.sender),
        "to": _checksum(tx.recipient),
        "value": str(tx.value_wei),
        "nonce": tx.nonce,
        "address": _checksum(match.address),
        "direction": match.direction.value if match.direction is not None else None,
        "transaction": tx.raw,
    }


def transfer_data(block: Block, transfer: TokenTransfer, match: Match) -> dict[str, Any]:
    """Event data for an ERC-20 or ERC-721 transfer log."""
    return {
        "kind": transfer.kind.value,
        "tx_hash": transfer.tx_hash,
        "log_index": transfer.log_index,
        "block_number": block.number,
        "block_hash": block.hash,
        "block_timestamp": block.timestamp,
        "confirmations": 1,
        "token": checksum_ethereum(transfer.token),
        "from": checksum_ethereum(transfer.sender),
        "to": checksum_ethereum(transfer.recipient),
        "amount": str(transfer.amount) if transfer.amount is not None else None,
        "token_id": str(transfer.token_id) if transfer.token_id is not None else None,
        "address": _checksum(match.address),
        "direction": match.direction.value if match.direction is not None else None,
        "log": transfer.raw,
    }


def mined_event(chain: str, sub_id: str, data: JSONObject, now: float) -> Event:
    """``tx.mined`` for one subscription, from :func:`native_data` or :func:`transfer_data`."""
    eid = event_id(chain, EventType.TX_MINED, *_activity_facts(data))
    return _make(eid, EventType.TX_MINED, chain, sub_id, data, now)


def _activity_facts(data: JSONObject) -> tuple[object, ...]:
    address = data["address"]
    return (
        data["tx_hash"],
        data["block_hash"],
        data["kind"],
        data.get("log_index"),
        address.lower() if address else None,
        data["direction"],
    )


def confirmed_event(activity: Activity, confirmations: int, now: float) -> Event:
    """``tx.confirmed`` once ``activity`` reached its subscription's depth."""
    eid = event_id(activity.chain, EventType.TX_CONFIRMED, *_activity_facts(activity.data))
    data = {
        **activity.data,
        "confirmations": confirmations,
        "mined_event_id": activity.mined_event_id,
    }
    return _make(eid, EventType.TX_CONFIRMED, activity.chain, activity.subscription_id, data, now)


def reorged_event(activity: Activity, now: float) -> Event:
    """``tx.reorged``: the block of ``activity`` left the canonical chain.

    ``cancels`` lists the ids of the earlier events about that block that no longer hold.
    """
    cancels = [activity.mined_event_id]
    if activity.confirmed_event_id is not None:
        cancels.append(activity.confirmed_event_id)
    eid = event_id(activity.chain, EventType.TX_REORGED, activity.mined_event_id)
    data = {**activity.data, "confirmations": 0, "cancels": cancels}
    return _make(eid, EventType.TX_REORGED, activity.chain, activity.subscription_id, data, now)


def block_event(chain: str, sub_id: str, block: BlockHeader, now: float) -> Event:
    """``block.mined`` for a subscription that wants every block."""
    data = block_data(block)
    eid = event_id(chain, EventType.BLOCK_MINED, block.hash)
    return _make(eid, EventType.BLOCK_MINED, chain, sub_id, data, now)


class BlockHeader(Protocol):
    """What a ``block.mined`` event says about a block, whatever its chain.

    Also what the follower reads of every block (``protocols.ChainBlock``).
    """

    @property
    def number(self) -> int: ...
    @property
    def hash(self) -> str: ...
    @property
    def parent_hash(self) -> str: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def transaction_count(self) -> int: ...


def block_data(block: BlockHeader) -> dict[str, Any]:
    """The fields of a ``block.mined`` event (also what its conditions are evaluated on)."""
    return {
        "block_number": block.number,
        "block_hash": block.hash,
        "parent_hash": block.parent_hash,
        "block_timestamp": block.timestamp,
        "transaction_count": block.transaction_count,
    }


# --- mempool ----------------------------------------------------------------------------


def pool_data(tx: Tx) -> dict[str, Any]:
    """Event data of a pending Ethereum transaction, shared by its matches."""
    return {
        "kind": Kind.NATIVE.value,
        "tx_hash": tx.hash,
        "block_number": None,
        "block_hash": None,
        "confirmations": 0,
        "from": checksum_ethereum(tx.sender),
        "to": _checksum(tx.recipient),
        "value": str(tx.value_wei),
        "nonce": tx.nonce,
        "transaction": tx.raw,
    }


def pool_match_fields(address: str, direction: Direction) -> dict[str, Any]:
    """The event fields of one watched Ethereum address in a pending transaction."""
    return {"address": checksum_ethereum(address), "direction": direction.value}


def _pool_event_data(pending: PendingTx, match: PoolMatch) -> dict[str, Any]:
    return {**pending.data, **match.fields}


def pending_event(pending: PendingTx, match: PoolMatch, now: float) -> Event:
    """``tx.pending``: a watched transaction entered the mempool."""
    data = _pool_event_data(pending, match)
    eid = event_id(
        pending.chain, EventType.TX_PENDING, pending.tx_hash, match.address, match.direction
    )
    return _make(eid, EventType.TX_PENDING, pending.chain, match.subscription_id, data, now)


def dropped_event(pending: PendingTx, match: PoolMatch, now: float) -> Event:
    """``tx.dropped``: the transaction left the mempool without being mined."""
    data = {**_pool_event_data(pending, match), "pending_since": pending.first_seen}
    eid = event_id(
        pending.chain, EventType.TX_DROPPED, pending.tx_hash, match.address, match.direction
    )
    return _make(eid, EventType.TX_DROPPED, pending.chain, match.subscription_id, data, now)


def replaced_event(
    pending: PendingTx, match: PoolMatch, replaced_by: str, mined: bool, now: float
) -> Event:
    """``tx.replaced``: another transaction took its place (same nonce, or a spent outpoint)."""
    data = {
        **_pool_event_data(pending, match),
        "replaced_by": replaced_by,
        "replacement_mined": mined,
    }
    eid = event_id(
        pending.chain,
        EventType.TX_REPLACED,
        pending.tx_hash,
        replaced_by,
        match.address,
        match.direction,
    )
    return _make(eid, EventType.TX_REPLACED, pending.chain, match.subscription_id, data, now)


def envelope(event: Event) -> bytes:
    """The exact JSON body a subscriber receives (and the bytes that get signed)."""
    created = datetime.fromtimestamp(event.created_at, UTC)
    doc: JSONObject = {
        "id": event.id,
        "type": event.type.value,
        "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subscription": event.subscription_id,
        "chain": event.chain,
        "data": event.data,
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
