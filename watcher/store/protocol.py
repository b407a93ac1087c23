"""The :class:`Store` protocol: what the daemon needs from durable storage.

The followers, the delivery workers and retention depend on this, not on SQLite, so a
server-backed store for several daemon instances can implement the same methods;
:class:`~watcher.store.SQLiteStore` is the default.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from watcher.models import BlockOutcome, BlockRef, PoolOutcome, RewindOutcome
from watcher.policy import SubscriptionHealth
from watcher.scheduling import Quota
from watcher.store.records import ChainState, Claimed, FinishedAttempt, TrackerState


class Store(Protocol):
    """What the daemon needs from durable storage."""

    async def chain_state(self, chain: str) -> ChainState: ...

    async def set_chain_id(self, chain: str, chain_id: str) -> None: ...

    async def tracker_state(self, chain: str) -> TrackerState: ...

    async def record_blocks(
        self, chain: str, expected: BlockRef | None, outcomes: Sequence[BlockOutcome]
    ) -> int: ...

    async def rewind(self, chain: str, expected: BlockRef, outcome: RewindOutcome) -> int: ...

    async def record_pool(self, chain: str, outcome: PoolOutcome) -> int: ...

    async def sync_subscriptions(self, ids: Sequence[str], now: float) -> None: ...

    async def next_due(self, now: float, subscription_ids: Sequence[str]) -> float | None: ...

    async def release(self, delivery_ids: Sequence[int]) -> None: ...

    async def record_attempts(
        self, attempts: Sequence[FinishedAttempt], now: float
    ) -> list[SubscriptionHealth]: ...

    async def record_and_claim(
        self,
        attempts: Sequence[FinishedAttempt],
        now: float,
        quotas: Mapping[str, Quota],
        limit: int,
        lease_s: float,
        waiting: Collection[str] = (),
    ) -> Claimed: ...

    async def set_subscription_status(
        self, subscription_id: str, status: str, reason: str | None, now: float
    ) -> bool: ...

    async def release_leases(self) -> int: ...

    async def prune_attempts(self, before: float, batch: int) -> int: ...
