"""The transaction lifecycle of an Ethereum chain: blocks and pool snapshots in, events out. Pure.

The tracker is the only place that decides which notifications the chain produces. For each
new canonical block it reports what was mined (transactions and token transfers, filtered by
each subscription's kinds, direction and conditions), confirms what reached its depth, and
tells the mempool side what the block mined or replaced. On a reorg it is rewound to the
common ancestor, reporting ``tx.reorged`` for everything it had said about the lost blocks.

Everything it remembers (recent block hashes, activities awaiting confirmation or still
inside the reorg window, pending transactions) is also written to the store with the events
that changed it, so a restarted tracker picks up exactly where the last one stopped. The
parts every chain shares live in :mod:`watcher.chain_tracker`, :mod:`watcher.activities` and
:mod:`watcher.mempool`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet

from watcher.chain_tracker import ChainTracker
from watcher.conditions import evaluate
from watcher.events import (
    native_data,
    pool_data,
    pool_match_fields,
    transfer_data,
)
from watcher.matching import AddressIndex
from watcher.mempool import TxStatus
from watcher.models import (
    MEMPOOL_EVENTS,
    Activity,
    Block,
    BlockOutcome,
    BlockRef,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    RewindOutcome,
    Subscription,
    Tx,
)
from watcher.protocols import PoolSnapshot


class EthereumPoolRules:
    """Pending Ethereum transactions: replaced by the same sender and nonce."""

    def __init__(self, chain: str, index: AddressIndex) -> None:
        self._chain = chain
        self._index = index

    def tx_hash(self, tx: Tx) -> str:
        """The transaction hash."""
        return tx.hash

    def conflicts(self, tx: Tx) -> Iterable[str]:
        """An account's nonce is used once: ``sender:nonce``."""
        return (f"{tx.sender}:{tx.nonce}",)

    def describe(self, tx: Tx, now: float) -> PendingTx | None:
        """The pending entry for the watched addresses ``tx`` touches, if any."""
        matches: list[PoolMatch] = []
        data = None
        for m in self._index.match(tx):
            sub = m.subscription
            if not sub.events & MEMPOOL_EVENTS or m.direction is None:
                continue
            data = data or pool_data(tx)
            fields = pool_match_fields(m.address, m.direction)
            if evaluate(sub.condition, {**data, **fields}):
                matches.append(PoolMatch(sub.id, m.address, m.direction, fields))
        if not matches or data is None:
            return None
        conflicts = tuple(self.conflicts(tx))
        return PendingTx(self._chain, tx.hash, conflicts, data, now, None, tuple(matches))


class EthereumTracker(ChainTracker[Tx]):
    """Turns one Ethereum chain's blocks and mempool into events for its subscriptions."""

    _index: AddressIndex

    def _index_subscriptions(self, subscriptions: list[Subscription]) -> None:
        self._index = AddressIndex(subscriptions)
        self._rules = EthereumPoolRules(self.chain, self._index)
        self.wants_transfers = any(s.wants_transfers for s in subscriptions)

    # --- blocks ---------------------------------------------------------------------------

    def relevant_addresses(self) -> AbstractSet[str]:
        """The watched addresses, and the senders of the pending transactions followed.

        A transaction that touches none of them can neither match a subscription nor mine
        or replace (same sender and nonce) a followed pending transaction.
        """
        keys = self.pool.conflict_keys()
        if not keys:
            return self._index.watched
        return self._index.watched | {key.partition(":")[0] for key in keys}

    def facts_needed(self, blocks: Iterable[Block]) -> Collection[str]:
        """Ethereum blocks say everything the tracker needs: nothing to look up."""
        return ()

    def process(self, block: Block, facts: Mapping[str, object] | None = None) -> BlockOutcome:
        """The events ``block`` produces, given that it extends the last processed block."""
        now = self._clock()
        events, pool_removed = self.pool.on_block(block.transactions, self._rules, now)
        changed: list[Activity] = []
        events.extend(self._block_events(block, now))
        ledger = self._ledger
        index = self._index
        watched = index.watched  # a membership test first: 99% of transactions stop here
        for tx in block.transactions:
            if tx.sender not in watched and tx.recipient not in watched:
                continue
            for match in index.match(tx):
                data = native_data(block, tx, match)
                ledger.mined(match.subscription, data, now, events, changed)
        for transfer in block.transfers:
            for match in self._index.match_transfer(transfer):
                data = transfer_data(block, transfer, match)
                ledger.mined(match.subscription, data, now, events, changed)
        ref = BlockRef(block.number, block.hash)
        ledger.close_block(ref, now, events, changed)
        return BlockOutcome(
            block=ref,
            parent_hash=block.parent_hash,
            events=tuple(events),
            activities=tuple(changed),
            pool_removed=tuple(pool_removed),
        )

    # --- reorgs ---------------------------------------------------------------------------

    def rewind(self, ancestor: BlockRef) -> RewindOutcome:
        """Forget every block above ``ancestor``; ``tx.reorged`` for what was said about them."""
        rewound = self._ledger.rewind(ancestor, self._clock())
        return RewindOutcome(ancestor=ancestor, events=tuple(rewound.events))

    # --- mempool --------------------------------------------------------------------------

    def pool_facts_needed(self, snapshot: PoolSnapshot[Tx]) -> Collection[str]:
        """Pending Ethereum transactions say everything too."""
        return ()

    def observe_pool(
        self,
        snapshot: PoolSnapshot[Tx],
        statuses: Mapping[str, TxStatus],
        facts: Mapping[str, object] | None = None,
    ) -> PoolOutcome:
        """See :meth:`watcher.mempool.PoolTracker.observe`."""
        return self.pool.observe(
            snapshot.present, snapshot.txs, self._rules, statuses, self._clock()
        )
