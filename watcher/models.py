"""Plain values shared by every layer: blocks, transactions, subscriptions, events, deliveries.

Everything here is immutable and free of I/O. Chain adapters build ``Block`` and ``Tx`` from
node JSON; the tracker turns them into ``Event`` values; the store persists those.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.conditions import ALWAYS, Condition

JSONObject = Mapping[str, Any]


class EventType(enum.StrEnum):
    """The kinds of notification a subscription can ask for."""

    TX_PENDING = "tx.pending"
    TX_MINED = "tx.mined"
    TX_CONFIRMED = "tx.confirmed"
    TX_DROPPED = "tx.dropped"
    TX_REPLACED = "tx.replaced"
    TX_REORGED = "tx.reorged"
    BLOCK_MINED = "block.mined"


# Events about transactions in the node's mempool, and about transactions in blocks.
MEMPOOL_EVENTS = frozenset({EventType.TX_PENDING, EventType.TX_DROPPED, EventType.TX_REPLACED})
BLOCK_TX_EVENTS = frozenset({EventType.TX_MINED, EventType.TX_CONFIRMED, EventType.TX_REORGED})


class Kind(enum.StrEnum):
    """What moved: the chain's own currency, or a token."""

    NATIVE = "native"
    ERC20 = "erc20"
    ERC721 = "erc721"


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
class TokenTransfer:
    """An ERC-20 or ERC-721 ``Transfer`` log, decoded by the chain adapter."""

    kind: Kind
    token: str
    sender: str
    recipient: str
    amount: int | None
    token_id: int | None
    tx_hash: str
    log_index: int
    raw: JSONObject


@dataclass(frozen=True, slots=True)
class Block:
    """A block with its transactions (and token transfers, when they were asked for)."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    transactions: tuple[Tx, ...]
    transfers: tuple[TokenTransfer, ...] = ()


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
    tokens: frozenset[str] = frozenset()
    kinds: frozenset[Kind] = frozenset(Kind)
    direction: Direction | None = None
    condition: Condition = ALWAYS

    @property
    def wants_transfers(self) -> bool:
        """Whether token transfers can concern this subscription."""
        return bool(self.kinds - {Kind.NATIVE}) and bool(self.tokens or self.addresses)


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
class Activity:
    """Something a subscription was told was mined, remembered for confirmation and reorgs.

    ``confirm_at`` is the height at which ``tx.confirmed`` is due (None when the subscription
    does not want it); ``confirmed_event_id`` is set once it was sent.
    """

    chain: str
    subscription_id: str
    mined_event_id: str
    tx_hash: str
    block_number: int
    block_hash: str
    confirm_at: int | None
    confirmed_event_id: str | None
    data: JSONObject


@dataclass(frozen=True, slots=True)
class PoolMatch:
    """A watched address a pending transaction touches, for one subscription."""

    subscription_id: str
    address: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A watched transaction seen in the mempool and not (yet) mined.

    ``gone_since`` is when it was first missed from the pool; it is reported dropped once it
    stays gone for the grace period.
    """

    chain: str
    tx: Tx
    first_seen: float
    gone_since: float | None
    matches: tuple[PoolMatch, ...]


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """What processing one block produced: everything the store writes in one transaction."""

    block: BlockRef
    parent_hash: str
    events: tuple[Event, ...]
    activities: tuple[Activity, ...]
    pool_removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RewindOutcome:
    """A reorg: blocks above ``ancestor`` left the canonical chain; ``events`` say so."""

    ancestor: BlockRef
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What one look at the mempool changed."""

    events: tuple[Event, ...]
    upserted: tuple[PendingTx, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A delivery claimed from the outbox, ready to be sent."""

    id: int
    event_id: str
    subscription_id: str
    body: bytes
    attempts: int
    created_at: float
