"""The poll loop of one chain: follow the node's head and feed every block to the tracker.

This is the thin I/O shell around :class:`~watcher.tracker.ChainTracker`. Blocks are fetched
in JSON-RPC batches with two batches in flight, so the node works on the next batch while
this process handles the current one; each batch's outcomes are committed to the store in
one transaction together with the new cursor. The cursor only ever advances over a block
whose parent hash is the hash of the block before it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import structlog

from watcher.chains.ethereum import EthereumClient
from watcher.errors import ChainMismatchError
from watcher.models import Block, BlockOutcome, BlockRef, Subscription
from watcher.pacing import wait_or_stop
from watcher.retry import RETRYABLE_NODE_ERRORS, Backoff
from watcher.store import Store
from watcher.tracker import ChainTracker, Clock

log = structlog.get_logger()

BATCHES_IN_FLIGHT = 2
NODE_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)


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
        on_deliveries: Callable[[], None] = lambda: None,
        clock: Clock = time.time,
        backoff: Backoff = NODE_BACKOFF,
    ) -> None:
        self.chain = chain
        self._client = client
        self._store = store
        self._subscriptions = tuple(s for s in subscriptions if s.chain == chain)
        self._start = start
        self._expected_chain_id = expected_chain_id
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._on_deliveries = on_deliveries
        self._clock = clock
        self._backoff = backoff
        self._tracker: ChainTracker | None = None
        self._cursor: BlockRef | None = None
        self._verified = False
        self.head_seen: int | None = None
        self.polls = 0
        self.last_poll_at: float | None = None

    @property
    def cursor(self) -> BlockRef | None:
        """The last block recorded in the store."""
        return self._cursor

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; node failures are logged and retried with backoff."""
        failures = 0
        while not stop.is_set():
            started = self._clock()
            try:
                await self.poll_once()
                self.polls += 1
                self.last_poll_at = self._clock()
            except RETRYABLE_NODE_ERRORS as exc:
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
        """Catch up with the node's current head; returns the number of blocks recorded."""
        tracker = await self._ensure_ready()
        head = await self._client.block_number()
        self.head_seen = head
        if self._cursor is None:
            first = head if self._start == "latest" else self._start
        else:
            first = self._cursor.number + 1
            if not self._verified:
                await self._verify_cursor(self._cursor)
                if not self._verified:
                    return 0
        if first > head:
            return 0
        try:
            return await self._catch_up(tracker, first, head)
        except BaseException:
            # The tracker may hold state that never reached the store: rebuild it from there.
            self._tracker = None
            raise

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
        pending = await self._store.pending_confirmations(self.chain)
        self._cursor = state.cursor
        self._verified = False
        self._tracker = ChainTracker(self.chain, self._subscriptions, pending, clock=self._clock)
        log.info(
            "chain_ready",
            chain=self.chain,
            chain_id=chain_id,
            cursor=state.cursor.number if state.cursor else None,
            watched_addresses=self._tracker.watched_addresses,
            awaiting_confirmation=self._tracker.waiting,
        )
        return self._tracker

    async def _verify_cursor(self, cursor: BlockRef) -> None:
        """After a restart, check that the last recorded block is still canonical."""
        node_hash = await self._client.block_hash(cursor.number)
        if node_hash is None:
            log.warning("node_behind_cursor", chain=self.chain, cursor=cursor.number)
            return
        if node_hash != cursor.hash:
            log.error(
                "chain_reorg_detected",
                chain=self.chain,
                number=cursor.number,
                stored_hash=cursor.hash,
                node_hash=node_hash,
                action="not advancing",
            )
            return
        self._verified = True

    async def _catch_up(self, tracker: ChainTracker, first: int, head: int) -> int:
        recorded = 0
        batches = _ranges(first, head, self._batch_size)
        in_flight: deque[asyncio.Task[list[Block | None]]] = deque()

        def fetch_next() -> None:
            numbers = next(batches, None)
            if numbers is not None:
                in_flight.append(
                    asyncio.create_task(self._client.blocks(numbers), name=f"fetch:{self.chain}")
                )

        try:
            for _ in range(BATCHES_IN_FLIGHT):
                fetch_next()
            while in_flight:
                blocks = await in_flight.popleft()
                fetch_next()
                outcomes, complete = self._process(tracker, blocks)
                if outcomes:
                    created = await self._store.record_blocks(self.chain, self._cursor, outcomes)
                    self._cursor = outcomes[-1].block
                    recorded += len(outcomes)
                    if created:
                        self._on_deliveries()
                if not complete:
                    break
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        if recorded:
            log.debug("blocks_recorded", chain=self.chain, count=recorded, cursor=self._cursor)
        return recorded

    def _process(
        self, tracker: ChainTracker, blocks: list[Block | None]
    ) -> tuple[list[BlockOutcome], bool]:
        """Outcomes of the blocks that extend the cursor; False if the batch stopped early."""
        outcomes: list[BlockOutcome] = []
        parent = self._cursor
        for block in blocks:
            if block is None:
                return outcomes, False
            if parent is not None and block.parent_hash != parent.hash:
                log.error(
                    "chain_reorg_detected",
                    chain=self.chain,
                    number=block.number,
                    parent_hash=block.parent_hash,
                    stored_hash=parent.hash,
                    action="not advancing",
                )
                return outcomes, False
            outcomes.append(tracker.process(block))
            parent = outcomes[-1].block
        return outcomes, True


def _ranges(first: int, last: int, size: int) -> Iterator[list[int]]:
    for start in range(first, last + 1, size):
        yield list(range(start, min(start + size, last + 1)))
