"""The poll loop of one chain: follow the node's head and its mempool, feed the tracker.

This is the thin I/O shell around a chain's :class:`~watcher.protocols.Tracker`, reading its
node through a :class:`~watcher.protocols.ChainSource`; the same loop drives every chain.
Blocks are fetched in batches with two batches in flight, so the node works on the next batch
while this process handles the current one; each batch's outcomes are committed to the store
in one transaction together with the new cursor. The cursor only ever advances over a block
whose parent hash is the hash of the block before it. When that does not hold, the loop
walks back to the newest block the node still has (bounded by ``max_reorg_depth``), rewinds
the tracker and the store to it, and continues on the new branch.

After each catch-up the mempool is read once, and the tracked pending transactions that were
not seen in it are looked up by hash. Before a batch of blocks or a look at the pool is
handed to the tracker, the facts it says it needs (Bitcoin: the outputs some inputs spend)
are looked up on the node.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Generic, Literal, TypeVar

import structlog

from watcher.errors import ChainMismatchError, NodeError
from watcher.metrics import ChainMetrics, Metrics
from watcher.models import BlockOutcome, BlockRef, Subscription
from watcher.pacing import wait_or_stop
from watcher.protocols import ChainBlock, ChainSource, Tracker
from watcher.retry import RETRYABLE_NODE_ERRORS, Backoff
from watcher.store import Store, TrackerState

log = structlog.get_logger()

BATCHES_IN_FLIGHT = 2
# Processed blocks that may wait for the store before processing pauses (see _catch_up).
MAX_QUEUED_BLOCKS = 500
NODE_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)
# Reorgs handled in one poll before yielding (each one is followed by a fresh catch-up).
MAX_REWINDS_PER_POLL = 4

BlockT = TypeVar("BlockT", bound=ChainBlock)
TxT = TypeVar("TxT")
FactT = TypeVar("FactT")


class ChainFollower(Generic[BlockT, TxT, FactT]):
    """Keeps one chain's cursor at the node's head, recording what each block produced.

    ``make_tracker`` builds the chain's tracker from what the store remembers; it is called
    at start and again after any failure, so the tracker never holds state the store lacks.
    """

    def __init__(
        self,
        *,
        source: ChainSource[BlockT, TxT, FactT],
        make_tracker: Callable[[TrackerState, Sequence[Subscription]], Tracker[BlockT, TxT, FactT]],
        subscriptions: Iterable[Subscription],
        store: Store,
        start: Literal["latest"] | int = "latest",
        expected_identity: str | None = None,
        batch_size: int = 50,
        poll_interval_s: float = 2.0,
        max_reorg_depth: int = 64,
        on_deliveries: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = NODE_BACKOFF,
        metrics: Metrics | None = None,
    ) -> None:
        self.chain = source.chain
        self._source = source
        self._make_tracker = make_tracker
        self._subscriptions = tuple(s for s in subscriptions if s.chain == source.chain)
        self._generation = 0
        source.set_subscriptions(self._subscriptions)
        self._store = store
        self._start = start
        self._expected_identity = expected_identity
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._max_reorg_depth = max_reorg_depth
        self._on_deliveries = on_deliveries
        self._clock = clock
        self._backoff = backoff
        self._metrics: ChainMetrics = (metrics or Metrics()).chain(self.chain)
        self._tracker: Tracker[BlockT, TxT, FactT] | None = None
        self._cursor: BlockRef | None = None
        self._verified = False
        self.head_seen: int | None = None
        self.polls = 0
        self.last_poll_at: float | None = None
        self.connected_at: float | None = None
        self.reorgs = 0

    @property
    def cursor(self) -> BlockRef | None:
        """The last block recorded in the store."""
        return self._cursor

    @property
    def processed_height(self) -> int | None:
        """The height of the last block recorded in the store."""
        return self._cursor.number if self._cursor is not None else None

    def set_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        """Use ``subscriptions`` from the next block on; tracked lifecycle state is kept.

        A batch fetched before the change is fetched again, since the source may now need to
        ask for more (token transfer logs).
        """
        self._subscriptions = tuple(s for s in subscriptions if s.chain == self.chain)
        self._generation += 1
        self._source.set_subscriptions(self._subscriptions)
        if self._tracker is not None:
            self._tracker.replace_subscriptions(self._subscriptions)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; node failures are logged and retried with backoff."""
        failures = 0
        while not stop.is_set():
            started = self._clock()
            try:
                await self.poll_once()
                self.polls += 1
                self.last_poll_at = self._clock()
                self._metrics.polled(self.last_poll_at)
            except RETRYABLE_NODE_ERRORS as exc:
                self._metrics.rpc_error(exc.method if isinstance(exc, NodeError) else "unknown")
                delay = self._backoff.delay(failures)
                failures += 1
                log.warning(
                    "node_unavailable", chain=self.chain, error=str(exc), retry_in_s=round(delay, 2)
                )
            else:
                if failures:
                    log.info("node_recovered", chain=self.chain, after_failures=failures)
                failures = 0
                delay = max(0.0, self._poll_interval_s - (self._clock() - started))
            await wait_or_stop(stop, delay)

    async def poll_once(self) -> int:
        """Catch up with the node's head, then look at its mempool; returns blocks recorded."""
        tracker = await self._ensure_ready()
        try:
            recorded = await self._follow_head(tracker)
            if tracker.pool.wanted:
                await self._poll_mempool(tracker)
        except BaseException:
            # The tracker may hold state that never reached the store: rebuild it from there.
            self._tracker = None
            raise
        return recorded

    async def _follow_head(self, tracker: Tracker[BlockT, TxT, FactT]) -> int:
        recorded = 0
        for _ in range(MAX_REWINDS_PER_POLL):
            head = await self._source.head()
            self.head_seen = head.number
            self._metrics.head(head.number)
            cursor = self._cursor
            if cursor is None:
                first = head.number if self._start == "latest" else self._start
            else:
                divergence = await self._check_cursor(tracker, cursor, head)
                if divergence is not None:
                    if not await self._rewind(tracker, divergence):
                        return recorded
                    continue
                first = cursor.number + 1
            if first > head.number:
                return recorded
            count, diverged = await self._catch_up(tracker, first, head.number)
            recorded += count
            if diverged is None or not await self._rewind(tracker, diverged):
                return recorded
        return recorded

    async def _check_cursor(
        self, tracker: Tracker[BlockT, TxT, FactT], cursor: BlockRef, head: BlockRef
    ) -> str | None:
        """The node's hash at a height where it disagrees with what was recorded, if any.

        Catches what parent hashes alone cannot: a branch that replaced the head at the same
        height, a shorter branch, and a reorg that happened while the daemon was stopped.
        """
        if head.number == cursor.number:
            return head.hash if head.hash != cursor.hash else None
        if head.number < cursor.number:
            recorded = {b.number: b.hash for b in tracker.recent_blocks()}.get(head.number)
            if recorded is not None and recorded != head.hash:
                return head.hash
            log.warning("node_behind_cursor", chain=self.chain, head=head.number, cursor=cursor)
            return None
        if self._verified:
            return None
        node_hash = await self._source.block_hash(cursor.number)
        if node_hash is not None and node_hash != cursor.hash:
            return node_hash
        self._verified = True
        return None

    async def _ensure_ready(self) -> Tracker[BlockT, TxT, FactT]:
        if self._tracker is not None:
            return self._tracker
        identity = await self._source.identity()
        state = await self._store.chain_state(self.chain)
        expected = self._expected_identity if state.chain_id is None else state.chain_id
        if expected is not None and expected != identity:
            origin = "configured" if state.chain_id is None else "recorded in the store"
            raise ChainMismatchError(
                self.chain, self._source.identity_name, expected, identity, origin
            )
        if state.chain_id is None:
            await self._store.set_chain_id(self.chain, identity)
        saved = await self._store.tracker_state(self.chain)
        self._cursor = state.cursor
        if state.cursor is not None:
            self._metrics.processed(state.cursor.number)
        self._verified = False
        tracker = self._make_tracker(saved, self._subscriptions)
        self._tracker = tracker
        if self.connected_at is None:
            self.connected_at = self._clock()
        log.info(
            "chain_ready",
            chain=self.chain,
            chain_id=identity,
            cursor=state.cursor.number if state.cursor else None,
            watched_addresses=tracker.watched_addresses,
            awaiting_confirmation=tracker.awaiting_confirmation,
            pending_tracked=len(tracker.pool.tracked()),
        )
        return tracker

    async def _catch_up(
        self, tracker: Tracker[BlockT, TxT, FactT], first: int, head: int
    ) -> tuple[int, str | None]:
        """Record blocks first..head; also returns the node's parent hash where it diverged.

        Blocks are committed strictly in order, each transaction on the cursor of the last.
        Processing does not wait for the store: while one transaction is being written (SQLite
        works outside the GIL), the batches processed meanwhile queue up and go together in
        the next one (a group commit), so a slow disk makes transactions larger rather than
        the catch-up slower; at most ``MAX_QUEUED_BLOCKS`` wait before processing pauses. If
        anything fails, the caller rebuilds the tracker from the store, which then holds
        exactly the blocks that were committed.
        """
        recorded = 0
        diverged: str | None = None
        generation = self._generation
        batches = _ranges(first, head, self._batch_size)
        in_flight: deque[asyncio.Task[Sequence[BlockT | None]]] = deque()
        tip = self._cursor  # the last block processed, committed or queued for it
        queued: list[BlockOutcome] = []
        queued_txs = 0
        writing: asyncio.Task[None] | None = None

        async def commit(outcomes: list[BlockOutcome], transactions: int) -> None:
            created = await self._store.record_blocks(self.chain, self._cursor, outcomes)
            self._cursor = outcomes[-1].block
            self._metrics.processed(self._cursor.number)
            self._metrics.batch(outcomes, transactions)
            if created:
                self._on_deliveries()

        async def hand_over(wait: bool) -> None:
            """Start writing the queued blocks once the previous write is done."""
            nonlocal writing, queued, queued_txs
            if writing is not None and (wait or writing.done()):
                task, writing = writing, None
                await task  # its error, if any, ends the catch-up
            if writing is None and queued:
                writing = asyncio.create_task(
                    commit(queued, queued_txs), name=f"commit:{self.chain}"
                )
                queued, queued_txs = [], 0

        def fetch_next() -> None:
            numbers = next(batches, None)
            if numbers is not None:
                in_flight.append(
                    asyncio.create_task(
                        self._source.blocks(numbers, tracker.relevant_addresses()),
                        name=f"fetch:{self.chain}",
                    )
                )

        try:
            for _ in range(BATCHES_IN_FLIGHT):
                fetch_next()
            while in_flight:
                blocks = await in_flight.popleft()
                if self._generation != generation:
                    break  # the subscriptions changed while it was fetched: fetch again
                fetch_next()
                facts = await self._lookup(tracker.facts_needed([b for b in blocks if b]))
                outcomes, stop, diverged = self._process(tracker, blocks, facts, tip)
                if outcomes:
                    tip = outcomes[-1].block
                    recorded += len(outcomes)
                    queued += outcomes
                    queued_txs += _transaction_count(blocks, len(outcomes))
                await hand_over(wait=len(queued) >= MAX_QUEUED_BLOCKS)
                if stop:
                    break
            while writing is not None or queued:
                await hand_over(wait=True)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            if writing is not None:
                # Let a started transaction finish (it is atomic either way) before the caller
                # rebuilds the tracker from the store.
                await asyncio.gather(writing, return_exceptions=True)
        if recorded:
            log.debug("blocks_recorded", chain=self.chain, count=recorded, cursor=self._cursor)
        return recorded, diverged

    async def _lookup(self, keys: Collection[str]) -> Mapping[str, FactT]:
        return await self._source.lookup(keys) if keys else {}

    def _process(
        self,
        tracker: Tracker[BlockT, TxT, FactT],
        blocks: Sequence[BlockT | None],
        facts: Mapping[str, FactT],
        parent: BlockRef | None,
    ) -> tuple[list[BlockOutcome], bool, str | None]:
        """Outcomes of the blocks that extend ``parent``, whether to stop, and a divergence."""
        outcomes: list[BlockOutcome] = []
        for block in blocks:
            if block is None:
                return outcomes, True, None
            if parent is not None and block.parent_hash != parent.hash:
                return outcomes, True, block.parent_hash
            outcomes.append(tracker.process(block, facts))
            parent = outcomes[-1].block
        return outcomes, False, None

    async def _rewind(self, tracker: Tracker[BlockT, TxT, FactT], node_hash: str) -> bool:
        """Walk back to the common ancestor and rewind to it; False if it is out of reach."""
        cursor = self._cursor
        assert cursor is not None
        lowest = max(0, cursor.number - self._max_reorg_depth)
        heights = list(range(cursor.number, lowest - 1, -1))
        node_hashes = await self._source.block_hashes(heights)
        ancestor = tracker.find_ancestor(node_hashes)
        if ancestor is None or cursor.number - ancestor.number > self._max_reorg_depth:
            log.error(
                "reorg_too_deep",
                chain=self.chain,
                number=cursor.number,
                stored_hash=cursor.hash,
                node_hash=node_hash,
                max_reorg_depth=self._max_reorg_depth,
                action="not advancing",
            )
            return False
        outcome = tracker.rewind(ancestor)
        created = await self._store.rewind(self.chain, cursor, outcome)
        self._cursor = ancestor
        self._verified = True
        self.reorgs += 1
        self._metrics.reorg(cursor.number - ancestor.number)
        self._metrics.processed(ancestor.number)
        self._metrics.events(outcome.events)
        log.warning(
            "chain_reorg",
            chain=self.chain,
            depth=cursor.number - ancestor.number,
            ancestor=ancestor.number,
            old_head_hash=cursor.hash,
            reorged_events=len(outcome.events),
        )
        if created:
            self._on_deliveries()
        return True

    async def _poll_mempool(self, tracker: Tracker[BlockT, TxT, FactT]) -> None:
        snapshot = await self._source.pool_snapshot(tracker.pool.examined())
        if snapshot is None:
            return
        present = snapshot.present
        check = [h for h in tracker.pool.tracked() if present is None or h not in present]
        statuses = await self._source.statuses(check) if check else {}
        facts = await self._lookup(tracker.pool_facts_needed(snapshot))
        outcome = tracker.observe_pool(snapshot, statuses, facts)
        if outcome.events or outcome.upserted or outcome.removed:
            created = await self._store.record_pool(self.chain, outcome)
            self._metrics.events(outcome.events)
            if created:
                self._on_deliveries()


def _transaction_count(blocks: Sequence[ChainBlock | None], recorded: int) -> int:
    return sum(b.transaction_count for b in blocks[:recorded] if b is not None)


def _ranges(first: int, last: int, size: int) -> Iterator[list[int]]:
    for start in range(first, last + 1, size):
        yield list(range(start, min(start + size, last + 1)))
