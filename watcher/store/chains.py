"""Chain cursors, and what each block leaves behind: events, deliveries, tracker state.

Everything a block produces (its events, one delivery row per subscriber, the confirmations
it starts waiting for) is written in the same transaction that advances the chain cursor.
A crash therefore leaves either the whole block or none of it; re-processing after a restart
produces the same event ids, which the unique keys turn into no-ops.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from watcher.activities import REORG_WINDOW
from watcher.models import (
    Activity,
    BlockOutcome,
    BlockRef,
    Direction,
    Event,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    RewindOutcome,
    WatchedOutput,
)
from watcher.store.connection import SQLiteBase
from watcher.store.packing import _EventRows, _pack
from watcher.store.records import ChainState, CursorConflictError, TrackerState
from watcher.store.statements import (
    _INSERT_ACTIVITIES,
    _INSERT_BLOCKS,
    _INSERT_DELIVERIES,
    _INSERT_EVENTS,
)


class ChainStore(SQLiteBase):
    """Each chain's cursor and tracker state, and the writes that advance or rewind it."""

    async def chain_state(self, chain: str) -> ChainState:
        """The stored chain id and cursor of ``chain`` (both None for a new chain)."""
        async with self._lock:
            row = await self._fetchone(
                "SELECT chain_id, cursor_number, cursor_hash FROM chains WHERE name = ?", (chain,)
            )
        if row is None:
            return ChainState(None, None)
        cursor = BlockRef(int(row[1]), str(row[2])) if row[1] is not None else None
        return ChainState(str(row[0]) if row[0] is not None else None, cursor)

    async def set_chain_id(self, chain: str, chain_id: str) -> None:
        """Remember which chain id ``chain``'s node serves."""
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO chains (name, chain_id, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET chain_id = excluded.chain_id",
                (chain, chain_id, time.time()),
            )

    async def tracker_state(self, chain: str) -> TrackerState:
        """The recent blocks, live activities, pending transactions and watched outputs."""
        async with self._lock:
            blocks = await self._fetchall(
                "SELECT number, hash FROM blocks WHERE chain = ? ORDER BY number", (chain,)
            )
            activities = await self._fetchall(
                "SELECT subscription_id, mined_event_id, tx_hash, block_number, block_hash, "
                "confirm_at, confirmed_event_id, data FROM activities WHERE chain = ? "
                "ORDER BY block_number",
                (chain,),
            )
            pending = await self._fetchall(
                "SELECT tx_hash, conflicts, data, first_seen, gone_since, matches "
                "FROM mempool WHERE chain = ?",
                (chain,),
            )
            outputs = await self._fetchall(
                "SELECT txid, n, address, value, block_number, spent_block "
                "FROM outputs WHERE chain = ?",
                (chain,),
            )
        return TrackerState(
            recent_blocks=[BlockRef(int(r[0]), str(r[1])) for r in blocks],
            activities=[
                Activity(
                    chain,
                    str(r[0]),
                    str(r[1]),
                    str(r[2]),
                    int(r[3]),
                    str(r[4]),
                    r[5],
                    r[6],
                    orjson.loads(r[7]),
                )
                for r in activities
            ],
            pending=[_pending_from_row(chain, r) for r in pending],
            outputs=[
                WatchedOutput(str(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), r[5])
                for r in outputs
            ],
        )

    async def record_blocks(
        self, chain: str, expected: BlockRef | None, outcomes: Sequence[BlockOutcome]
    ) -> int:
        """Write the outcomes of consecutive blocks and advance the cursor, atomically.

        ``expected`` is the cursor the caller built on; if the stored one differs the
        transaction is rolled back and CursorConflictError raised. Returns the number of
        delivery rows created.
        """
        if not outcomes:
            return 0
        now = time.time()
        head = outcomes[-1].block
        horizon = head.number - REORG_WINDOW
        blocks = _pack([(o.block.number, o.block.hash, o.parent_hash) for o in outcomes])
        events = self._event_rows(chain, [e for o in outcomes for e in o.events], now)
        activities = _pack(
            [
                (
                    a.subscription_id,
                    a.mined_event_id,
                    a.tx_hash,
                    a.block_number,
                    a.block_hash,
                    a.confirm_at,
                    a.confirmed_event_id,
                    orjson.dumps(a.data),
                )
                for o in outcomes
                for a in o.activities
            ],
            blobs=(7,),
        )
        removed = [(chain, h) for o in outcomes for h in o.pool_removed]
        created = [
            (chain, o.txid, o.n, o.address, str(o.value_sat), o.block_number)
            for outcome in outcomes
            for o in outcome.outputs_created
        ]
        spent = [
            (outcome.block.number, chain, txid, n)
            for outcome in outcomes
            for txid, n in outcome.outputs_spent
        ]

        def write(db: sqlite3.Connection) -> int:
            _check_cursor(db, chain, expected)
            db.execute(_INSERT_BLOCKS, {"chain": chain, **blocks.params})
            deliveries = _insert_events(db, events)
            db.execute(_INSERT_ACTIVITIES, {"chain": chain, **activities.params})
            db.executemany("DELETE FROM mempool WHERE chain = ? AND tx_hash = ?", removed)
            db.executemany(
                "INSERT OR REPLACE INTO outputs (chain, txid, n, address, value, block_number) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                created,
            )
            db.executemany(
                "UPDATE outputs SET spent_block = ? WHERE chain = ? AND txid = ? AND n = ?", spent
            )
            _set_cursor(db, chain, head, now)
            db.execute("DELETE FROM blocks WHERE chain = ? AND number < ?", (chain, horizon))
            db.execute(
                "DELETE FROM activities WHERE chain = ? AND block_number < ? "
                "AND (confirm_at IS NULL OR confirmed_event_id IS NOT NULL)",
                (chain, horizon),
            )
            db.execute("DELETE FROM outputs WHERE chain = ? AND spent_block < ?", (chain, horizon))
            return deliveries

        return await self._write(write)

    async def rewind(self, chain: str, expected: BlockRef, outcome: RewindOutcome) -> int:
        """Move the cursor back to the reorg's common ancestor and record ``tx.reorged``."""
        now = time.time()
        ancestor = outcome.ancestor
        events = self._event_rows(chain, outcome.events, now)
        pending = [_pending_row(chain, p) for p in outcome.pool_upserted]

        def write(db: sqlite3.Connection) -> int:
            _check_cursor(db, chain, expected)
            created = _insert_events(db, events)
            above = (chain, ancestor.number)
            db.execute("DELETE FROM activities WHERE chain = ? AND block_number > ?", above)
            db.execute("DELETE FROM blocks WHERE chain = ? AND number > ?", above)
            db.execute("DELETE FROM outputs WHERE chain = ? AND block_number > ?", above)
            db.execute(
                "UPDATE outputs SET spent_block = NULL WHERE chain = ? AND spent_block > ?", above
            )
            _upsert_pending(db, pending)
            _set_cursor(db, chain, ancestor, now)
            return created

        return await self._write(write)

    async def record_pool(self, chain: str, outcome: PoolOutcome) -> int:
        """Write what a look at the mempool produced; the cursor does not move."""
        now = time.time()
        events = self._event_rows(chain, outcome.events, now)
        pending = [_pending_row(chain, p) for p in outcome.upserted]
        removed = [(chain, h) for h in outcome.removed]

        def write(db: sqlite3.Connection) -> int:
            created = _insert_events(db, events)
            _upsert_pending(db, pending)
            db.executemany("DELETE FROM mempool WHERE chain = ? AND tx_hash = ?", removed)
            return created

        return await self._write(write)

    def _event_rows(self, chain: str, events: Sequence[Event], now: float) -> _EventRows:
        """The rows ``events`` add: the events, and each one's delivery with its planned body."""
        return _EventRows(
            chain,
            now,
            _pack(
                [
                    (e.id, e.type.value, e.tx_hash, e.block_number, e.block_hash, e.created_at)
                    for e in events
                ]
            ),
            _pack([(e.id, e.subscription_id, *self._planned(e)) for e in events], blobs=(2,)),
        )

    def _planned(self, event: Event) -> tuple[bytes, float]:
        """The body a subscriber receives and when it becomes due."""
        planned = self._planner(event)
        return planned.body, planned.due_at


def _check_cursor(db: sqlite3.Connection, chain: str, expected: BlockRef | None) -> None:
    """Raise CursorConflictError unless ``chain``'s stored cursor is ``expected``."""
    row = db.execute(
        "SELECT cursor_number, cursor_hash FROM chains WHERE name = ?", (chain,)
    ).fetchone()
    stored = BlockRef(int(row[0]), str(row[1])) if row and row[0] is not None else None
    if stored != expected:
        raise CursorConflictError(
            f"{chain}: cursor is {stored}, expected {expected}; another writer?"
        )


def _insert_events(db: sqlite3.Connection, rows: _EventRows) -> int:
    """Insert events and their deliveries (re-inserts are no-ops); returns deliveries created."""
    db.execute(_INSERT_EVENTS, {"chain": rows.chain, **rows.events.params})
    before = db.total_changes
    db.execute(_INSERT_DELIVERIES, {"now": rows.now, **rows.deliveries.params})
    return db.total_changes - before


def _upsert_pending(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO mempool (chain, tx_hash, conflicts, data, first_seen, "
        "gone_since, matches) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _set_cursor(db: sqlite3.Connection, chain: str, head: BlockRef, now: float) -> None:
    db.execute(
        "INSERT INTO chains (name, cursor_number, cursor_hash, updated_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "cursor_number = excluded.cursor_number, cursor_hash = excluded.cursor_hash, "
        "updated_at = excluded.updated_at",
        (chain, head.number, head.hash, now),
    )


def _pending_row(chain: str, p: PendingTx) -> tuple[Any, ...]:
    matches = [[m.subscription_id, m.address, m.direction.value, m.fields] for m in p.matches]
    return (
        chain, p.tx_hash, orjson.dumps(list(p.conflicts)), orjson.dumps(p.data), p.first_seen,
        p.gone_since, orjson.dumps(matches),
    )  # fmt: skip


def _pending_from_row(chain: str, r: Any) -> PendingTx:
    matches = tuple(
        PoolMatch(str(s), str(a), Direction(d), fields) for s, a, d, fields in orjson.loads(r[5])
    )
    conflicts = tuple(str(k) for k in orjson.loads(r[1]))
    return PendingTx(chain, str(r[0]), conflicts, orjson.loads(r[2]), float(r[3]), r[4], matches)
