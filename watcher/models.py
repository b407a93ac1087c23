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
    attempts: int  # made so far in the current retry schedule (a replay starts a new one)


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
