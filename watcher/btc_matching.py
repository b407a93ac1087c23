"""Which subscriptions a Bitcoin-family transaction concerns: a watched-address index, pure.

Incoming payments are outputs paying a watched address. Outgoing payments are inputs that
spend an output of a watched address, recognised by the input's ``prevout`` address when
the node supplied it, or else by looking the spent outpoint up in ``known``: the watched
outputs the daemon has already recorded (and :meth:`BitcoinClient.resolve_inputs
<watcher.chains.bitcoin.BitcoinClient.resolve_inputs>` fills the rest from the node).

The cost is one membership test per output and per input, whatever the number of watched
addresses. Each test is still a memory access once the watch list outgrows the CPU caches
(a set of a million addresses has a 32 MB table), so a filter answers first and the exact
set is asked only on a "maybe":

- where the package's C accelerator (``watcher._address_filter``) was built, two blocked
  Bloom filters over Python's own hash of the address, for every watch list. Its
  :meth:`~watcher._address_filter.AddressFilter.candidates` walks a whole block in C and
  fetches the filter's lines ahead of the tests, so that their memory accesses overlap;
  the transactions it picks out are then matched here, one by one;
- otherwise, from :data:`PREFILTER_FROM` addresses on, an ``rbloom`` Bloom filter.

Which subscriptions watch a matched address is asked only for the few addresses that match.
A large watch list is nearly always one subscription's (an exchange's deposit addresses), so
the addresses watched by the largest subscription alone are not stored a second time: a
dictionary holds only the addresses some other subscription watches, and every other
watched address answers with the largest subscription. Memory stays at the set, that
(usually small) dictionary, the filters and the strings, which are the subscriptions' own.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from rbloom import Bloom

from watcher.models import BtcTx, Direction, Outpoint, Subscription

try:
    from watcher._address_filter import AddressFilter

    ACCELERATED = True
except ImportError:  # built where no C compiler was found
    ACCELERATED = False

# Without the accelerator: from this many watched addresses on, an rbloom Bloom filter
# answers most membership tests. About 0.6 MB per million addresses stays in the CPU caches
# better than the set's table (32 MB per million), and below this size the set is faster.
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

    __slots__ = ("_largest", "_maybe", "_others", "_scan", "_watched")

    def __init__(self, subscriptions: Iterable[Subscription], *, accelerated: bool = True) -> None:
        """``accelerated=False`` keeps to pure Python even where the C accelerator is built."""
        subs = list(subscriptions)
        largest = max(subs, key=lambda s: len(s.addresses), default=None)
        self._largest: tuple[Subscription, ...] = () if largest is None else (largest,)
        self._others = _watched_by_others(subs, largest)
        # frozenset() of a frozenset is that frozenset: one big watch list is not copied
        watched = frozenset(largest.addresses if largest is not None else ())
        if not watched.issuperset(self._others):
            watched = watched.union(self._others)
        self._watched = watched
        self._scan: AddressFilter | None = None
        self._maybe: Container[str] = watched
        if accelerated and ACCELERATED:
            self._scan = self._maybe = AddressFilter(watched)
        elif len(watched) >= PREFILTER_FROM:
            bloom = Bloom(len(watched), PREFILTER_FALSE_POSITIVES)
            bloom.update(watched)
            self._maybe = bloom

    @property
    def accelerated(self) -> bool:
        """Whether the C accelerator answers first (it was built, and not turned off)."""
        return self._scan is not None

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

    def matching(
        self,
        txs: Sequence[BtcTx],
        known: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS,
        seen: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS,
    ) -> Iterator[tuple[BtcTx, list[BtcMatch]]]:
        """The transactions of ``txs`` that touch a watched address, in order, with matches.

        The same as :meth:`match` for each transaction, but with the accelerator the
        transactions that cannot match are skipped in C. ``seen`` is read as each
        transaction is matched, so the caller may add the watched outputs of one
        transaction before the next is matched.
        """
        rest: Iterable[BtcTx] = txs
        if self._scan is not None:
            # Before ``stop`` every input names its address, so a transaction none of whose
            # addresses may be watched matches nothing; from ``stop`` on, outpoints count.
            hits, stop = self._scan.candidates(txs)
            for i in hits:
                matches = self.match(txs[i], known, seen)
                if matches:
                    yield txs[i], matches
            rest = islice(txs, stop, None)
        for tx in rest:
            matches = self.match(tx, known, seen)
            if matches:
                yield tx, matches

    def match_all(
        self, txs: Sequence[BtcTx], known: Mapping[Outpoint, KnownOutput] = _NO_OUTPOINTS
    ) -> list[tuple[BtcTx, list[BtcMatch]]]:
        """The transactions of ``txs`` (in block order) that touch a watched address, with matches.

        A watched output created by one transaction and spent by a later one of ``txs`` is
        recognised even when neither ``known`` nor the input says whose it was.
        """
        out: list[tuple[BtcTx, list[BtcMatch]]] = []
        seen: dict[Outpoint, KnownOutput] = {}
        for tx, matches in self.matching(txs, known, seen):
            out.append((tx, matches))
            received = {n for m in matches if m.direction is Direction.IN for _, n in m.outpoints}
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
