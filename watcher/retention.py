"""Background pruning of the attempt log, so it keeps only the configured retention window.

Rows are deleted in small batches, each its own short transaction, so pruning a large backlog
never holds the store's write lock long enough to delay deliveries or the chain followers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from watcher.pacing import wait_or_stop
from watcher.store import Store

log = structlog.get_logger()

PRUNE_INTERVAL_S = 3600.0
PRUNE_BATCH = 2000


class AttemptLogPruner:
    """Deletes attempt-log rows older than ``retention_s``, at start-up and then periodically."""

    def __init__(
        self,
        store: Store,
        retention_s: float,
        *,
        interval_s: float = PRUNE_INTERVAL_S,
        batch: int = PRUNE_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._retention_s = retention_s
        self._interval_s = interval_s
        self._batch = batch
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Prune until ``stop`` is set."""
        while not stop.is_set():
            await self.run_once()
            await wait_or_stop(stop, self._interval_s)

    async def run_once(self) -> int:
        """Delete everything older than the retention window; returns how many rows."""
        before = self._clock() - self._retention_s
        total = 0
        while True:
            deleted = await self._store.prune_attempts(before, self._batch)
            total += deleted
            if deleted < self._batch:
                break
            await asyncio.sleep(0)  # let deliveries and followers write between batches
        if total:
            log.info("attempt_log_pruned", deleted=total, retention_s=self._retention_s)
        return total
