"""The transaction lifecycle for one chain: blocks in, events out. Pure, no I/O.

The tracker is the only place that decides which notifications a block produces. It keeps
the mined transactions that still wait for their confirmation depth in memory (the store
keeps a durable copy, written in the same transaction as the events), so confirming is a
heap pop rather than a query per block.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable

from watcher.events import confirmed_event, mined_event
from watcher.matching import AddressIndex
from watcher.models import (
    Block,
    BlockOutcome,
    BlockRef,
    Event,
    EventType,
    PendingConfirmation,
    Subscription,
)

Clock = Callable[[], float]


class ChainTracker:
    """Turns each new canonical block of one chain into events for its subscriptions."""

    def __init__(
        self,
        chain: str,
        subscriptions: Iterable[Subscription],
        pending: Iterable[PendingConfirmation] = (),
        clock: Clock = time.time,
    ) -> None:
        self.chain = chain
        self._index = AddressIndex(s for s in subscriptions if s.chain == chain)
        self._clock = clock
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, PendingConfirmation]] = []
        for item in pending:
            self._push(item)

    @property
    def watched_addresses(self) -> int:
        """How many distinct addresses this chain's subscriptions watch."""
        return len(self._index)

    @property
    def waiting(self) -> int:
        """How many mined transactions wait for their confirmation depth."""
        return len(self._waiting)

    def _push(self, item: PendingConfirmation) -> None:
        heapq.heappush(self._waiting, (item.confirm_at, next(self._order), item))

    def process(self, block: Block) -> BlockOutcome:
        """The events ``block`` produces, given every earlier block was processed."""
        now = self._clock()
        events: list[Event] = []
        added: list[PendingConfirmation] = []
        for tx in block.transactions:
            for match in self._index.match(tx):
                sub = match.subscription
                mined = mined_event(self.chain, block, tx, match, now)
                if EventType.TX_MINED in sub.events:
                    events.append(mined)
                if EventType.TX_CONFIRMED in sub.events:
                    added.append(
                        PendingConfirmation(
                            chain=self.chain,
                            subscription_id=sub.id,
                            mined_event_id=mined.id,
                            confirm_at=block.number + sub.confirmations - 1,
                            data=mined.data,
                        )
                    )
        for item in added:
            self._push(item)
        done: list[PendingConfirmation] = []
        while self._waiting and self._waiting[0][0] <= block.number:
            item = heapq.heappop(self._waiting)[2]
            done.append(item)
            depth = block.number - int(item.data["block_number"]) + 1
            events.append(confirmed_event(item, depth, now))
        return BlockOutcome(
            block=BlockRef(block.number, block.hash),
            parent_hash=block.parent_hash,
            events=tuple(events),
            confirmations_added=tuple(added),
            confirmations_done=tuple(done),
        )
