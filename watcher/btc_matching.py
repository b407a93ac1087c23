"""Which subscriptions a Bitcoin-family transaction concerns: a watched-address index, pure.

Incoming payments are outputs paying a watched address. Outgoing payments are inputs that
spend an output of a watched address, recognised by the input's ``prevout`` address when
the node supplied it, or else by looking the spent outpoint up in ``known``: the watched
outputs the daemon has already recorded (and :meth:`BitcoinClient.resolve_inputs
<watcher.chains.bitcoin.BitcoinClient.resolve_inputs>` fills the rest from the node).

The cost is one membership test per output and per input, whatever the number of watched
addresses: a set probe for an absent key touches one cache line, where a dictionary touches
two (its index, then its entry), which made a dictionary-only index twice as slow with a
million addresses as with ten thousand. With a million, even that one line is a memory
access (the set's table is 32 MB), so large watch lists are asked through a Bloom filter
first, small enough to stay in the CPU caches.

Which subscriptions watch a matched address is asked only for the few addresses that match.
A large watch list is nearly always one subscription's (an exchange's deposit addresses), so
the addresses watched by the largest subscription alone are not stored a second time: a
dictionary holds only the addresses some other subscription watches, and every other
watched address answers with the largest subscription. Memory stays at the set, that
(usually small) dictionary and the strings, which are the subscriptions' own.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rbloom import Bloom

from watcher.models import BtcTx, Direction, Outpoint, Subscription

# From this many watched addresses on, a Bloom filter answers most membership tests: about
# 0.6 MB per million addresses stays in the CPU caches, where the set's table (32 MB per
# million) makes nearly every probe a memory access. The set is asked only on a "maybe".
PREFILTER_FROM = 100_000
PREFILTER_FALSE_POSITIVES = 0.1


class KnownOutput(Protocol):
    """An output whose owner is known: a ``BtcTxOut``, or a remembered watched output."""

    @property
    def address(self) -> str | None: ...

    @property
    def value_sat(self) -> int: ...


_NO_OUTPOINTS: Mapping[Outpoint, KnownOutput] = {}


@dataclass(frozen=True, slots=True)
class BtcMatch:
    """One watched address on one side of a transaction, for one subscription.

    ``amount_sat`` is the total the address received (``in``) or spent (``out``) in the
    transaction; ``outpoints`` are the outputs it received, or the outputs it spent.
    """

    subscription: Subscription
    address: str
    direction: Direction
    amount_sat: int
    outpoints: tuple[Outpoint, ...]


class BtcAddressIndex:
    """Watched address -> the subscriptions watching it, for one chain."""

    __slots__ = ("_largest", "_maybe", "_others", "_watched")

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        subs = list(subscriptions)
        largest = max(subs, key=lambda s: len(s.addresses), default=None)
        self._largest: tuple[Subscription, ...] = () if largest is None else (largest,)
        self._others = _watched_by_others(subs, largest)
        # frozenset() of a frozenset is that frozenset: one big watch list is not copied
        watched = frozenset(largest.addresses if largest is not None else ())
        if not watched.issuperset(self._others):
            watched = watched.union(self._others)
        self._watched = watched
        self._maybe: Container[str] = self._watched
        if len(self._watched) >= PREFILTER_FROM:
            bloom = Bloom(len(self._watched), PREFILTER_FALSE_POSITIVES)
            bloom.update(self._watched)
            self._maybe = bloom

    def __len__(self) -> int:
        return len(self._watched)

    def __contains__(self, address: object) -> bool:
        return address in self._maybe and address in self._watched

    def match(
        self,
        tx: BtcTx,
        known: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS,
        seen: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS,
    ) -> list[BtcMatch]:
        """Every (subscription, address, direction) ``tx`` touches, with amounts; usually empty.

        ``known`` and ``seen`` are both looked up for inputs without a prevout address:
        ``seen`` holds watched outputs created earlier in the same block.
        """
        watched, maybe = self._watched, self._maybe
        received: list[tuple[str, int, Outpoint]] = []
        for out in tx.outputs:
            address = out.address
            if address is not None and address in maybe and address in watched:
                received.append((address, out.value_sat, (tx.txid, out.n)))
        spent: list[tuple[str, int, Outpoint]] = []
        for txin in tx.inputs:
            address = txin.address
            if address is not None:
                if address in maybe and address in watched and txin.value_sat is not None:
                    spent.append((address, txin.value_sat, (txin.prev_txid, txin.prev_vout)))
            elif known or seen:
                outpoint = (txin.prev_txid, txin.prev_vout)
                prev = known.get(outpoint) or seen.get(outpoint)
                if prev is not None and prev.address is not None and prev.address in watched:
                    spent.append((prev.address, prev.value_sat, outpoint))
        if not received and not spent:
            return []
        return self._matches(received, Direction.IN) + self._matches(spent, Direction.OUT)

    def _matches(
        self, hits: list[tuple[str, int, Outpoint]], direction: Direction
    ) -> list[BtcMatch]:
        totals: dict[str, tuple[int, list[Outpoint]]] = {}
        for address, amount, outpoint in hits:
            total, outpoints = totals.get(address, (0, []))
            outpoints.append(outpoint)
            totals[address] = (total + amount, outpoints)
        return [
            BtcMatch(sub, address, direction, total, tuple(outpoints))
            for address, (total, outpoints) in totals.items()
            for sub in self._others.get(address, self._largest)
        ]

    def match_all(
        self, txs: Iterable[BtcTx], known: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS
    ) -> list[tuple[BtcTx, list[BtcMatch]]]:
        """The transactions of ``txs`` (in block order) that touch a watched address, with matches.

        A watched output created by one transaction and spent by a later one of ``txs`` is
        recognised even when neither ``known`` nor the input says whose it was.
        """
        out: list[tuple[BtcTx, list[BtcMatch]]] = []
        seen: dict[Outpoint, KnownOutput] = {}
        for tx in txs:
            matches = self.match(tx, known, seen)
            if matches:
                out.append((tx, matches))
                received = {
                    n for m in matches if m.direction is Direction.IN for _, n in m.outpoints
                }
                for o in tx.outputs:
                    if o.n in received:
                        seen[(tx.txid, o.n)] = o
        return out


def _watched_by_others(
    subscriptions: list[Subscription], largest: Subscription | None
) -> dict[str, tuple[Subscription, ...]]:
    """Address -> the subscriptions watching it (in their order), for every address that a
    subscription other than ``largest`` watches. Equal tuples are one object."""
    others = {a for sub in subscriptions if sub is not largest for a in sub.addresses}
    by_address: dict[str, tuple[Subscription, ...]] = {}
    shared: dict[tuple[str, ...], tuple[Subscription, ...]] = {}
    for sub in subscriptions:
        alone = shared.setdefault((sub.id,), (sub,))
        for address in others & sub.addresses if sub is largest else sub.addresses:
            current = by_address.get(address)
            if current is None:
                by_address[address] = alone
            else:
                subs = (*current, sub)
                by_address[address] = shared.setdefault(tuple(s.id for s in subs), subs)
    return by_address
