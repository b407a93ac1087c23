"""What a block's transaction writes to a real SQLite file, read back through the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watcher.models import Activity, BlockOutcome, BlockRef, Event, EventType
from watcher.outbox import PlannedDelivery
from watcher.store import CursorConflictError, SQLiteStore

CHAIN = "eth"


def binary_planner(event: Event) -> PlannedDelivery:
    """Bodies that are not text: every byte value, NULs and invalid UTF-8 included."""
    return PlannedDelivery(bytes(range(256)) + event.id.encode() + b"\x00\xff", 1000.0)


def outcome(number: int, *, events: int = 2) -> BlockOutcome:
    block = BlockRef(number, f"0x{number:064x}")
    evs = tuple(
        Event(
            id=f"evt_{number}_{i}",
            type=EventType.TX_MINED,
            chain=CHAIN,
            subscription_id=f"sub-{i % 2}",
            tx_hash=f"0x{number * 100 + i:064x}",
            block_number=number,
            block_hash=block.hash,
            created_at=1_700_000_000.125 + number,
            data={},
        )
        for i in range(events)
    )
    activities = tuple(
        Activity(
            CHAIN,
            e.subscription_id,
            e.id,
            str(e.tx_hash),
            number,
            block.hash,
            number + 5,
            None,
            {"tx": e.tx_hash, "value": str(10**30 + i), "note": 'quote " and \\ and é'},
        )
        for i, e in enumerate(evs)
    )
    return BlockOutcome(block, f"0x{number - 1:064x}", evs, activities, ())


async def test_a_batch_of_blocks_reads_back_exactly(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "outbox.db", planner=binary_planner)
    try:
        outcomes = [outcome(n, events=n % 3) for n in range(1, 8)]
        created = await store.record_blocks(CHAIN, None, outcomes)
        events = [e for o in outcomes for e in o.events]
        assert created == len(events)

        state = await store.chain_state(CHAIN)
        assert state.cursor == outcomes[-1].block
        deliveries = await store.deliveries()
        assert [(d.event_id, d.subscription_id) for d in deliveries] == [
            (e.id, e.subscription_id) for e in events
        ]
        assert [d.body for d in deliveries] == [binary_planner(e).body for e in events]
        assert {d.next_attempt_at for d in deliveries} == {1000.0}

        saved = await store.tracker_state(CHAIN)
        assert saved.recent_blocks == [o.block for o in outcomes]
        assert saved.activities == [a for o in outcomes for a in o.activities]
    finally:
        await store.close()


async def test_recording_the_same_blocks_again_creates_nothing(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "outbox.db")
    try:
        first = [outcome(1), outcome(2)]
        assert await store.record_blocks(CHAIN, None, first) == 4
        # A re-scan after a crash replays the same blocks on the cursor they were built on.
        again = await store.record_blocks(CHAIN, first[-1].block, [outcome(2)])
        assert again == 0
        assert len(await store.deliveries()) == 4
    finally:
        await store.close()


async def test_a_write_on_a_stale_cursor_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "outbox.db")
    try:
        await store.record_blocks(CHAIN, None, [outcome(1)])
        stale = BlockRef(0, "0x" + "ab" * 32)
        with pytest.raises(CursorConflictError, match="expected"):
            await store.record_blocks(CHAIN, stale, [outcome(2, events=2)])
        assert (await store.chain_state(CHAIN)).cursor == outcome(1).block
        assert len(await store.deliveries()) == 2
        assert [b.number for b in (await store.tracker_state(CHAIN)).recent_blocks] == [1]
        # The connection is usable after the rollback.
        assert await store.record_blocks(CHAIN, outcome(1).block, [outcome(2)]) == 2
    finally:
        await store.close()


async def test_a_large_batch_of_large_bodies_is_written_in_one_transaction(
    tmp_path: Path,
) -> None:
    bodies: dict[str, bytes] = {}

    def random_planner(event: Event) -> PlannedDelivery:
        bodies[event.id] = os.urandom(20_000)
        return PlannedDelivery(bodies[event.id], 0.0)

    store = await SQLiteStore.open(tmp_path / "outbox.db", planner=random_planner)
    try:
        outcomes = [outcome(n, events=6) for n in range(1, 101)]
        assert await store.record_blocks(CHAIN, None, outcomes) == 600
        assert {d.event_id: d.body for d in await store.deliveries()} == bodies
    finally:
        await store.close()
