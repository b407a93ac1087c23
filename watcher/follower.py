"""The poll loop of one chain: follow the node's head and its mempool, feed the tracker.

This is the thin I/O shell around :class:`~watcher.tracker.ChainTracker`. Blocks are fetched
in JSON-RPC batches with two batches in flight, so the node works on the next batch while
this process handles the current one; each batch's outcomes are committed to the store in
one transaction together with the new cursor. The cursor only ever advances over a block
whose parent hash is the hash of the block before it. When that does not hold, the loop
walks back to the newest block the node still has (bounded by ``max_reorg_depth``), rewinds
the tracker and the store to it, and continues on the new branch.

After each catch-up the mempool is read once, and the tracked pending transactions that were
not seen in it are looked up by hash.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import structlog

from watcher.chains.ethereum import EthereumClient, EthereumMempool
from watcher.errors import ChainMismatchError, NodeError
from watcher.mempool import TxStatus
from watcher.metrics import ChainMetrics, Metrics
from watcher.models import Block, BlockOutcome, BlockRef, Subscription
from watcher.pacing import wait_or_stop
from watcher.retry import RETRYABLE_NODE_ERRORS, Backoff
from watcher.store import Store
from watcher.tracker import ChainTracker, Clock

log = structlog.get_logger()

BATCHES_IN_FLIGHT = 2
NODE_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)
# Reorgs handled in one poll before yielding (each one is followed by a fresh catch-up).
MAX_REWINDS_PER_POLL = 4


class ChainFollower:
    """Keeps one chain's cursor at the node's head, recording what each block produced."""

    def __init__(
        self,
        *,
        chain: str,
        client: EthereumClient,
        store: Store,
        subscriptions: Iterable[Subscription],
        start: Literal["latest"] | int = "latest",
        expected_chain_id: int | None = None,
        batch_size: int = 50,
        poll_interval_s: float = 2.0,
        max_reorg_depth: int = 64,
        dropped_grace_s: float = 60.0,
        watch_mempool: bool = True,
        on_deliveries: Callable[[], None] = lambda: None,
        clock: Clock = time.time,
        backoff: Backoff = NODE_BACKOFF,
        metrics: Metrics | None = None,
    ) -> None:
        self.chain = chain
        self._client = client
        self._store = store
        self._subscriptions = tuple(s for s in subscriptions if s.chain == chain)
        self._start = start
        self._expected_chain_id = expected_chain_id
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._max_reorg_depth = max_reorg_depth
        self._dropped_grace_s = dropped_grace_s
        self._mempool = EthereumMempool(client) if watch_mempool else None
        self._on_deliveries = on_deliveries
        self._clock = clock
        self._backoff = backoff
        self._metrics: ChainMetrics = (metrics or Metrics()).chain(chain)
        self._tracker: ChainTracker | None = None
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
        """Use ``subscriptions`` from the next block on; tracked lifecycle state is kept."""
        self._subscriptions = tuple(s for s in subscriptions if s.chain == self.chain)
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
            if self._mempool is not None and tracker.pool.wanted:
                await self._poll_mempool(tracker, self._mempool)
        except BaseException:
            # The tracker may hold state that never reached the store: rebuild it from there.
            self._tracker = None
            raise
        return recorded

    async def _follow_head(self, tracker: ChainTracker) -> int:
        recorded = 0
        for _ in range(MAX_REWINDS_PER_POLL):
            head = await self._client.head()
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
        self, tracker: ChainTracker, cursor: BlockRef, head: BlockRef
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
        node_hash = await self._client.block_hash(cursor.number)
        if node_hash is not None and node_hash != cursor.hash:
            return node_hash
        self._verified = True
        return None

    async def _ensure_ready(self) -> ChainTracker:
        if self._tracker is not None:
            return self._tracker
        chain_id = await self._client.chain_id()
        state = await self._store.chain_state(self.chain)
        expected = self._expected_chain_id if state.chain_id is None else state.chain_id
        if expected is not None and expected != chain_id:
            raise ChainMismatchError(self.chain, expected, chain_id)
        if state.chain_id is None:
            await self._store.set_chain_id(self.chain, chain_id)
        saved = await self._store.tracker_state(self.chain)
        self._cursor = state.cursor
        if state.cursor is not None:
            self._metrics.processed(state.cursor.number)
        self._verified = False
        tracker = ChainTracker(
            self.chain,
            self._subscriptions,
            recent_blocks=saved.recent_blocks,
            activities=saved.activities,
            pending=saved.pending,
            clock=self._clock,
            dropped_grace_s=self._dropped_grace_s,
        )
        self._tracker = tracker
        if self.connected_at is None:
            self.connected_at = self._clock()
        log.info(
            "chain_ready",
            chain=self.chain,
            chain_id=chain_id,
            cursor=state.cursor.number if state.cursor else None,
            watched_addresses=tracker.watched_addresses,
            awaiting_confirmation=tracker.awaiting_confirmation,
            pending_tracked=len(tracker.pool.tracked()),
        )
        return tracker

    async def _catch_up(
        self, tracker: ChainTracker, first: int, head: int
    ) -> tuple[int, str | None]:
        """Record blocks first..head; also returns the node's parent hash where it diverged."""
        recorded = 0
        diverged: str | None = None
        batches = _ranges(first, head, self._batch_size)
        in_flight: deque[asyncio.Task[list[Block | None]]] = deque()
        transfers = tracker.wants_transfers

        def fetch_next() -> None:
            numbers = next(batches, None)
            if numbers is not None:
                in_flight.append(
                    asyncio.create_task(
                        self._client.blocks(numbers, transfers=transfers),
                        name=f"fetch:{self.chain}",
                    )
                )

        try:
            for _ in range(BATCHES_IN_FLIGHT):
                fetch_next()
            while in_flight:
                blocks = await in_flight.popleft()
                if tracker.wants_transfers and not transfers:
                    break  # a new subscription wants token transfers: fetch again with logs
                fetch_next()
                outcomes, stop, diverged = self._process(tracker, blocks)
                if outcomes:
                    created = await self._store.record_blocks(self.chain, self._cursor, outcomes)
                    self._cursor = outcomes[-1].block
                    recorded += len(outcomes)
                    self._metrics.processed(self._cursor.number)
                    self._metrics.batch(outcomes, _transaction_count(blocks, len(outcomes)))
                    if created:
                        self._on_deliveries()
                if stop:
                    break
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        if recorded:
            log.debug("blocks_recorded", chain=self.chain, count=recorded, cursor=self._cursor)
        return recorded, diverged

    def _process(
        self, tracker: ChainTracker, blocks: list[Block | None]
    ) -> tuple[list[BlockOutcome], bool, str | None]:
        """Outcomes of the blocks that extend the cursor, whether to stop, and a divergence."""
        outcomes: list[BlockOutcome] = []
        parent = self._cursor
        for block in blocks:
            if block is None:
                return outcomes, True, None
            if parent is not None and block.parent_hash != parent.hash:
                return outcomes, True, block.parent_hash
            outcomes.append(tracker.process(block))
            parent = outcomes[-1].block
        return outcomes, False, None

    async def _rewind(self, tracker: ChainTracker, node_hash: str) -> bool:
        """Walk back to the common ancestor and rewind to it; False if it is out of reach."""
        cursor = self._cursor
        assert cursor is not None
        lowest = max(0, cursor.number - self._max_reorg_depth)
        heights = list(range(cursor.number, lowest - 1, -1))
        node_hashes = await self._client.block_hashes(heights)
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

    async def _poll_mempool(self, tracker: ChainTracker, mempool: EthereumMempool) -> None:
        snapshot = await mempool.snapshot()
        if snapshot is None:
            return
        seen = {tx.hash for tx in snapshot.txs}
        check = [h for h in tracker.pool.tracked() if not snapshot.complete or h not in seen]
        found = await self._client.transactions(check) if check else {}
        statuses: dict[str, TxStatus] = {h: status for h, (_, status) in found.items()}
        outcome = tracker.observe_pool(snapshot.txs, statuses)
        if outcome.events or outcome.upserted or outcome.removed:
            created = await self._store.record_pool(self.chain, outcome)
            self._metrics.events(outcome.events)
            if created:
                self._on_deliveries()


def _transaction_count(blocks: list[Block | None], recorded: int) -> int:
    return sum(len(b.transactions) for b in blocks[:recorded] if b is not None)


def _ranges(first: int, last: int, size: int) -> Iterator[list[int]]:
    for start in range(first, last + 1, size):
        yield list(range(start, min(start + size, last + 1)))
