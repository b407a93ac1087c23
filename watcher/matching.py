"""Which subscriptions a transaction concerns: a watched-address index, pure and in memory.

Matching cost is two dictionary lookups per transaction whatever the number of watched
addresses, which keeps catch-up speed flat from ten addresses to hundreds of thousands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from watcher.models import Direction, Subscription, Tx


@dataclass(frozen=True, slots=True)
class Match:
    """A subscription concerned by a transaction through one of its watched addresses."""

    subscription: Subscription
    address: str
    direction: Direction


class AddressIndex:
    """Watched address -> the subscriptions watching it, for one chain."""

    __slots__ = ("_by_address",)

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        grouped: defaultdict[str, list[Subscription]] = defaultdict(list)
        for sub in subscriptions:
            for address in sub.addresses:
                grouped[address].append(sub)
        self._by_address: dict[str, tuple[Subscription, ...]] = {
            address: tuple(subs) for address, subs in grouped.items()
        }

    def __len__(self) -> int:
        return len(self._by_address)

    def match(self, tx: Tx) -> list[Match]:
        """Every (subscription, address, direction) the transaction touches; usually empty."""
        by_address = self._by_address
        outgoing = by_address.get(tx.sender)
        incoming = by_address.get(tx.recipient) if tx.recipient is not None else None
        if outgoing is None and incoming is None:
            return []
        matches: list[Match] = []
        if outgoing is not None:
            matches.extend(Match(sub, tx.sender, Direction.OUT) for sub in outgoing)
        if incoming is not None and tx.recipient is not None:
            matches.extend(Match(sub, tx.recipient, Direction.IN) for sub in incoming)
        return matches
