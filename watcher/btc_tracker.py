"""The transaction lifecycle of a Bitcoin-family chain: blocks and pool in, events out. Pure.

Payments are matched by :class:`~watcher.btc_matching.BtcAddressIndex`: outputs paying a
watched address (``in``) and inputs spending one of its outputs (``out``). Whose output an
input spends comes from the node's ``prevout`` where it gives one; else from the watched
outputs this tracker has seen created (remembered, and persisted with each block, until they
are spent and settled); else from the spent transaction, which the follower looks up on the
node when :meth:`BitcoinTracker.facts_needed` asks for it.

Mined, confirmed and reorged work as on every chain (:mod:`watcher.chain_tracker`,
:mod:`watcher.activities`). In the mempool, a pending transaction is replaced when another
transaction, pending or mined, spends one of the same outpoints; it is dropped when it leaves
the pool unmined for the grace period. When a reorg takes a block away, the watched
transactions it carried are followed as pending again: they may come back in a block, or be
dropped or replaced - by a double spend on the winning branch, for instance.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from watcher.activities import REORG_WINDOW
from watcher.btc_events import (
    match_fields,
    mined_data,
    outpoint_text,
    pool_data,
    pool_data_of,
    spent_outpoints,
    tx_data,
)
from watcher.btc_matching import BtcAddressIndex, BtcMatch, KnownOutput
from watcher.chain_tracker import ChainTracker, Clock
from watcher.conditions import evaluate
from watcher.mempool import TxStatus
from watcher.models import (
    MEMPOOL_EVENTS,
    Activity,
    BlockOutcome,
    BlockRef,
    BtcBlock,
    BtcTx,
    BtcTxOut,
    Direction,
    EventType,
    Kind,
    Outpoint,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    RewindOutcome,
    Subscription,
    WatchedOutput,
)
from watcher.protocols import PoolSnapshot

# The outputs of a looked-up transaction, by its txid: the facts this tracker asks for.
ParentOutputs = Mapping[str, Sequence[BtcTxOut]]
# A reorg puts mined transactions back among the pending ones for the subscriptions that
# want to hear if they are then dropped or replaced, so activities are kept for those too.
_REMEMBER_FOR = frozenset(
    {EventType.TX_CONFIRMED, EventType.TX_REORGED, EventType.TX_DROPPED, EventType.TX_REPLACED}
)
_REPENDING = frozenset({EventType.TX_DROPPED, EventType.TX_REPLACED})


def _accepts(sub: Subscription, direction: Direction) -> bool:
    return Kind.NATIVE in sub.kinds and (sub.direction is None or sub.direction == direction)


class BitcoinPoolRules:
    """Pending Bitcoin transactions: replaced by anything spending one of the same outpoints.

    ``known`` (the remembered watched outputs) and ``seen`` (watched outputs of looked-up or
    pending transactions) say whose outputs inputs without a prevout spend.
    """

    def __init__(
        self,
        chain: str,
        index: BtcAddressIndex,
        known: Mapping[Outpoint, KnownOutput],
        seen: Mapping[Outpoint, KnownOutput],
    ) -> None:
        self._chain = chain
        self._index = index
        self._known = known
        self._seen = seen

    def tx_hash(self, tx: BtcTx) -> str:
        """The txid."""
        return tx.txid

    def _spent(self, outpoint: Outpoint) -> KnownOutput | None:
        return self._known.get(outpoint) or self._seen.get(outpoint)

    def conflicts(self, tx: BtcTx) -> Iterable[str]:
        """The outpoints ``tx`` spends: no other transaction may spend them too."""
        return (outpoint_text(i.prev_txid, i.prev_vout) for i in tx.inputs)

    def describe(self, tx: BtcTx, now: float) -> PendingTx | None:
        """The pending entry for the watched addresses ``tx`` pays or spends from, if any."""
        matched = self._index.match(tx, self._known, self._seen)
        if not matched:
            return None
        data: dict[str, Any] | None = None
        matches: list[PoolMatch] = []
        for m in matched:
            sub = m.subscription
            if not sub.events & MEMPOOL_EVENTS or not _accepts(sub, m.direction):
                continue
            data = data or pool_data(tx, self._spent)
            fields = match_fields(m)
            if evaluate(sub.condition, {**data, **fields}):
                matches.append(PoolMatch(sub.id, m.address, m.direction, fields))
        if not matches or data is None:
            return None
        conflicts = tuple(self.conflicts(tx))
        return PendingTx(self._chain, tx.txid, conflicts, data, now, None, tuple(matches))


class WatchedOutputs:
    """The watched outputs of one chain: unspent ones, and what recent blocks changed.

    Outputs created or spent in the last blocks are remembered per block, so that a rewind
    can take them back; older spent outputs are forgotten.
    """

    def __init__(self, outputs: Iterable[WatchedOutput] = ()) -> None:
        self.unspent: dict[Outpoint, WatchedOutput] = {}
        self._created: dict[int, list[Outpoint]] = {}
        self._spent: dict[int, list[WatchedOutput]] = {}
        for output in outputs:
            if output.spent_block is None:
                self.unspent[output.outpoint] = output
                self._created.setdefault(output.block_number, []).append(output.outpoint)
            else:
                self._spent.setdefault(output.spent_block, []).append(output)

    def __len__(self) -> int:
        return len(self.unspent)

    def create(self, output: WatchedOutput) -> None:
        """Remember a watched output a block created."""
        if output.outpoint not in self.unspent:
            self.unspent[output.outpoint] = output
            self._created.setdefault(output.block_number, []).append(output.outpoint)

    def spend(self, outpoint: Outpoint, block_number: int) -> bool:
        """Mark an output spent by the block at ``block_number``; False if not a watched one."""
        output = self.unspent.pop(outpoint, None)
        if output is None:
            return False
        self._spent.setdefault(block_number, []).append(output)
        return True

    def settle(self, below: int) -> None:
        """Forget the per-block changes of blocks below ``below`` (out of the reorg window)."""
        for number in [n for n in self._created if n < below]:
            del self._created[number]
        for number in [n for n in self._spent if n < below]:
            del self._spent[number]

    def rewind(self, ancestor: int) -> None:
        """Undo the changes of every block above ``ancestor``."""
        for number in [n for n in self._spent if n > ancestor]:
            for output in self._spent.pop(number):
                self.unspent[output.outpoint] = output
        for number in [n for n in self._created if n > ancestor]:
            for outpoint in self._created.pop(number):
                self.unspent.pop(outpoint, None)


class BitcoinTracker(ChainTracker[BtcTx]):
    """Turns one Bitcoin-family chain's blocks and mempool into events for its subscriptions."""

    _index: BtcAddressIndex

    def __init__(
        self,
        chain: str,
        subscriptions: Iterable[Subscription],
        *,
        recent_blocks: Iterable[BlockRef] = (),
        activities: Iterable[Activity] = (),
        pending: Iterable[PendingTx] = (),
        outputs: Iterable[WatchedOutput] = (),
        clock: Clock = time.time,
        dropped_grace_s: float = 60.0,
    ) -> None:
        super().__init__(
            chain,
            subscriptions,
            recent_blocks=recent_blocks,
            activities=activities,
            pending=pending,
            clock=clock,
            dropped_grace_s=dropped_grace_s,
            remember_for=_REMEMBER_FOR,
        )
        self._outputs = WatchedOutputs(outputs)

    def _index_subscriptions(self, subscriptions: list[Subscription]) -> None:
        self._index = BtcAddressIndex(subscriptions)

    @property
    def watched_outputs(self) -> int:
        """How many unspent watched outputs are remembered."""
        return len(self._outputs)

    # --- what to look up ------------------------------------------------------------------

    def relevant_addresses(self) -> AbstractSet[str] | None:
        """None: any transaction may spend a watched output, whoever it pays."""
        return None

    def facts_needed(self, blocks: Iterable[BtcBlock]) -> Collection[str]:
        """Txids whose outputs some input of ``blocks`` spends, where nothing else says whose.

        An input needs no look-up when the node gave its prevout, when it spends a
        remembered watched output, or when it spends an output of the same batch (which, if
        it was watched, is remembered by the time the input is matched).
        """
        return self._missing([tx for block in blocks for tx in block.transactions])

    def pool_facts_needed(self, snapshot: PoolSnapshot[BtcTx]) -> Collection[str]:
        """Txids whose outputs the new pool transactions spend, where nothing else says whose."""
        return self._missing(snapshot.txs)

    def _missing(self, txs: Sequence[BtcTx]) -> set[str]:
        if not len(self._index):
            return set()
        own = {tx.txid for tx in txs}
        unspent = self._outputs.unspent
        return {
            i.prev_txid
            for tx in txs
            for i in tx.inputs
            if i.value_sat is None and i.prev_txid not in own and i.outpoint not in unspent
        }

    def _watched_parents(self, facts: ParentOutputs) -> dict[Outpoint, KnownOutput]:
        index = self._index
        return {
            (txid, o.n): o
            for txid, outs in facts.items()
            for o in outs
            if o.address is not None and o.address in index
        }

    # --- blocks ---------------------------------------------------------------------------

    def process(self, block: BtcBlock, facts: ParentOutputs | None = None) -> BlockOutcome:
        """The events ``block`` produces, given that it extends the last processed block."""
        now = self._clock()
        known = self._outputs.unspent
        rules = BitcoinPoolRules(self.chain, self._index, known, {})
        events, pool_removed = self.pool.on_block(block.transactions, rules, now)
        changed: list[Activity] = []
        events.extend(self._block_events(block, now))
        facts = facts or {}
        seen = self._watched_parents(facts)
        created: dict[Outpoint, WatchedOutput] = {}
        spent: list[Outpoint] = []

        def owner(outpoint: Outpoint) -> KnownOutput | None:
            found = known.get(outpoint) or seen.get(outpoint)
            if found is None:
                outputs = facts.get(outpoint[0], ())
                found = next((o for o in outputs if o.n == outpoint[1]), None)
            return found

        for tx, matches in self._index.matching(block.transactions, known, seen):
            shared = tx_data(tx, owner)
            self._track_outputs(block.number, tx, matches, seen, created, spent)
            for m in matches:
                if _accepts(m.subscription, m.direction):
                    data = mined_data(block, shared, m)
                    self._ledger.mined(m.subscription, data, now, events, changed)
        ref = BlockRef(block.number, block.hash)
        self._ledger.close_block(ref, now, events, changed)
        self._outputs.settle(block.number - REORG_WINDOW)
        return BlockOutcome(
            block=ref,
            parent_hash=block.parent_hash,
            events=tuple(events),
            activities=tuple(changed),
            pool_removed=tuple(pool_removed),
            outputs_created=tuple(created.values()),
            outputs_spent=tuple(spent),
        )

    def _track_outputs(
        self,
        number: int,
        tx: BtcTx,
        matches: list[BtcMatch],
        seen: dict[Outpoint, KnownOutput],
        created: dict[Outpoint, WatchedOutput],
        spent: list[Outpoint],
    ) -> None:
        """Remember the watched outputs ``tx`` creates; mark those it spends."""
        values = {o.n: o.value_sat for o in tx.outputs}
        for m in matches:
            for outpoint in m.outpoints:
                if m.direction is Direction.IN:
                    if outpoint in created:
                        continue
                    txid, n = outpoint
                    output = WatchedOutput(txid, n, m.address, values[n], number)
                    created[outpoint] = output
                    seen[outpoint] = output
                    self._outputs.create(output)
                elif self._outputs.spend(outpoint, number):
                    spent.append(outpoint)

    # --- reorgs ---------------------------------------------------------------------------

    def rewind(self, ancestor: BlockRef) -> RewindOutcome:
        """Forget every block above ``ancestor``: ``tx.reorged``, and its payments pending again."""
        now = self._clock()
        rewound = self._ledger.rewind(ancestor, now)
        self._outputs.rewind(ancestor.number)
        repending = self._repending(rewound.activities, now)
        for item in repending:
            self.pool.add(item)
        return RewindOutcome(ancestor, tuple(rewound.events), tuple(repending))

    def _repending(self, activities: Iterable[Activity], now: float) -> list[PendingTx]:
        """The lost blocks' payments, as pending transactions, for subscriptions that care."""
        by_tx: dict[str, tuple[dict[str, Any], list[PoolMatch]]] = {}
        for activity in activities:
            sub = self._subs.get(activity.subscription_id)
            if sub is None or not sub.events & _REPENDING:
                continue
            data, fields = pool_data_of(activity.data)
            match = PoolMatch(sub.id, fields["address"], Direction(fields["direction"]), fields)
            entry = by_tx.setdefault(activity.tx_hash, (data, []))
            if match not in entry[1]:
                entry[1].append(match)
        return [
            PendingTx(self.chain, tx_hash, spent_outpoints(data), data, now, None, tuple(m))
            for tx_hash, (data, m) in by_tx.items()
        ]

    # --- mempool --------------------------------------------------------------------------

    def observe_pool(
        self,
        snapshot: PoolSnapshot[BtcTx],
        statuses: Mapping[str, TxStatus],
        facts: ParentOutputs | None = None,
    ) -> PoolOutcome:
        """Pending, dropped and replaced: see :meth:`watcher.mempool.PoolTracker.observe`.

        A pool transaction spending another one's watched output is recognised whether the
        parent is in the same look at the pool or was looked up.
        """
        seen = self._watched_parents(facts or {})
        index = self._index
        for tx in snapshot.txs:
            for o in tx.outputs:
                if o.address is not None and o.address in index:
                    seen[(tx.txid, o.n)] = o
        rules = BitcoinPoolRules(self.chain, index, self._outputs.unspent, seen)
        return self.pool.observe(snapshot.present, snapshot.txs, rules, statuses, self._clock())
