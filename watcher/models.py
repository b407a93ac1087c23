"""Plain values shared by every layer: blocks, transactions, subscriptions, events, deliveries.

Everything here is immutable and free of I/O. Chain adapters build ``Block`` and ``Tx`` from
node JSON; the tracker turns them into ``Event`` values; the store persists those.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


class Tx(NamedTuple):
    """A transaction as the chain adapter normalised it.

    Addresses are lower-case hex strings; ``raw`` is the node's own JSON object, passed
    through unchanged into webhook payloads so receivers see exactly what the node said.
    A named tuple rather than a frozen dataclass: one is built for every transaction while
    catching up, and a frozen dataclass takes four times as long to build.
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
    """A block with its transactions (and token transfers, when they were asked for).

    ``transactions`` may hold only those that touch the addresses the adapter was asked
    about (see :meth:`watcher.protocols.ChainSource.blocks`); ``left_out`` counts the others.
    """

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    transactions: tuple[Tx, ...]
    transfers: tuple[TokenTransfer, ...] = ()
    left_out: int = 0

    @property
    def transaction_count(self) -> int:
        """How many transactions the node's block holds."""
        return len(self.transactions) + self.left_out


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

    delivery: DeliverySettings = field(default_factory=lambda: DeliverySettings())


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
    """A watched address a pending transaction touches, for one subscription.

    ``fields`` are this match's own event fields (the address as shown, the direction and,
    on Bitcoin, the amount); they are laid over the transaction's shared ``PendingTx.data``.
    """

    subscription_id: str
    address: str
    direction: Direction
    fields: JSONObject


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A watched transaction seen in the mempool and not (yet) mined.

    ``conflicts`` are the keys another transaction takes to replace this one (on Ethereum
    its sender and nonce, on Bitcoin the outpoints it spends); ``data`` is the event data
    its matches share. ``gone_since`` is when it was first missed from the pool; it is
    reported dropped once it stays gone for the grace period.
    """

    chain: str
    tx_hash: str
    conflicts: tuple[str, ...]
    data: JSONObject
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
    # UTXO chains: watched outputs this block created, and those it spent.
    outputs_created: tuple[WatchedOutput, ...] = ()
    outputs_spent: tuple[Outpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class RewindOutcome:
    """A reorg: blocks above ``ancestor`` left the canonical chain; ``events`` say so.

    ``pool_upserted`` are transactions of the lost blocks that are pending again as far as
    the tracker knows (it follows them until they are mined again, dropped or replaced).
    """

    ancestor: BlockRef
    events: tuple[Event, ...]
    pool_upserted: tuple[PendingTx, ...] = ()


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
    attempts: int  # made so far in the current retry schedule (a replay starts a new one)
    created_at: float


# --- how one subscription's webhooks are delivered ---------------------------------------

# The Standard Webhooks retry schedule, in seconds: the waits after the 1st, 2nd, ... failure.
STANDARD_RETRY_SCHEDULE_S = (
    5.0,
    300.0,
    1800.0,
    7200.0,
    18000.0,
    36000.0,
    50400.0,
    72000.0,
    86400.0,
)


class PayloadFormat(enum.StrEnum):
    """The JSON shape of a webhook body; the non-native ones mimic other services."""

    NATIVE = "native"
    BLOCKSDK = "blocksdk"
    BLOCKVISION = "blockvision"
    BLOX = "blox"


class SignatureScheme(enum.StrEnum):
    """An extra signature header for receivers written for another service.

    Standard Webhooks headers are always sent; ``hmac-sha256`` adds an HMAC of the raw body
    in a chosen header (Alchemy, BLOX), ``blockvision`` adds BlockVision's ``X-BV-SIGN``.
    """

    STANDARD = "standard-webhooks"
    HMAC_SHA256 = "hmac-sha256"
    BLOCKVISION = "blockvision"


@dataclass(frozen=True, slots=True)
class SignatureSettings:
    """Which compatibility signature to add, in which header and encoding."""

    scheme: SignatureScheme = SignatureScheme.STANDARD
    header: str | None = None
    encoding: str = "hex"


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """Labels the compatibility formats carry; each format reads only its own."""

    blocksdk_webhook_id: int | str | None = None
    blocksdk_symbol: str = "eth"
    blocksdk_api_token_md5: str | None = field(default=None, repr=False)
    blockvision_app: str | None = None
    blockvision_network: str = "Mainnet"
    blox_application: str = "watcher"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again after a failed attempt, and when to give up on a subscription.

    ``schedule_s[i]`` is the wait after failure number ``i + 1``; a delivery whose last
    scheduled retry fails is ``failed``. Jitter (a fraction) is only ever added.
    """

    schedule_s: tuple[float, ...] = STANDARD_RETRY_SCHEDULE_S
    jitter: float = 0.2
    retry_after_max_s: float = 86400.0
    slow_down_min_s: float = 60.0
    disable_after_s: float = 5 * 86400.0
    disable_after_exhausted: int = 3

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one per step of the schedule."""
        return len(self.schedule_s) + 1


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Everything about how one subscription's webhooks leave the outbox."""

    format: PayloadFormat = PayloadFormat.NATIVE
    format_options: FormatOptions = field(default_factory=FormatOptions)
    signature: SignatureSettings = field(default_factory=SignatureSettings)
    previous_secret: bytes | None = field(default=None, repr=False)
    previous_secret_until: float | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    connect_timeout_s: float = 5.0
    timeout_s: float = 15.0
    endpoint_concurrency: int = 8
    rate_limit_per_s: float | None = None
    ordered: bool = False
    delay_s: float = 0.0


# --- Bitcoin family ------------------------------------------------------------------------
# Bitcoin, Litecoin, Dogecoin, Dash, Bitcoin Cash and Bitcoin SV nodes all describe blocks as
# transactions with inputs and outputs. Amounts are integer satoshis (the coin's smallest
# unit) everywhere; addresses are strings in the form the node reports, which for every
# supported node is the canonical form of :mod:`watcher.btc_addresses`.

Outpoint = tuple[str, int]
"""A transaction output by reference: (txid, output index)."""


@dataclass(frozen=True, slots=True)
class BtcTxIn:
    """A non-coinbase input: the output it spends and, when known, who owned it.

    ``address`` and ``value_sat`` come from the node's ``prevout`` (Bitcoin Core 23+) or from
    a lookup of the spent transaction; they are None when neither was available.
    """

    prev_txid: str
    prev_vout: int
    address: str | None = None
    value_sat: int | None = None

    @property
    def outpoint(self) -> Outpoint:
        """The spent output as ``(txid, index)``."""
        return (self.prev_txid, self.prev_vout)


@dataclass(frozen=True, slots=True)
class BtcTxOut:
    """An output: its index, the single address it pays (None for scripts without one), amount."""

    n: int
    address: str | None
    value_sat: int


@dataclass(frozen=True, slots=True)
class BtcTx:
    """A transaction as the Bitcoin adapter normalised it.

    A coinbase has no inputs. ``raw`` is the node's own JSON object; its amounts are
    ``decimal.Decimal`` values, exactly as the node wrote them.
    """

    txid: str
    inputs: tuple[BtcTxIn, ...]
    outputs: tuple[BtcTxOut, ...]
    coinbase: bool
    raw: JSONObject


@dataclass(frozen=True, slots=True)
class BtcBlock:
    """A Bitcoin-family block with its transactions, coinbase first."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    transactions: tuple[BtcTx, ...]

    @property
    def transaction_count(self) -> int:
        """How many transactions the block holds."""
        return len(self.transactions)


@dataclass(frozen=True, slots=True)
class BtcTxStatus:
    """What ``getrawtransaction`` says about a transaction: the transaction and where it is.

    ``block_hash`` is None and ``confirmations`` 0 while the transaction waits in the mempool.
    """

    tx: BtcTx
    block_hash: str | None
    confirmations: int


@dataclass(frozen=True, slots=True)
class WatchedOutput:
    """An output paid to a watched address on a UTXO chain (Bitcoin family).

    Remembered so that a later input spending it is recognised as a payment out of the
    address even when the node does not say whose output an input spends. ``spent_block``
    is the height of the block that spent it, None while unspent.
    """

    txid: str
    n: int
    address: str
    value_sat: int
    block_number: int
    spent_block: int | None = None

    @property
    def outpoint(self) -> Outpoint:
        """The output as ``(txid, index)``."""
        return (self.txid, self.n)
