"""The mempool side of the lifecycle: pending, dropped and replaced. Pure, no I/O, any chain.

The follower shows this tracker what the node's pool holds and what became of the watched
transactions it tracks; the tracker answers with events and the state changes to persist.
A transaction that leaves the pool unmined is only reported dropped after it stayed gone for
a grace period (pools evict and re-admit under load); one whose conflict key was taken by
another transaction (on Ethereum the same sender and nonce, on Bitcoin a spent outpoint) is
reported replaced instead, never both.

What differs between chains - a transaction's hash, its conflict keys, and which watched
addresses it touches with which event data - comes in through :class:`PoolRules`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Generic, Protocol, TypeVar

from watcher.events import dropped_event, pending_event, replaced_event
from watcher.models import (
    MEMPOOL_EVENTS,
    Event,
    EventType,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    Subscription,
)

TxT = TypeVar("TxT")
TxT_contra = TypeVar("TxT_contra", contravariant=True)


class TxStatus(enum.StrEnum):
    """What the node says about a transaction hash."""

    PENDING = "pending"
    MINED = "mined"
    UNKNOWN = "unknown"


class PoolRules(Protocol[TxT_contra]):
    """How one chain's transactions look to the mempool tracker."""

    def tx_hash(self, tx: TxT_contra) -> str:
        """The transaction's hash (txid)."""
        ...

    def conflicts(self, tx: TxT_contra) -> Iterable[str]:
        """Keys that no other transaction may hold at the same time."""
        ...

    def describe(self, tx: TxT_contra, now: float) -> PendingTx | None:
        """The pending entry for ``tx`` if it concerns a subscription, else None."""
        ...


class PoolTracker(Generic[TxT]):
    """Watched transactions in the mempool of one chain."""

    def __init__(
        self,
        chain: str,
        subscriptions: Mapping[str, Subscription],
        pending: Iterable[PendingTx] = (),
        grace_s: float = 60.0,
    ) -> None:
        self.chain = chain
        self._subs = subscriptions
        self._grace_s = grace_s
        self._by_hash: dict[str, PendingTx] = {}
        self._by_conflict: dict[str, str] = {}
        # Hashes already looked at in a complete view of the pool (pruned to what it holds).
        self._examined: set[str] = set()
        for item in pending:
            self._add(item)
        self.wanted = any(s.events & MEMPOOL_EVENTS for s in subscriptions.values())

    def replace_subscriptions(self, subscriptions: Mapping[str, Subscription]) -> None:
        """Answer to ``subscriptions`` from now on; tracked transactions stay tracked."""
        self._subs = subscriptions
        self.wanted = any(s.events & MEMPOOL_EVENTS for s in subscriptions.values())

    def tracked(self) -> list[str]:
        """Hashes of the watched transactions believed to be pending."""
        return list(self._by_hash)

    def conflict_keys(self) -> Collection[str]:
        """The conflict keys (:meth:`PoolRules.conflicts`) of the tracked transactions."""
        return self._by_conflict.keys()

    def examined(self) -> Collection[str]:
        """Hashes of pool transactions already looked at; a source need not send them again."""
        return self._examined

    def wants(self, match: PoolMatch, kind: EventType) -> bool:
        """Whether the subscription of ``match`` asked for ``kind``."""
        sub = self._subs.get(match.subscription_id)
        return sub is not None and kind in sub.events

    def add(self, item: PendingTx) -> PendingTx:
        """Track ``item`` (again), e.g. a transaction whose block left the chain."""
        self._add(item)
        return item

    def _add(self, item: PendingTx) -> None:
        self._by_hash[item.tx_hash] = item
        for key in item.conflicts:
            self._by_conflict[key] = item.tx_hash

    def _remove(self, tx_hash: str) -> PendingTx:
        item = self._by_hash.pop(tx_hash)
        for key in item.conflicts:
            if self._by_conflict.get(key) == tx_hash:
                del self._by_conflict[key]
        return item

    def _replaced_by(
        self, tx_hash: str, conflicts: Iterable[str], mined: bool, now: float
    ) -> tuple[list[Event], list[str]]:
        """Events and removals for the tracked transactions whose keys ``tx_hash`` took."""
        events: list[Event] = []
        removed: list[str] = []
        for key in conflicts:
            previous = self._by_conflict.get(key)
            if previous is None or previous == tx_hash:
                continue
            item = self._remove(previous)
            removed.append(previous)
            events.extend(
                replaced_event(item, m, tx_hash, mined, now)
                for m in item.matches
                if self.wants(m, EventType.TX_REPLACED)
            )
        return events, removed

    def observe(
        self,
        present: AbstractSet[str] | None,
        seen: Sequence[TxT],
        rules: PoolRules[TxT],
        statuses: Mapping[str, TxStatus],
        now: float,
    ) -> PoolOutcome:
        """Account for a look at the pool and for the ``statuses`` of tracked transactions.

        ``present`` holds every hash in the pool, or is None when the node only told what
        is new; ``seen`` are the transactions to look at (all, or only the new ones).
        """
        events: list[Event] = []
        upserted: dict[str, PendingTx] = {}
        removed: list[str] = []
        if present is not None:
            for tx_hash in [h for h, i in self._by_hash.items() if i.gone_since is not None]:
                if tx_hash in present:
                    upserted[tx_hash] = self._back(self._by_hash[tx_hash])
        looked_at: list[str] = []
        for tx in seen:
            tx_hash = rules.tx_hash(tx)
            looked_at.append(tx_hash)
            current = self._by_hash.get(tx_hash)
            if current is not None:
                if current.gone_since is not None:
                    upserted[tx_hash] = self._back(current)
                continue
            if tx_hash in self._examined:
                continue
            replaced, gone = self._replaced_by(tx_hash, rules.conflicts(tx), False, now)
            events.extend(replaced)
            for previous in gone:
                upserted.pop(previous, None)
                removed.append(previous)
            item = rules.describe(tx, now)
            if item is None:
                continue
            self._add(item)
            upserted[tx_hash] = item
            events.extend(
                pending_event(item, m, now)
                for m in item.matches
                if self.wants(m, EventType.TX_PENDING)
            )
        if present is not None:
            self._examined.update(looked_at)
            self._examined.intersection_update(present)
        for tx_hash, status in statuses.items():
            self._account(tx_hash, status, now, events, upserted, removed)
        return PoolOutcome(tuple(events), tuple(upserted.values()), tuple(removed))

    def _account(
        self,
        tx_hash: str,
        status: TxStatus,
        now: float,
        events: list[Event],
        upserted: dict[str, PendingTx],
        removed: list[str],
    ) -> None:
        item = self._by_hash.get(tx_hash)
        if item is None:
            return
        if status is TxStatus.MINED:
            # The block carrying it reports it; nothing to say about the pool.
            self._remove(tx_hash)
            upserted.pop(tx_hash, None)
            removed.append(tx_hash)
        elif status is TxStatus.PENDING:
            if item.gone_since is not None:
                upserted[tx_hash] = self._back(item)
        elif item.gone_since is None:
            gone = PendingTx(
                item.chain, item.tx_hash, item.conflicts, item.data, item.first_seen, now,
                item.matches,
            )  # fmt: skip
            self._add(gone)
            upserted[tx_hash] = gone
        elif now - item.gone_since >= self._grace_s:
            self._remove(tx_hash)
            upserted.pop(tx_hash, None)
            removed.append(tx_hash)
            events.extend(
                dropped_event(item, m, now)
                for m in item.matches
                if self.wants(m, EventType.TX_DROPPED)
            )

    def _back(self, item: PendingTx) -> PendingTx:
        back = PendingTx(
            item.chain, item.tx_hash, item.conflicts, item.data, item.first_seen, None,
            item.matches,
        )  # fmt: skip
        self._add(back)
        return back

    def on_block(
        self, txs: Iterable[TxT], rules: PoolRules[TxT], now: float
    ) -> tuple[list[Event], list[str]]:
        """Forget tracked transactions the block mined; report those it replaced."""
        if not self._by_hash:
            return [], []
        events: list[Event] = []
        removed: list[str] = []
        for tx in txs:
            tx_hash = rules.tx_hash(tx)
            if tx_hash in self._by_hash:
                self._remove(tx_hash)
                removed.append(tx_hash)
                continue
            replaced, gone = self._replaced_by(tx_hash, rules.conflicts(tx), True, now)
            events.extend(replaced)
            removed.extend(gone)
        return events, removed
