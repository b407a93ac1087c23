"""The attempt log keeps the configured window; older rows are pruned in small batches."""

from __future__ import annotations

from pathlib import Path

from tests.delivery_kit import FakeClock, Reply, outbox, scripted, subscription
from watcher.retention import AttemptLogPruner

DAY = 86400.0


async def test_attempts_older_than_the_retention_window_are_pruned(tmp_path: Path) -> None:
    clock = FakeClock()
    async with (
        scripted(Reply(500)) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub", 5)
        await box.worker.run_once()  # five attempts, 40 days ago
        clock.advance(39 * DAY)
        await box.worker.run_once()  # five more, one day ago
        clock.advance(DAY)
        pruner = AttemptLogPruner(box.store, 30 * DAY, batch=2, clock=clock)
        assert await pruner.run_once() == 5
        assert await pruner.run_once() == 0
        rows = await box.rows()
        assert [len(await box.store.attempts(r.id)) for r in rows] == [1] * 5
        assert all(r.attempts == 2 for r in rows)  # deliveries themselves are kept
