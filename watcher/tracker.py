"""The transaction lifecycle of one chain: blocks and pool snapshots in, events out. Pure.

The tracker is the only place that decides which notifications the chain produces. For each
new canonical block it reports what was mined (transactions and token transfers, filtered by
each subscription's kinds, direction and conditions), confirms what reached its depth, and
tells the mempool side what the block mined or replaced. On a reorg it is rewound to the
common ancestor, reporting ``tx.reorged`` for everything it had said about the lost blocks.

Everything it remembers (recent block hashes, activities awaiting confirmation or still
inside the reorg window, pending transactions) is also written to the store with the events
that changed it, so a restarted tracker picks up exactly where the last one stopped.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from watcher.conditions import evaluate
from watcher.events import (
    block_data,
    block_event,
    confirmed_event,
    mined_event,
    native_data,
    reorged_event,
    transfer_data,
)
from watcher.matching import AddressIndex, Match
from watcher.mempool import PoolTracker, TxStatus
from watcher.models import (
    Activity,
    Block,
    BlockOutcome,
    BlockRef,
    Event,
    EventType,
    JSONObject,
    PendingTx,
    PoolOutcome,
    RewindOutcome,
    Subscription,
    Tx,
)

Clock = Callable[[], float]
# How many recent blocks are kept (hashes, activities) to walk back over a reorg.
REORG_WINDOW = 256


class ChainTracker:
    """Turns one chain's blocks and mempool into events for its subscriptions."""

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
    ) -> None:
        self.chain = chain
        self._set_subscriptions(subscriptions)
        self._clock = clock
        self._recent: deque[BlockRef] = deque(sorted(recent_blocks, key=lambda b: b.number))
        self._activities: dict[tuple[str, str], Activity] = {}
        self._by_block: dict[int, list[tuple[str, str]]] = {}
        self._due: list[tuple[int, int, tuple[str, str]]] = []
        self._order = itertools.count()
        for activity in activities:
            self._remember(activity)
        self.pool = PoolTracker(
            chain, self._index, self._subs, pending=pending, grace_s=dropped_grace_s
        )

    def _set_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        subs = [s for s in subscriptions if s.chain == self.chain]
        self._subs: dict[str, Subscription] = {s.id: s for s in subs}
        self._index = AddressIndex(subs)
        self._block_subs = tuple(s for s in subs if EventType.BLOCK_MINED in s.events)
        self.wants_transfers = any(s.wants_transfers for s in subs)

    def replace_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        """Match from now on against ``subscriptions``, keeping everything already tracked.

        Mined activities keep the confirmation height they were given; those of a removed
        subscription, or of one that no longer wants ``tx.confirmed``, are settled silently
        when they come due. Pending transactions of a removed subscription produce nothing.
        """
        self._set_subscriptions(subscriptions)
        self.pool.replace_subscriptions(self._index, self._subs)

    @property
    def watched_addresses(self) -> int:
        """How many distinct addresses this chain's subscriptions watch."""
        return len(self._index)

    @property
    def awaiting_confirmation(self) -> int:
        """How many mined activities still wait for their confirmation depth."""
        return sum(
            1 for a in self._activities.values() if a.confirm_at and not a.confirmed_event_id
        )

    def recent_blocks(self) -> list[BlockRef]:
        """The remembered canonical blocks, oldest first."""
        return list(self._recent)

    # --- blocks ---------------------------------------------------------------------------

    def process(self, block: Block) -> BlockOutcome:
        """The events ``block`` produces, given that it extends the last processed block."""
        now = self._clock()
        events, pool_removed = self.pool.on_block(block, now)
        changed: list[Activity] = []
        if self._block_subs:
            fields = block_data(block)
            events.extend(
                block_event(self.chain, sub.id, block, now)
                for sub in self._block_subs
                if evaluate(sub.condition, fields)
            )
        for tx in block.transactions:
            for match in self._index.match(tx):
                self._mined(match, native_data(block, tx, match), now, events, changed)
        for transfer in block.transfers:
            for match in self._index.match_transfer(transfer):
                self._mined(match, transfer_data(block, transfer, match), now, events, changed)
        self._confirm_due(block.number, now, events, changed)
        ref = BlockRef(block.number, block.hash)
        self._recent.append(ref)
        while len(self._recent) > REORG_WINDOW:
            self._recent.popleft()
        self._forget_settled(block.number - REORG_WINDOW)
        return BlockOutcome(
            block=ref,
            parent_hash=block.parent_hash,
            events=tuple(events),
            activities=tuple(changed),
            pool_removed=tuple(pool_removed),
        )

    def _mined(
        self,
        match: Match,
        data: JSONObject,
        now: float,
        events: list[Event],
        changed: list[Activity],
    ) -> None:
        sub = match.subscription
        if not evaluate(sub.condition, data):
            return
        mined = mined_event(self.chain, sub.id, data, now)
        if EventType.TX_MINED in sub.events:
            events.append(mined)
        wants_confirm = EventType.TX_CONFIRMED in sub.events
        if not wants_confirm and EventType.TX_REORGED not in sub.events:
            return
        activity = Activity(
            chain=self.chain,
            subscription_id=sub.id,
            mined_event_id=mined.id,
            tx_hash=str(data["tx_hash"]),
            block_number=int(data["block_number"]),
            block_hash=str(data["block_hash"]),
            confirm_at=int(data["block_number"]) + sub.confirmations - 1 if wants_confirm else None,
            confirmed_event_id=None,
            data=data,
        )
        if self._remember(activity):
            changed.append(activity)

    def _remember(self, activity: Activity) -> bool:
        key = (activity.subscription_id, activity.mined_event_id)
        if key in self._activities:
            return False
        self._activities[key] = activity
        self._by_block.setdefault(activity.block_number, []).append(key)
        if activity.confirm_at is not None and activity.confirmed_event_id is None:
            heapq.heappush(self._due, (activity.confirm_at, next(self._order), key))
        return True

    def _confirm_due(
        self, height: int, now: float, events: list[Event], changed: list[Activity]
    ) -> None:
        while self._due and self._due[0][0] <= height:
            key = heapq.heappop(self._due)[2]
            activity = self._activities.get(key)
            if activity is None or activity.confirmed_event_id is not None:
                continue  # reorged out meanwhile, or already confirmed
            sub = self._subs.get(activity.subscription_id)
            if sub is None or EventType.TX_CONFIRMED not in sub.events:
                # Unsubscribed meanwhile: nothing is due any more; let the window forget it.
                settled = replace(activity, confirm_at=None)
                self._activities[key] = settled
                changed.append(settled)
                continue
            confirmed = confirmed_event(activity, height - activity.block_number + 1, now)
            done = replace(activity, confirmed_event_id=confirmed.id)
            self._activities[key] = done
            events.append(confirmed)
            changed.append(done)

    def _forget_settled(self, below: int) -> None:
        for number in [n for n in self._by_block if n < below]:
            keep = []
            for key in self._by_block[number]:
                activity = self._activities[key]
                if activity.confirm_at is not None and activity.confirmed_event_id is None:
                    keep.append(key)
                else:
                    del self._activities[key]
            if keep:
                self._by_block[number] = keep
            else:
                del self._by_block[number]

    # --- reorgs ---------------------------------------------------------------------------

    def find_ancestor(self, node_hashes: Mapping[int, str]) -> BlockRef | None:
        """The newest remembered block the node still has at the same height, if any."""
        for ref in reversed(self._recent):
            if node_hashes.get(ref.number) == ref.hash:
                return ref
        return None

    def rewind(self, ancestor: BlockRef) -> RewindOutcome:
        """Forget every block above ``ancestor``; ``tx.reorged`` for what was said about them."""
        now = self._clock()
        events: list[Event] = []
        for number in sorted(n for n in self._by_block if n > ancestor.number):
            for key in self._by_block.pop(number):
                activity = self._activities.pop(key)
                sub = self._subs.get(activity.subscription_id)
                if sub is not None and EventType.TX_REORGED in sub.events:
                    events.append(reorged_event(activity, now))
        while self._recent and self._recent[-1].number > ancestor.number:
            self._recent.pop()
        return RewindOutcome(ancestor=ancestor, events=tuple(events))

    # --- mempool --------------------------------------------------------------------------

    def observe_pool(self, seen: Sequence[Tx], statuses: Mapping[str, TxStatus]) -> PoolOutcome:
        """See :meth:`watcher.mempool.PoolTracker.observe`."""
        return self.pool.observe(seen, statuses, self._clock())
