"""Which subscriptions a transaction or token transfer concerns: pure, in-memory indexes.

Matching costs a few dictionary lookups per transaction whatever the number of watched
addresses, which keeps catch-up speed flat from ten addresses to hundreds of thousands.
Kind and direction filters are applied here; conditions need the event's data and are
evaluated by the tracker once that is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from watcher.models import Direction, Kind, Subscription, TokenTransfer, Tx


@dataclass(frozen=True, slots=True)
class Match:
    """A subscription concerned through one watched address (or watched token contract).

    ``direction`` is None for a match on a watched token contract: the transfer is neither
    into nor out of anything the subscription watches.
    """

    subscription: Subscription
    address: str
    direction: Direction | None


def _accepts(sub: Subscription, kind: Kind, direction: Direction | None) -> bool:
    if kind not in sub.kinds:
        return False
    return sub.direction is None or sub.direction == direction


class AddressIndex:
    """Watched address -> subscriptions, and watched token contract -> subscriptions."""

    __slots__ = ("_by_address", "_by_token")

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        subs = list(subscriptions)
        self._by_address = _index(subs, lambda s: s.addresses)
        self._by_token = _index(subs, lambda s: s.tokens)

    def __len__(self) -> int:
        return len(self._by_address)

    @property
    def watched(self) -> AbstractSet[str]:
        """The watched addresses, for a membership test before :meth:`match`."""
        return self._by_address.keys()

    def match(self, tx: Tx) -> list[Match]:
        """Subscriptions a transaction concerns through its sender or recipient."""
        by_address = self._by_address
        outgoing = by_address.get(tx.sender)
        incoming = by_address.get(tx.recipient) if tx.recipient is not None else None
        if outgoing is None and incoming is None:
            return []
        return self._sides(Kind.NATIVE, tx.sender, outgoing, tx.recipient, incoming)

    def match_transfer(self, transfer: TokenTransfer) -> list[Match]:
        """Subscriptions a token transfer concerns: by sender, recipient or token contract."""
        by_address = self._by_address
        outgoing = by_address.get(transfer.sender)
        incoming = by_address.get(transfer.recipient)
        by_token = self._by_token.get(transfer.token)
        if outgoing is None and incoming is None and by_token is None:
            return []
        matches = self._sides(
            transfer.kind, transfer.sender, outgoing, transfer.recipient, incoming
        )
        if by_token is not None:
            matched = {m.subscription.id for m in matches}
            matches.extend(
                Match(sub, transfer.token, None)
                for sub in by_token
                if sub.id not in matched and _accepts(sub, transfer.kind, None)
            )
        return matches

    @staticmethod
    def _sides(
        kind: Kind,
        sender: str,
        outgoing: tuple[Subscription, ...] | None,
        recipient: str | None,
        incoming: tuple[Subscription, ...] | None,
    ) -> list[Match]:
        matches: list[Match] = []
        if outgoing is not None:
            matches.extend(
                Match(sub, sender, Direction.OUT)
                for sub in outgoing
                if _accepts(sub, kind, Direction.OUT)
            )
        if incoming is not None and recipient is not None:
            matches.extend(
                Match(sub, recipient, Direction.IN)
                for sub in incoming
                if _accepts(sub, kind, Direction.IN)
            )
        return matches


def _index(
    subs: list[Subscription], keys: Callable[[Subscription], frozenset[str]]
) -> dict[str, tuple[Subscription, ...]]:
    """key -> the subscriptions listing it, in subscription order.

    Watch lists run to hundreds of thousands of addresses, nearly all in one subscription:
    the largest set goes in at C speed with ``dict.fromkeys``, the rest one by one.
    """
    if not subs:
        return {}
    order = {id(sub): position for position, sub in enumerate(subs)}
    largest = max(subs, key=lambda sub: len(keys(sub)))
    index: dict[str, tuple[Subscription, ...]] = dict.fromkeys(keys(largest), (largest,))
    for sub in subs:
        if sub is largest:
            continue
        for key in keys(sub):
            found = index.get(key)
            if found is None:
                index[key] = (sub,)
            else:
                index[key] = tuple(sorted((*found, sub), key=lambda s: order[id(s)]))
    return index
