"""The durable outbox and chain cursors: the only module that contains SQL.

Everything a block produces (its events, one delivery row per subscriber, the confirmations
it starts waiting for) is written in the same transaction that advances the chain cursor.
A crash therefore leaves either the whole block or none of it; re-processing after a restart
produces the same event ids, which the unique keys turn into no-ops.

:class:`Store` is the interface the rest of the daemon uses; :class:`SQLiteStore` is the
default implementation (one file, WAL mode). A server-backed implementation for several
daemon instances implements the same protocol.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import aiosqlite
import orjson

from watcher.activities import REORG_WINDOW
from watcher.errors import StoreError
from watcher.models import (
    Activity,
    BlockOutcome,
    BlockRef,
    DeliveryJob,
    Direction,
    Event,
    JSONObject,
    PendingTx,
    PoolMatch,
    PoolOutcome,
    RewindOutcome,
    WatchedOutput,
)
from watcher.outbox import Planner, native_planner
from watcher.policy import Decision, DeliveryStatus, SubscriptionHealth
from watcher.scheduling import Quota

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chains (
        name TEXT PRIMARY KEY,
        chain_id TEXT,
        cursor_number INTEGER,
        cursor_hash TEXT,
        updated_at REAL NOT NULL
    );
    CREATE TABLE blocks (
        chain TEXT NOT NULL,
        number INTEGER NOT NULL,
        hash TEXT NOT NULL,
        parent_hash TEXT NOT NULL,
        PRIMARY KEY (chain, number)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        chain TEXT NOT NULL,
        type TEXT NOT NULL,
        tx_hash TEXT,
        block_number INTEGER,
        block_hash TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX events_by_tx ON events (chain, tx_hash);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events (id),
        subscription_id TEXT NOT NULL,
        body BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        lease_until REAL,
        last_status INTEGER,
        last_error TEXT,
        created_at REAL NOT NULL,
        completed_at REAL,
        UNIQUE (event_id, subscription_id)
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE TABLE activities (
        chain TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        mined_event_id TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        block_number INTEGER NOT NULL,
        block_hash TEXT NOT NULL,
        confirm_at INTEGER,
        confirmed_event_id TEXT,
        data BLOB NOT NULL,
        PRIMARY KEY (chain, subscription_id, mined_event_id)
    ) WITHOUT ROWID;
    CREATE INDEX activities_by_block ON activities (chain, block_number);
    CREATE TABLE mempool (
        chain TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        conflicts BLOB NOT NULL,
        data BLOB NOT NULL,
        first_seen REAL NOT NULL,
        gone_since REAL,
        matches BLOB NOT NULL,
        PRIMARY KEY (chain, tx_hash)
    ) WITHOUT ROWID;
    CREATE TABLE outputs (
        chain TEXT NOT NULL,
        txid TEXT NOT NULL,
        n INTEGER NOT NULL,
        address TEXT NOT NULL,
        value TEXT NOT NULL,
        block_number INTEGER NOT NULL,
        spent_block INTEGER,
        PRIMARY KEY (chain, txid, n)
    ) WITHOUT ROWID;
    CREATE INDEX outputs_by_block ON outputs (chain, block_number);
    CREATE INDEX outputs_by_spent ON outputs (chain, spent_block) WHERE spent_block IS NOT NULL;
    """,
    # 1: retry policy, subscription state, attempt log.
    """
    DROP INDEX deliveries_due;
    ALTER TABLE deliveries ADD COLUMN last_attempt_at REAL;
    -- attempts made before the current retry schedule began (a retry or replay restarts it)
    ALTER TABLE deliveries ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX deliveries_due ON deliveries (subscription_id, next_attempt_at, id)
        WHERE status = 'pending';
    CREATE INDEX deliveries_queue ON deliveries (subscription_id, id) WHERE status = 'pending';
    CREATE INDEX deliveries_failed ON deliveries (subscription_id, completed_at)
        WHERE status = 'failed';
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'active',
        disabled_reason TEXT,
        disabled_at REAL,
        callback_error_count INTEGER NOT NULL DEFAULT 0,
        failing_since REAL,
        exhausted_since_success INTEGER NOT NULL DEFAULT 0,
        last_success_at REAL,
        last_attempt_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        request_id TEXT NOT NULL,
        started_at REAL NOT NULL,
        duration_ms INTEGER NOT NULL,
        status_code INTEGER,
        error_class TEXT,
        error TEXT,
        response_body BLOB NOT NULL,
        response_headers BLOB NOT NULL
    );
    CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);
    CREATE INDEX attempts_by_time ON attempts (started_at);
    """,
    # 2: subscriptions created through the admin API, and the readiness probe's row.
    """
    CREATE TABLE api_subscriptions (
        id TEXT PRIMARY KEY,
        spec BLOB NOT NULL,
        secret TEXT NOT NULL,
        -- the secret a rotation replaced, still signing until previous_secret_until
        previous_secret TEXT,
        previous_secret_until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE health_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        checked_at REAL NOT NULL
    );
    """,
)


@dataclass(frozen=True, slots=True)
class ChainState:
    """What the store knows about a chain: the node's chain id and the last block processed.

    ``chain_id`` is whatever identifies the chain the node serves (an Ethereum chain id, a
    Bitcoin genesis block hash), as text.
    """

    chain_id: str | None
    cursor: BlockRef | None


@dataclass(frozen=True, slots=True)
class TrackerState:
    """Everything a chain's tracker remembers, as last committed."""

    recent_blocks: list[BlockRef]
    activities: list[Activity]
    pending: list[PendingTx]
    outputs: list[WatchedOutput]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery row as operators and tests see it."""

    id: int
    event_id: str
    event_type: str
    subscription_id: str
    status: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    body: bytes
    created_at: float = 0.0
    last_attempt_at: float | None = None
    completed_at: float | None = None
    leased: bool = False


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """One attempt to record: what happened, and what the retry policy decided."""

    delivery_id: int
    subscription_id: str
    request_id: str
    started_at: float
    duration_ms: int
    status_code: int | None
    error_class: str | None
    error: str | None
    response_body: bytes
    response_headers: Mapping[str, str]
    decision: Decision
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A row of the attempt log."""

    id: int
    delivery_id: int
    request_id: str
    started_at: float
    duration_ms: int
    status_code: int | None
    error_class: str | None
    error: str | None
    response_body: bytes
    response_headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A subscription's delivery state with its outbox counts, for operators."""

    health: SubscriptionHealth
    disabled_at: float | None
    last_attempt_at: float | None
    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A subscription created through the admin API, as stored.

    ``spec`` is its validated definition (JSON); ``secret`` the ``whsec_`` signing secret;
    ``previous_secret`` the one a rotation replaced, which also signs until
    ``previous_secret_until``.
    """

    id: str
    spec: JSONObject
    secret: str = field(repr=False)
    created_at: float
    updated_at: float
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: float | None = None


class CursorConflictError(StoreError):
    """The chain cursor moved under us: another writer, or a stale in-memory view."""


class Store(Protocol):
    """What the daemon needs from durable storage."""

    async def chain_state(self, chain: str) -> ChainState: ...

    async def set_chain_id(self, chain: str, chain_id: str) -> None: ...

    async def tracker_state(self, chain: str) -> TrackerState: ...

    async def record_blocks(
        self, chain: str, expected: BlockRef | None, outcomes: Sequence[BlockOutcome]
    ) -> int: ...

    async def rewind(self, chain: str, expected: BlockRef, outcome: RewindOutcome) -> int: ...

    async def record_pool(self, chain: str, outcome: PoolOutcome) -> int: ...

    async def sync_subscriptions(self, ids: Sequence[str], now: float) -> None: ...

    async def next_due(self, now: float, subscription_ids: Sequence[str]) -> float | None: ...

    async def release(self, delivery_ids: Sequence[int]) -> None: ...

    async def record_attempts(
        self, attempts: Sequence[FinishedAttempt], now: float
    ) -> list[SubscriptionHealth]: ...

    async def record_and_claim(
        self,
        attempts: Sequence[FinishedAttempt],
        now: float,
        quotas: Mapping[str, Quota],
        limit: int,
        lease_s: float,
    ) -> tuple[list[SubscriptionHealth], list[DeliveryJob]]: ...

    async def set_subscription_status(
        self, subscription_id: str, status: str, reason: str | None, now: float
    ) -> bool: ...

    async def release_leases(self) -> int: ...

    async def prune_attempts(self, before: float, batch: int) -> int: ...


T = TypeVar("T")


class _Connection(aiosqlite.Connection):
    """An aiosqlite connection that can also run a whole function on its thread, in one trip.

    aiosqlite queues each call (every statement, BEGIN and COMMIT too) to the connection's
    thread and resumes the caller when the event loop hears back, so a transaction of ten
    statements takes ten trips, each of which waits for the loop to be free; behind a busy
    loop (a batch of blocks being parsed) that waiting was most of a commit's time.
    :meth:`run` queues the whole transaction as one call, which then runs while the loop
    does other work (SQLite releases the GIL while it works).
    """

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the connection's thread."""
        execute: Callable[..., Awaitable[Any]] = self._execute
        return cast(T, await execute(work, self._conn))


def _in_transaction(work: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """``work`` wrapped in a write transaction, rolled back on any error."""

    def transaction(db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT leaves it open too
                db.execute("ROLLBACK")
            raise
        return result

    return transaction


class SQLiteStore:
    """:class:`Store` on one SQLite file in WAL mode, through aiosqlite.

    One connection is shared by the chain followers and the delivery workers; a lock keeps
    each multi-statement transaction from interleaving with another coroutine's statements.
    """

    def __init__(self, conn: _Connection, path: Path, planner: Planner = native_planner) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._planner = planner
        self.path = path

    @classmethod
    async def open(cls, path: Path, planner: Planner = native_planner) -> SQLiteStore:
        """Open (creating if needed) and migrate the store at ``path``.

        ``planner`` renders each new delivery's body and due time (see :mod:`watcher.outbox`);
        tools that only read or re-queue deliveries keep the default.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # It holds the signing secrets of API-created subscriptions: owner only. SQLite
            # gives its -wal and -shm files the database file's mode.
            await asyncio.to_thread(path.touch, mode=0o600, exist_ok=True)
            conn = _Connection(
                lambda: sqlite3.connect(path, isolation_level=None), iter_chunk_size=64
            )
            await conn
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        store = cls(conn, path, planner)
        try:
            await store._prepare()
        except aiosqlite.Error as exc:
            await conn.close()
            raise StoreError(f"cannot prepare store {path}: {exc}") from exc
        return store

    async def close(self) -> None:
        """Close the connection; pending writes were committed by their transactions."""
        await self._conn.close()

    async def _prepare(self) -> None:
        conn = self._conn
        await conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode never corrupts; a power cut may roll back the last commits,
        # cursor included, and re-processing those blocks re-creates the same events.
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA foreign_keys = ON")
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this watcher"
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    # --- chains ------------------------------------------------------------------------

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

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one write transaction, run on the connection's thread in one trip."""
        async with self._lock:
            return await self._conn.run(_in_transaction(work))

    # --- subscriptions -----------------------------------------------------------------

    async def sync_subscriptions(self, ids: Sequence[str], now: float) -> None:
        """Give every configured subscription a state row (new ones start ``active``)."""
        async with self._lock:
            await self._conn.executemany(
                "INSERT OR IGNORE INTO subscriptions (id, updated_at) VALUES (?, ?)",
                [(sub, now) for sub in ids],
            )

    async def set_subscription_status(
        self, subscription_id: str, status: str, reason: str | None, now: float
    ) -> bool:
        """Enable (``active``) or disable a subscription; False if it already had that status.

        Enabling clears the failure streak and makes the subscription's waiting retries due at
        once, so the backlog recorded while it was disabled is delivered now.
        """
        async with self._transaction():
            await self._conn.execute(
                "INSERT OR IGNORE INTO subscriptions (id, updated_at) VALUES (?, ?)",
                (subscription_id, now),
            )
            if status == "disabled":
                cur = await self._conn.execute(
                    "UPDATE subscriptions SET status = 'disabled', disabled_reason = ?, "
                    "disabled_at = ?, updated_at = ? WHERE id = ? AND status != 'disabled'",
                    (reason, now, now, subscription_id),
                )
                return cur.rowcount > 0
            cur = await self._conn.execute(
                "UPDATE subscriptions SET status = 'active', disabled_reason = NULL, "
                "disabled_at = NULL, failing_since = NULL, exhausted_since_success = 0, "
                "updated_at = ? WHERE id = ? AND status != 'active'",
                (now, subscription_id),
            )
            if cur.rowcount == 0:
                return False
            await self._conn.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE subscription_id = ? "
                "AND status = 'pending' AND attempts > 0 AND next_attempt_at > ?",
                (now, subscription_id, now),
            )
            return True

    async def subscription_states(
        self, ids: Sequence[str] | None = None
    ) -> list[SubscriptionState]:
        """Every subscription the store has seen (or those of ``ids``), with outbox counts."""
        params = {"ids": None if ids is None else orjson.dumps(list(ids))}
        async with self._lock:
            rows = await self._fetchall(_SUBSCRIPTION_STATES, params)
        return [SubscriptionState(_health(r), r[7], r[8], int(r[9]), int(r[10])) for r in rows]

    # --- the outbox ---------------------------------------------------------------------

    async def record_and_claim(
        self,
        attempts: Sequence[FinishedAttempt],
        now: float,
        quotas: Mapping[str, Quota],
        limit: int,
        lease_s: float,
    ) -> tuple[list[SubscriptionHealth], list[DeliveryJob]]:
        """:meth:`record_attempts`, then lease up to ``limit`` due deliveries of active
        subscriptions, each within its quota: one transaction, one trip to the store's thread.

        Subscriptions take turns: every subscription's oldest due delivery comes before any
        subscription's second, so one endpoint's backlog of retries cannot crowd out fresh
        deliveries to the others. For an ordered subscription only its oldest pending
        delivery is eligible, and only while it is not leased.

        This is the delivery worker's cycle: a trip to the store's thread waits for the event
        loop, which is busy with requests, so one trip instead of two keeps the slots full.
        Recording first lets an ordered subscription's next delivery go in the same cycle.
        """
        record = self._attempts_writer(attempts, now) if attempts else None
        params = _claim_params(now, quotas, limit, lease_s)
        if record is None and params is None:
            return [], []

        def write(db: sqlite3.Connection) -> tuple[list[SubscriptionHealth], list[Any]]:
            failing = record(db) if record is not None else []
            rows = db.execute(_CLAIM, params).fetchall() if params is not None else []
            return failing, rows

        failing, rows = await self._write(write)
        return failing, _jobs(rows)

    async def next_due(self, now: float, subscription_ids: Sequence[str]) -> float | None:
        """When the next not-yet-due delivery of these (active) subscriptions becomes due."""
        if not subscription_ids:
            return None
        async with self._lock:
            row = await self._fetchone(
                "SELECT MIN((SELECT MIN(x.next_attempt_at) FROM deliveries x "
                " WHERE x.subscription_id = w.value AND x.status = 'pending' "
                " AND x.next_attempt_at > :now)) "
                "FROM json_each(:subs) w "
                "JOIN subscriptions s ON s.id = w.value AND s.status = 'active'",
                {"now": now, "subs": orjson.dumps(list(subscription_ids))},
            )
        return float(row[0]) if row and row[0] is not None else None

    async def release(self, delivery_ids: Sequence[int]) -> None:
        """Give back leases taken by :meth:`record_and_claim` without an attempt."""
        if not delivery_ids:
            return
        async with self._lock:
            await self._conn.execute(
                "UPDATE deliveries SET lease_until = NULL "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(delivery_ids)),),
            )

    async def record_attempts(
        self, attempts: Sequence[FinishedAttempt], now: float
    ) -> list[SubscriptionHealth]:
        """Log attempts, apply their decisions and update subscription health, in one transaction.

        Returns the health of every subscription that had a failure in ``attempts``, so the
        caller can apply the auto-disable policy.
        """
        if not attempts:
            return []
        return await self._write(self._attempts_writer(attempts, now))

    def _attempts_writer(
        self, attempts: Sequence[FinishedAttempt], now: float
    ) -> Callable[[sqlite3.Connection], list[SubscriptionHealth]]:
        """The write that logs ``attempts`` and applies them (rows built now, outside it)."""
        log_rows = _pack(
            [
                (
                    a.delivery_id,
                    a.request_id,
                    a.started_at,
                    a.duration_ms,
                    a.status_code,
                    a.error_class,
                    a.error,
                    a.response_body,
                    orjson.dumps(dict(a.response_headers)),
                )
                for a in attempts
            ],
            blobs=(7, 8),
        )
        delivery_rows = _pack(
            [
                (
                    a.delivery_id,
                    a.decision.status.value,
                    a.decision.next_attempt_at,
                    a.status_code,
                    a.summary,
                    a.started_at,
                    None if a.decision.status is DeliveryStatus.PENDING else now,
                )
                for a in attempts
            ]
        )
        disables = [
            (a.decision.disable_subscription, now, now, a.subscription_id)
            for a in attempts
            if a.decision.disable_subscription is not None
        ]
        deltas = _health_deltas(attempts)

        def write(db: sqlite3.Connection) -> list[SubscriptionHealth]:
            db.execute(_INSERT_ATTEMPTS, log_rows.params)
            db.execute(_UPDATE_ATTEMPTED, delivery_rows.params)
            db.executemany(
                "INSERT OR IGNORE INTO subscriptions (id, updated_at) VALUES (?, ?)",
                [(sub, now) for sub in deltas],
            )
            if disables:
                db.executemany(
                    "UPDATE subscriptions SET status = 'disabled', disabled_reason = ?, "
                    "disabled_at = ?, updated_at = ? WHERE id = ? AND status = 'active'",
                    disables,
                )
            failing: list[SubscriptionHealth] = []
            for sub, delta in deltas.items():
                # fetchall: an UPDATE ... RETURNING is only complete once its rows are read
                rows = db.execute(
                    _UPDATE_HEALTH, {**delta.params(), "sub": sub, "now": now}
                ).fetchall()
                if delta.errors and rows:
                    failing.append(_health(rows[0]))
            return failing

        return write

    async def release_leases(self) -> int:
        """Forget every lease; called at start-up, when no delivery can be in flight."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL"
            )
            return cur.rowcount

    async def prune_attempts(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` attempt-log rows older than ``before``; returns how many."""
        async with self._lock:
            cur = await self._conn.execute(
                "DELETE FROM attempts WHERE id IN "
                "(SELECT id FROM attempts WHERE started_at < ? ORDER BY started_at LIMIT ?)",
                (before, batch),
            )
            return cur.rowcount

    # --- operator queries ---------------------------------------------------------------

    async def deliveries(
        self,
        status: str | None = None,
        *,
        subscription_id: str | None = None,
        since: float | None = None,
        latest: int | None = None,
    ) -> list[DeliveryRecord]:
        """Delivery rows, oldest first; filtered, and only the ``latest`` N if given."""
        params = {
            "status": status,
            "sub": subscription_id,
            "since": since,
            "until": None,
            "latest": -1 if latest is None else latest,
            "offset": 0,
        }
        async with self._lock:
            rows = await self._fetchall(_LIST_DELIVERIES, params)
        return [_delivery(r) for r in reversed(rows)]

    async def delivery_page(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[DeliveryRecord], int]:
        """One page of the matching deliveries, newest first, and how many match in all.

        ``since`` and ``until`` bound when the delivery was created: ``[since, until)``.
        """
        params = {
            "status": status,
            "sub": subscription_id,
            "since": since,
            "until": until,
            "latest": limit,
            "offset": offset,
        }
        async with self._lock:
            rows = await self._fetchall(_LIST_DELIVERIES, params)
            total = await self._fetchone(_COUNT_DELIVERIES, params)
        return [_delivery(r) for r in rows], int(total[0])

    async def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are in each status."""
        async with self._lock:
            rows = await self._fetchall(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status", ()
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def delivery(self, delivery_id: int) -> DeliveryRecord | None:
        """One delivery row, or None."""
        async with self._lock:
            row = await self._fetchone(
                _SELECT_DELIVERY,
                (delivery_id,),
            )
        return None if row is None else _delivery(row)

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        """The logged attempts of one delivery, oldest first."""
        async with self._lock:
            rows = await self._fetchall(
                "SELECT id, delivery_id, request_id, started_at, duration_ms, status_code, "
                "error_class, error, response_body, response_headers FROM attempts "
                "WHERE delivery_id = ? ORDER BY id",
                (delivery_id,),
            )
        return [
            AttemptRecord(
                int(r[0]),
                int(r[1]),
                str(r[2]),
                float(r[3]),
                int(r[4]),
                r[5],
                r[6],
                r[7],
                bytes(r[8]),
                orjson.loads(r[9]),
            )
            for r in rows
        ]

    async def queue_depths(self, now: float) -> list[tuple[str, str, int]]:
        """Unacknowledged deliveries per subscription and state.

        Pending ones are ``in_flight`` (leased), ``held`` (their subscription is disabled),
        ``due`` or ``waiting`` (for a retry or a delay); ``failed`` ones used up every retry.
        """
        async with self._lock:
            rows = await self._fetchall(_QUEUE_DEPTHS, {"now": now})
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def probe_write(self, now: float) -> None:
        """Write one row in its own transaction: proves the store accepts writes."""
        async with self._lock:
            try:
                await self._conn.execute(
                    "INSERT INTO health_probe (id, checked_at) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    (now,),
                )
            except aiosqlite.Error as exc:
                raise StoreError(f"store {self.path} does not accept writes: {exc}") from exc

    # --- subscriptions created through the admin API -----------------------------------

    async def api_subscriptions(self) -> list[StoredSubscription]:
        """Every API-created subscription, oldest first."""
        async with self._lock:
            rows = await self._fetchall(
                "SELECT id, spec, secret, created_at, updated_at, previous_secret, "
                "previous_secret_until FROM api_subscriptions ORDER BY created_at, id",
                (),
            )
        return [
            StoredSubscription(
                str(r[0]), json.loads(r[1]), str(r[2]), float(r[3]), float(r[4]), r[5], r[6]
            )
            for r in rows
        ]

    async def add_api_subscription(self, sub: StoredSubscription) -> bool:
        """Store a new subscription; False if one with its id exists."""
        async with self._lock:
            cur = await self._conn.execute(
                "INSERT OR IGNORE INTO api_subscriptions (id, spec, secret, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                (sub.id, _spec_json(sub.spec), sub.secret, sub.created_at, sub.updated_at),
            )
            return cur.rowcount == 1

    async def update_api_subscription(
        self, subscription_id: str, spec: JSONObject, now: float
    ) -> bool:
        """Replace the definition of a subscription; False if it is gone."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE api_subscriptions SET spec = ?, updated_at = ? WHERE id = ?",
                (_spec_json(spec), now, subscription_id),
            )
            return cur.rowcount == 1

    async def rotate_api_secret(
        self, subscription_id: str, secret: str, previous_until: float | None, now: float
    ) -> bool:
        """Sign with ``secret`` from now on; False if the subscription is gone.

        The replaced secret keeps signing too until ``previous_until`` (None: it stops now).
        """
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE api_subscriptions SET "
                "previous_secret = CASE WHEN ? IS NULL THEN NULL ELSE secret END, "
                "previous_secret_until = ?, secret = ?, updated_at = ? WHERE id = ?",
                (previous_until, previous_until, secret, now, subscription_id),
            )
            return cur.rowcount == 1

    async def delete_api_subscription(self, subscription_id: str) -> bool:
        """Forget a subscription; False if it was not there.

        Its undelivered webhooks stay in the outbox, waiting as for any unknown
        subscription, until one with the same id exists again.
        """
        async with self._lock:
            cur = await self._conn.execute(
                "DELETE FROM api_subscriptions WHERE id = ?", (subscription_id,)
            )
            return cur.rowcount == 1

    async def retry_delivery(self, delivery_id: int, now: float) -> bool:
        """Make one delivery due now; a finished one starts a fresh retry schedule."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE deliveries SET next_attempt_at = ?, completed_at = NULL, "
                "retry_base = CASE WHEN status = 'pending' THEN retry_base ELSE attempts END, "
                "status = 'pending' WHERE id = ?",
                (now, delivery_id),
            )
            return cur.rowcount > 0

    async def replay(self, subscription_id: str, since: float, until: float, now: float) -> int:
        """Re-queue every delivery of a subscription that failed in ``[since, until)``."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE deliveries SET status = 'pending', retry_base = attempts, "
                "next_attempt_at = ?, completed_at = NULL "
                "WHERE subscription_id = ? AND status = 'failed' "
                "AND completed_at >= ? AND completed_at < ?",
                (now, subscription_id, since, until),
            )
            return cur.rowcount

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """A write transaction under the connection lock, rolled back on any error."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                await self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # a failed COMMIT leaves it open too
                    await self._conn.execute("ROLLBACK")
                raise

    async def _fetchone(self, sql: str, params: Any) -> Any:
        rows = await self._conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _fetchall(self, sql: str, params: Any) -> list[Any]:
        return list(await self._conn.execute_fetchall(sql, params))


def _packed_columns(names: str, blobs: tuple[int, ...] = ()) -> str:
    """The SELECT list that reads the columns of a :class:`_Packed` row as ``names``."""
    return ", ".join(
        f"substr(:blobs, json_extract(value, '$[{i}][0]'), json_extract(value, '$[{i}][1]'))"
        f" AS {name}"
        if i in blobs
        else f"json_extract(value, '$[{i}]') AS {name}"
        for i, name in enumerate(names.split())
    )


_INSERT_BLOCKS = f"""
INSERT OR REPLACE INTO blocks (chain, number, hash, parent_hash)
SELECT :chain, {_packed_columns("number hash parent_hash")} FROM json_each(:rows)
"""  # noqa: S608 (no input in the text: the parameters carry it)

_INSERT_ACTIVITIES = f"""
INSERT OR REPLACE INTO activities (chain, subscription_id, mined_event_id, tx_hash,
    block_number, block_hash, confirm_at, confirmed_event_id, data)
SELECT :chain, {
    _packed_columns(
        "subscription_id mined_event_id tx_hash block_number block_hash confirm_at "
        "confirmed_event_id data",
        blobs=(7,),
    )
} FROM json_each(:rows)
"""  # noqa: S608

_INSERT_EVENTS = f"""
INSERT OR IGNORE INTO events (chain, id, type, tx_hash, block_number, block_hash, created_at)
SELECT :chain, {_packed_columns("id type tx_hash block_number block_hash created_at")}
FROM json_each(:rows)
"""  # noqa: S608

_INSERT_ATTEMPTS = f"""
INSERT INTO attempts (delivery_id, request_id, started_at, duration_ms, status_code,
    error_class, error, response_body, response_headers)
SELECT {
    _packed_columns(
        "delivery_id request_id started_at duration_ms status_code error_class error "
        "response_body response_headers",
        blobs=(7, 8),
    )
} FROM json_each(:rows)
"""  # noqa: S608

_UPDATE_ATTEMPTED = f"""
UPDATE deliveries SET status = a.status, attempts = deliveries.attempts + 1,
    lease_until = NULL, next_attempt_at = COALESCE(a.due, deliveries.next_attempt_at),
    last_status = a.code, last_error = a.error, last_attempt_at = a.started_at,
    completed_at = a.completed_at
FROM (
    SELECT {_packed_columns("id status due code error started_at completed_at")}
    FROM json_each(:rows)
) AS a
WHERE deliveries.id = a.id
"""  # noqa: S608

_INSERT_DELIVERIES = f"""
INSERT OR IGNORE INTO deliveries (created_at, event_id, subscription_id, body, next_attempt_at)
SELECT :now, {_packed_columns("event_id subscription_id body due", blobs=(2,))}
FROM json_each(:rows)
"""  # noqa: S608

_CLAIM = """
UPDATE deliveries SET lease_until = :lease WHERE id IN (
    WITH want AS (
        SELECT json_extract(value, '$[0]') AS sub, json_extract(value, '$[1]') AS quota,
               json_extract(value, '$[2]') AS ordered
        FROM json_each(:want)
    ),
    candidates AS (
        SELECT w.sub AS sub, w.quota AS quota, d.id AS id, d.next_attempt_at AS due
        FROM want w
        JOIN subscriptions s ON s.id = w.sub AND s.status = 'active'
        JOIN deliveries d ON d.id IN (
            SELECT x.id FROM deliveries x
            WHERE x.subscription_id = w.sub AND x.status = 'pending'
              AND x.next_attempt_at <= :now
              AND (x.lease_until IS NULL OR x.lease_until <= :now)
              AND (w.ordered = 0 OR x.id = (
                  SELECT MIN(y.id) FROM deliveries y
                  WHERE y.subscription_id = w.sub AND y.status = 'pending'))
            ORDER BY x.next_attempt_at, x.id LIMIT :per_sub
        )
    ),
    ranked AS (
        SELECT id, due, quota, ROW_NUMBER() OVER (PARTITION BY sub ORDER BY due, id) AS turn
        FROM candidates
    )
    SELECT id FROM ranked WHERE turn <= quota ORDER BY turn, due, id LIMIT :limit
)
RETURNING id, event_id, subscription_id, body, attempts - retry_base, created_at
"""

_QUEUE_DEPTHS = """
SELECT d.subscription_id,
    CASE WHEN d.status = 'failed' THEN 'failed'
         WHEN d.lease_until > :now THEN 'in_flight'
         WHEN s.status = 'disabled' THEN 'held'
         WHEN d.next_attempt_at <= :now THEN 'due'
         ELSE 'waiting' END AS state,
    COUNT(*)
FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id
WHERE d.status IN ('pending', 'failed')
GROUP BY d.subscription_id, state
"""

_SUBSCRIPTION_STATES = """
SELECT id, status, callback_error_count, failing_since, exhausted_since_success,
    last_success_at, disabled_reason, disabled_at, last_attempt_at,
    (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'),
    (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'failed')
FROM subscriptions s
WHERE :ids IS NULL OR s.id IN (SELECT value FROM json_each(:ids))
ORDER BY id
"""

_UPDATE_HEALTH = """
UPDATE subscriptions SET
    callback_error_count = callback_error_count + :errors,
    last_success_at = COALESCE(:success_at, last_success_at),
    failing_since = CASE WHEN :success_at IS NOT NULL THEN :first_failure
                         ELSE COALESCE(failing_since, :first_failure) END,
    exhausted_since_success = CASE WHEN :success_at IS NOT NULL THEN :exhausted
                                   ELSE exhausted_since_success + :exhausted END,
    last_attempt_at = MAX(COALESCE(last_attempt_at, 0), :last_attempt),
    updated_at = :now
WHERE id = :sub
RETURNING id, status, callback_error_count, failing_since, exhausted_since_success,
    last_success_at, disabled_reason
"""

_SELECT_DELIVERY = """
SELECT d.id, d.event_id, e.type, d.subscription_id, d.status, d.attempts, d.next_attempt_at,
    d.last_status, d.last_error, d.body, d.created_at, d.last_attempt_at, d.completed_at,
    d.lease_until IS NOT NULL
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.id = ?
"""

_LIST_DELIVERIES = """
SELECT d.id, d.event_id, e.type, d.subscription_id, d.status, d.attempts, d.next_attempt_at,
    d.last_status, d.last_error, d.body, d.created_at, d.last_attempt_at, d.completed_at,
    d.lease_until IS NOT NULL
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE (:status IS NULL OR d.status = :status)
  AND (:sub IS NULL OR d.subscription_id = :sub)
  AND (:since IS NULL OR d.created_at >= :since)
  AND (:until IS NULL OR d.created_at < :until)
ORDER BY d.id DESC LIMIT :latest OFFSET :offset
"""

# The same filter as _LIST_DELIVERIES.
_COUNT_DELIVERIES = """
SELECT COUNT(*) FROM deliveries d
WHERE (:status IS NULL OR d.status = :status)
  AND (:sub IS NULL OR d.subscription_id = :sub)
  AND (:since IS NULL OR d.created_at >= :since)
  AND (:until IS NULL OR d.created_at < :until)
"""


def _delivery(r: Any) -> DeliveryRecord:
    return DeliveryRecord(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        int(r[5]),
        float(r[6]),
        r[7],
        r[8],
        bytes(r[9]),
        float(r[10]),
        r[11],
        r[12],
        bool(r[13]),
    )


def _health(r: Any) -> SubscriptionHealth:
    return SubscriptionHealth(str(r[0]), str(r[1]), int(r[2]), r[3], int(r[4]), r[5], r[6])


@dataclass(slots=True)
class _HealthDelta:
    """What a batch of attempts changes in one subscription's health, in attempt order."""

    errors: int = 0
    success_at: float | None = None
    first_failure: float | None = None
    exhausted: int = 0
    last_attempt: float = 0.0

    def add(self, attempt: FinishedAttempt) -> None:
        self.last_attempt = max(self.last_attempt, attempt.started_at)
        status = attempt.decision.status
        if status is DeliveryStatus.SUCCEEDED:
            self.success_at = attempt.started_at
            self.first_failure = None
            self.exhausted = 0
            return
        self.errors += 1
        if self.first_failure is None:
            self.first_failure = attempt.started_at
        if status is DeliveryStatus.FAILED:
            self.exhausted += 1

    def params(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "success_at": self.success_at,
            "first_failure": self.first_failure,
            "exhausted": self.exhausted,
            "last_attempt": self.last_attempt,
        }


def _health_deltas(attempts: Sequence[FinishedAttempt]) -> dict[str, _HealthDelta]:
    deltas: dict[str, _HealthDelta] = {}
    for attempt in attempts:
        deltas.setdefault(attempt.subscription_id, _HealthDelta()).add(attempt)
    return deltas


def _spec_json(spec: JSONObject) -> bytes:
    # The standard library's json, not orjson: a condition may hold an integer beyond 64
    # bits (an amount in wei), which orjson neither writes nor reads back exactly.
    return json.dumps(spec, separators=(",", ":")).encode()


def _claim_params(
    now: float, quotas: Mapping[str, Quota], limit: int, lease_s: float
) -> dict[str, Any] | None:
    """The parameters of :data:`_CLAIM`; None when nothing may be claimed."""
    if not quotas or limit <= 0:
        return None
    return {
        "want": orjson.dumps([[sub, q.limit, int(q.ordered)] for sub, q in quotas.items()]),
        "now": now,
        "per_sub": max(q.limit for q in quotas.values()),
        "limit": limit,
        "lease": now + lease_s,
    }


def _jobs(rows: Sequence[Any]) -> list[DeliveryJob]:
    """Claimed rows as jobs, oldest delivery first."""
    jobs = [
        DeliveryJob(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4]), float(r[5]))
        for r in rows
    ]
    jobs.sort(key=lambda j: j.id)
    return jobs


@dataclass(frozen=True, slots=True)
class _EventRows:
    """Rows for the ``events`` and ``deliveries`` tables, built before a write transaction."""

    chain: str
    now: float
    events: _Packed
    deliveries: _Packed


@dataclass(frozen=True, slots=True)
class _Packed:
    """Rows for one ``INSERT ... SELECT ... FROM json_each(:rows)``: the whole table in one step.

    ``executemany`` steps SQLite once per row, and each step gives the GIL back and then
    waits for it again, which behind a busy event loop costs far more than the insert. One
    statement over a JSON array of rows steps once. JSON has no bytes: each row's blob column
    is ``[start, length]`` in ``blobs``, all of them concatenated (``substr`` counts from 1).
    """

    rows: bytes
    blobs: bytes

    @property
    def params(self) -> dict[str, bytes]:
        return {"rows": self.rows, "blobs": self.blobs}


def _pack(rows: Sequence[tuple[Any, ...]], blobs: tuple[int, ...] = ()) -> _Packed:
    """``rows`` as a :class:`_Packed`; the columns at ``blobs`` (bytes) go to the blobs."""
    if not blobs:
        return _Packed(orjson.dumps(rows), b"")
    data: list[bytes] = []
    start = 1
    packed: list[list[Any]] = []
    for row in rows:
        out = list(row)
        for i in blobs:
            blob: bytes = row[i]
            data.append(blob)
            out[i] = (start, len(blob))
            start += len(blob)
        packed.append(out)
    return _Packed(orjson.dumps(packed), b"".join(data))


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
