"""What every chain's tracker shares: recent blocks, mined activities, confirmations, rewinds.

Whatever the chain, a subscription told that a transaction was mined must later hear that it
was confirmed at its depth, or that its block left the canonical chain. :class:`ActivityLedger`
keeps that memory: the last :data:`REORG_WINDOW` canonical blocks and the activities reported
in them, with the heights at which confirmations fall due. It is pure: trackers feed it values
and get events and state changes back, which they hand to the store with the block.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from watcher.conditions import evaluate
from watcher.events import confirmed_event, mined_event, reorged_event
from watcher.models import Activity, BlockRef, Event, EventType, JSONObject, Subscription

# How many recent blocks are kept (hashes, activities) to walk back over a reorg.
REORG_WINDOW = 256
# What an activity is remembered for when the chain's tracker does not say otherwise.
CONFIRM_OR_REORG = frozenset({EventType.TX_CONFIRMED, EventType.TX_REORGED})


@dataclass(frozen=True, slots=True)
class Rewound:
    """What a rewind took back: the ``tx.reorged`` events and the activities they cancel."""

    events: list[Event]
    activities: list[Activity]


class ActivityLedger:
    """The recent canonical blocks of one chain and the activities reported in them.

    An activity is remembered when its subscription wants one of ``remember_for`` (by
    default a confirmation or a reorg notice); it is forgotten once it is confirmed, or was
    never to be, and its block fell out of the reorg window.
    """

    def __init__(
        self,
        chain: str,
        subscriptions: Mapping[str, Subscription],
        *,
        recent_blocks: Iterable[BlockRef] = (),
        activities: Iterable[Activity] = (),
        remember_for: frozenset[EventType] = CONFIRM_OR_REORG,
    ) -> None:
        self.chain = chain
        self._subs = subscriptions
        self._remember_for = remember_for
        self._recent: deque[BlockRef] = deque(sorted(recent_blocks, key=lambda b: b.number))
        self._activities: dict[tuple[str, str], Activity] = {}
        self._by_block: dict[int, list[tuple[str, str]]] = {}
        self._due: list[tuple[int, int, tuple[str, str]]] = []
        self._order = itertools.count()
        for activity in activities:
            self._remember(activity)

    def replace_subscriptions(self, subscriptions: Mapping[str, Subscription]) -> None:
        """Answer to ``subscriptions`` from now on.

        Remembered activities keep the confirmation height they were given; those of a
        removed subscription, or of one that no longer wants ``tx.confirmed``, are settled
        silently when they come due.
        """
        self._subs = subscriptions

    @property
    def awaiting_confirmation(self) -> int:
        """How many mined activities still wait for their confirmation depth."""
        return sum(
            1 for a in self._activities.values() if a.confirm_at and not a.confirmed_event_id
        )

    def recent_blocks(self) -> list[BlockRef]:
        """The remembered canonical blocks, oldest first."""
        return list(self._recent)

    def mined(
        self,
        sub: Subscription,
        data: JSONObject,
        now: float,
        events: list[Event],
        changed: list[Activity],
    ) -> None:
        """Report ``data`` (a mined transaction's event data) to ``sub`` if its conditions hold.

        ``data`` must carry ``tx_hash``, ``block_number`` and ``block_hash``; the activity
        is remembered for the confirmation and reorg notices the subscription wants.
        """
        if not evaluate(sub.condition, data):
            return
        mined = mined_event(self.chain, sub.id, data, now)
        if EventType.TX_MINED in sub.events:
            events.append(mined)
        if not sub.events & self._remember_for:
            return
        wants_confirm = EventType.TX_CONFIRMED in sub.events
        number = int(data["block_number"])
        activity = Activity(
            chain=self.chain,
            subscription_id=sub.id,
            mined_event_id=mined.id,
            tx_hash=str(data["tx_hash"]),
            block_number=number,
            block_hash=str(data["block_hash"]),
            confirm_at=number + sub.confirmations - 1 if wants_confirm else None,
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

    def close_block(
        self, block: BlockRef, now: float, events: list[Event], changed: list[Activity]
    ) -> None:
        """Confirm what ``block`` makes deep enough, then make it the newest recent block."""
        self._confirm_due(block.number, now, events, changed)
        self._recent.append(block)
        while len(self._recent) > REORG_WINDOW:
            self._recent.popleft()
        self._forget_settled(block.number - REORG_WINDOW)

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

    def find_ancestor(self, node_hashes: Mapping[int, str]) -> BlockRef | None:
        """The newest remembered block the node still has at the same height, if any."""
        for ref in reversed(self._recent):
            if node_hashes.get(ref.number) == ref.hash:
                return ref
        return None

    def rewind(self, ancestor: BlockRef, now: float) -> Rewound:
        """Forget every block above ``ancestor``; ``tx.reorged`` for what was said about them."""
        events: list[Event] = []
        lost: list[Activity] = []
        for number in sorted(n for n in self._by_block if n > ancestor.number):
            for key in self._by_block.pop(number):
                activity = self._activities.pop(key)
                lost.append(activity)
                sub = self._subs.get(activity.subscription_id)
                if sub is not None and EventType.TX_REORGED in sub.events:
                    events.append(reorged_event(activity, now))
        while self._recent and self._recent[-1].number > ancestor.number:
            self._recent.pop()
        return Rewound(events, lost)
