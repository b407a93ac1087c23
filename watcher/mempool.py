"""The mempool side of the lifecycle: pending, dropped and replaced. Pure, no I/O.

The follower shows this tracker what the node's pool holds and what became of the watched
transactions it tracks; the tracker answers with events and the state changes to persist.
A transaction that leaves the pool unmined is only reported dropped after it stayed gone for
a grace period (pools evict and re-admit under load); one whose sender and nonce were taken
by another transaction is reported replaced instead, never both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence

from watcher.conditions import evaluate
from watcher.events import dropped_event, pending_event, pool_data, replaced_event
from watcher.matching import AddressIndex
from watcher.models import (
    MEMPOOL_EVENTS,
    Block,
    Event,
    EventType,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    Subscription,
    Tx,
)


class TxStatus(enum.StrEnum):
    """What the node says about a transaction hash."""

    PENDING = "pending"
    MINED = "mined"
    UNKNOWN = "unknown"


class PoolTracker:
    """Watched transactions in the mempool of one chain."""

    def __init__(
        self,
        chain: str,
        index: AddressIndex,
        subscriptions: Mapping[str, Subscription],
        pending: Iterable[PendingTx] = (),
        grace_s: float = 60.0,
    ) -> None:
        self.chain = chain
        self._index = index
        self._subs = subscriptions
        self._grace_s = grace_s
        self._by_hash: dict[str, PendingTx] = {}
        self._by_slot: dict[tuple[str, int], str] = {}
        for item in pending:
            self._add(item)
        self.wanted = any(s.events & MEMPOOL_EVENTS for s in subscriptions.values())

    def replace_subscriptions(
        self, index: AddressIndex, subscriptions: Mapping[str, Subscription]
    ) -> None:
        """Match new pool transactions against ``index``; tracked ones stay tracked."""
        self._index = index
        self._subs = subscriptions
        self.wanted = any(s.events & MEMPOOL_EVENTS for s in subscriptions.values())

    def tracked(self) -> list[str]:
        """Hashes of the watched transactions believed to be pending."""
        return list(self._by_hash)

    def _add(self, item: PendingTx) -> None:
        self._by_hash[item.tx.hash] = item
        self._by_slot[(item.tx.sender, item.tx.nonce)] = item.tx.hash

    def _remove(self, tx_hash: str) -> PendingTx:
        item = self._by_hash.pop(tx_hash)
        slot = (item.tx.sender, item.tx.nonce)
        if self._by_slot.get(slot) == tx_hash:
            del self._by_slot[slot]
        return item

    def _wants(self, match: PoolMatch, kind: EventType) -> bool:
        sub = self._subs.get(match.subscription_id)
        return sub is not None and kind in sub.events

    def _matches(self, tx: Tx) -> tuple[PoolMatch, ...]:
        out: list[PoolMatch] = []
        for m in self._index.match(tx):
            sub = m.subscription
            if not sub.events & MEMPOOL_EVENTS or m.direction is None:
                continue
            if evaluate(sub.condition, pool_data(tx, m.address, m.direction)):
                out.append(PoolMatch(sub.id, m.address, m.direction))
        return tuple(out)

    def _replaced(self, tx_hash: str, by: str, mined: bool, now: float) -> list[Event]:
        item = self._remove(tx_hash)
        return [
            replaced_event(item, m, by, mined, now)
            for m in item.matches
            if self._wants(m, EventType.TX_REPLACED)
        ]

    def observe(
        self, seen: Sequence[Tx], statuses: Mapping[str, TxStatus], now: float
    ) -> PoolOutcome:
        """Account for the pool's transactions ``seen`` and the ``statuses`` of tracked ones."""
        events: list[Event] = []
        upserted: dict[str, PendingTx] = {}
        removed: list[str] = []
        for tx in seen:
            current = self._by_hash.get(tx.hash)
            if current is not None:
                if current.gone_since is not None:
                    upserted[tx.hash] = self._back(current)
                continue
            previous = self._by_slot.get((tx.sender, tx.nonce))
            if previous is not None:
                events.extend(self._replaced(previous, tx.hash, False, now))
                upserted.pop(previous, None)
                removed.append(previous)
            matches = self._matches(tx)
            if not matches:
                continue
            item = PendingTx(self.chain, tx, now, None, matches)
            self._add(item)
            upserted[tx.hash] = item
            events.extend(
                pending_event(self.chain, tx, m, now)
                for m in matches
                if self._wants(m, EventType.TX_PENDING)
            )
        for tx_hash, status in statuses.items():
            tracked = self._by_hash.get(tx_hash)
            if tracked is None:
                continue
            item = tracked
            if status is TxStatus.MINED:
                # The block carrying it reports it; nothing to say about the pool.
                self._remove(tx_hash)
                upserted.pop(tx_hash, None)
                removed.append(tx_hash)
            elif status is TxStatus.PENDING:
                if item.gone_since is not None:
                    upserted[tx_hash] = self._back(item)
            elif item.gone_since is None:
                gone = PendingTx(item.chain, item.tx, item.first_seen, now, item.matches)
                self._add(gone)
                upserted[tx_hash] = gone
            elif now - item.gone_since >= self._grace_s:
                self._remove(tx_hash)
                upserted.pop(tx_hash, None)
                removed.append(tx_hash)
                events.extend(
                    dropped_event(item, m, now)
                    for m in item.matches
                    if self._wants(m, EventType.TX_DROPPED)
                )
        return PoolOutcome(tuple(events), tuple(upserted.values()), tuple(removed))

    def _back(self, item: PendingTx) -> PendingTx:
        back = PendingTx(item.chain, item.tx, item.first_seen, None, item.matches)
        self._add(back)
        return back

    def on_block(self, block: Block, now: float) -> tuple[list[Event], list[str]]:
        """Forget tracked transactions the block mined; report those it replaced."""
        if not self._by_hash:
            return [], []
        events: list[Event] = []
        removed: list[str] = []
        for tx in block.transactions:
            if tx.hash in self._by_hash:
                self._remove(tx.hash)
                removed.append(tx.hash)
                continue
            previous = self._by_slot.get((tx.sender, tx.nonce))
            if previous is not None:
                events.extend(self._replaced(previous, tx.hash, True, now))
                removed.append(previous)
        return events, removed
