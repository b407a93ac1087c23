"""What the store takes and returns: frozen records, so no caller ever handles a row.

Each is built from a row inside the store and handed out whole. :class:`CursorConflictError`,
the store's one error of its own, says a chain's cursor was not where its writer expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from watcher.errors import StoreError
from watcher.models import (
    Activity,
    BlockRef,
    DeliveryJob,
    JSONObject,
    PendingTx,
    WatchedOutput,
)
from watcher.policy import Decision, SubscriptionHealth


@dataclass(frozen=True, slots=True)
class ChainState:
    """What the store knows about a chain: the node's chain id and the last block processed.

    ``chain_id`` is whatever identifies the chain the node serves (an Ethereum chain id, a
    Bitcoin genesis block hash), as text.
    """

    chain_id: str | None
    cursor: BlockRef | None


@dataclass(frozen=True, slots=True)
class TrackerState:
    """Everything a chain's tracker remembers, as last committed."""

    recent_blocks: list[BlockRef]
    activities: list[Activity]
    pending: list[PendingTx]
    outputs: list[WatchedOutput]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery row as operators and tests see it."""

    id: int
    event_id: str
    event_type: str
    subscription_id: str
    status: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    body: bytes
    created_at: float = 0.0
    last_attempt_at: float | None = None
    completed_at: float | None = None
    leased: bool = False


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """One attempt to record: what happened, and what the retry policy decided."""

    delivery_id: int
    subscription_id: str
    request_id: str
    started_at: float
    duration_ms: int
    status_code: int | None
    error_class: str | None
    error: str | None
    response_body: bytes
    response_headers: Mapping[str, str]
    decision: Decision
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A row of the attempt log."""

    id: int
    delivery_id: int
    request_id: str
    started_at: float
    duration_ms: int
    status_code: int | None
    error_class: str | None
    error: str | None
    response_body: bytes
    response_headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A subscription's delivery state with its outbox counts, for operators."""

    health: SubscriptionHealth
    disabled_at: float | None
    last_attempt_at: float | None
    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A subscription created through the admin API, as stored.

    ``spec`` is its validated definition (JSON); ``secret`` the ``whsec_`` signing secret;
    ``previous_secret`` the one a rotation replaced, which also signs until
    ``previous_secret_until``.
    """

    id: str
    spec: JSONObject
    secret: str = field(repr=False)
    created_at: float
    updated_at: float
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: float | None = None


class CursorConflictError(StoreError):
    """The chain cursor moved under us: another writer, or a stale in-memory view."""


class Claimed(NamedTuple):
    """What one cycle of the delivery worker got from the store."""

    # subscriptions the recorded attempts changed the health of
    failing: list[SubscriptionHealth]
    # the deliveries leased to the worker
    jobs: list[DeliveryJob]
    # of the subscriptions whose deliveries the worker holds, those no longer active
    not_active: list[str]
