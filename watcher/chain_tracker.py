"""What every chain's tracker is made of: its subscriptions, activity ledger and pool. Pure.

:class:`~watcher.tracker.EthereumTracker` and :class:`~watcher.btc_tracker.BitcoinTracker`
differ in how they match a transaction and what a block's transactions mean; they hold the
same state and answer the follower's questions about it the same way. That part is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import Generic, TypeVar

from watcher.activities import CONFIRM_OR_REORG, ActivityLedger
from watcher.conditions import evaluate
from watcher.events import BlockHeader, block_data, block_event
from watcher.mempool import PoolTracker
from watcher.models import Activity, BlockRef, Event, EventType, PendingTx, Subscription

Clock = Callable[[], float]
TxT = TypeVar("TxT")


class ChainTracker(Generic[TxT]):
    """The state one chain's tracker keeps, and what it says about it.

    A subclass sets ``_index`` (its watched-address index) in :meth:`_index_subscriptions`,
    which runs at construction and whenever the subscriptions change.
    """

    _index: Sized

    def __init__(
        self,
        chain: str,
        subscriptions: Iterable[Subscription],
        *,
        recent_blocks: Iterable[BlockRef] = (),
        activities: Iterable[Activity] = (),
        pending: Iterable[PendingTx] = (),
        clock: Clock = time.time,
        dropped_grace_s: float = 60.0,
        remember_for: frozenset[EventType] = CONFIRM_OR_REORG,
    ) -> None:
        self.chain = chain
        self._set_subscriptions(subscriptions)
        self._clock = clock
        self._ledger = ActivityLedger(
            chain,
            self._subs,
            recent_blocks=recent_blocks,
            activities=activities,
            remember_for=remember_for,
        )
        self.pool: PoolTracker[TxT] = PoolTracker(
            chain, self._subs, pending=pending, grace_s=dropped_grace_s
        )

    def _set_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        subs = [s for s in subscriptions if s.chain == self.chain]
        self._subs: dict[str, Subscription] = {s.id: s for s in subs}
        self._block_subs = tuple(s for s in subs if EventType.BLOCK_MINED in s.events)
        self._index_subscriptions(subs)

    def _index_subscriptions(self, subscriptions: list[Subscription]) -> None:
        raise NotImplementedError

    def replace_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        """Match from now on against ``subscriptions``, keeping everything already tracked.

        Mined activities keep the confirmation height they were given; those of a removed
        subscription, or of one that no longer wants ``tx.confirmed``, are settled silently
        when they come due. Pending transactions of a removed subscription produce nothing.
        """
        self._set_subscriptions(subscriptions)
        self._ledger.replace_subscriptions(self._subs)
        self.pool.replace_subscriptions(self._subs)

    @property
    def watched_addresses(self) -> int:
        """How many distinct addresses this chain's subscriptions watch."""
        return len(self._index)

    @property
    def awaiting_confirmation(self) -> int:
        """How many mined activities still wait for their confirmation depth."""
        return self._ledger.awaiting_confirmation

    def recent_blocks(self) -> list[BlockRef]:
        """The remembered canonical blocks, oldest first."""
        return self._ledger.recent_blocks()

    def find_ancestor(self, node_hashes: Mapping[int, str]) -> BlockRef | None:
        """The newest remembered block the node still has at the same height, if any."""
        return self._ledger.find_ancestor(node_hashes)

    def _block_events(self, block: BlockHeader, now: float) -> list[Event]:
        """``block.mined`` for each subscription that wants every block (and its conditions)."""
        if not self._block_subs:
            return []
        fields = block_data(block)
        return [
            block_event(self.chain, sub.id, block, now)
            for sub in self._block_subs
            if evaluate(sub.condition, fields)
        ]
