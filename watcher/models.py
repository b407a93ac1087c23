"""Plain values shared by every layer: blocks, transactions, subscriptions, events, deliveries.

Everything here is immutable and free of I/O. Chain adapters build ``Block`` and ``Tx`` from
node JSON; the tracker turns them into ``Event`` values; the store persists those.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONObject = Mapping[str, Any]


class EventType(enum.StrEnum):
    """The kinds of notification a subscription can ask for."""

    TX_MINED = "tx.mined"
    TX_CONFIRMED = "tx.confirmed"


class Direction(enum.StrEnum):
    """Whether a watched address received (``in``) or sent (``out``) in a transaction."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction as the chain adapter normalised it.

    Addresses are lower-case hex strings; ``raw`` is the node's own JSON object, passed
    through unchanged into webhook payloads so receivers see exactly what the node said.
    """

    hash: str
    sender: str
    recipient: str | None
    value_wei: int
    nonce: int
    raw: JSONObject


@dataclass(frozen=True, slots=True)
class Block:
    """A block with its transactions, as the chain adapter normalised it."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    transactions: tuple[Tx, ...]


@dataclass(frozen=True, slots=True)
class BlockRef:
    """The identity of a block: enough to detect that the chain moved under us."""

    number: int
    hash: str


@dataclass(frozen=True, slots=True)
class Subscription:
    """Who wants to hear about which addresses on which chain, and where to send it."""

    id: str
    chain: str
    addresses: frozenset[str]
    events: frozenset[EventType]
    confirmations: int
    url: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Event:
    """One notification for one subscription.

    ``id`` is derived from the chain facts alone (never from time or subscription), so the
    same chain event always gets the same id and receivers can deduplicate on it.
    """

    id: str
    type: EventType
    chain: str
    subscription_id: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    created_at: float
    data: JSONObject


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A mined transaction waiting for a subscription's confirmation depth."""

    chain: str
    subscription_id: str
    mined_event_id: str
    confirm_at: int
    data: JSONObject


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """What processing one block produced: everything the store writes in one transaction."""

    block: BlockRef
    parent_hash: str
    events: tuple[Event, ...]
    confirmations_added: tuple[PendingConfirmation, ...]
    confirmations_done: tuple[PendingConfirmation, ...]


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A delivery claimed from the outbox, ready to be sent."""

    id: int
    event_id: str
    subscription_id: str
    body: bytes
    attempts: int
