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
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import orjson

from watcher.errors import StoreError
from watcher.events import envelope
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
    Tx,
)
from watcher.tracker import REORG_WINDOW

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chains (
        name TEXT PRIMARY KEY,
        chain_id INTEGER,
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
        sender TEXT NOT NULL,
        recipient TEXT,
        value TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        raw BLOB NOT NULL,
        first_seen REAL NOT NULL,
        gone_since REAL,
        matches BLOB NOT NULL,
        PRIMARY KEY (chain, tx_hash)
    ) WITHOUT ROWID;
    """,
    # Subscriptions created through the admin API, and the readiness probe's row.
    """
    CREATE TABLE api_subscriptions (
        id TEXT PRIMARY KEY,
        spec BLOB NOT NULL,
        secret TEXT NOT NULL,
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
    """What the store knows about a chain: the node's chain id and the last block processed."""

    chain_id: int | None
    cursor: BlockRef | None


@dataclass(frozen=True, slots=True)
class TrackerState:
    """Everything a chain's tracker remembers, as last committed."""

    recent_blocks: list[BlockRef]
    activities: list[Activity]
    pending: list[PendingTx]


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


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A subscription created through the admin API, as stored.

    ``spec`` is its validated definition (JSON); ``secret`` the ``whsec_`` signing secret.
    """

    id: str
    spec: JSONObject
    secret: str = field(repr=False)
    created_at: float
    updated_at: float


class CursorConflictError(StoreError):
    """The chain cursor moved under us: another writer, or a stale in-memory view."""


class Store(Protocol):
    """What the daemon needs from durable storage."""

    async def chain_state(self, chain: str) -> ChainState: ...

    async def set_chain_id(self, chain: str, chain_id: int) -> None: ...

    async def tracker_state(self, chain: str) -> TrackerState: ...

    async def record_blocks(
        self, chain: str, expected: BlockRef | None, outcomes: Sequence[BlockOutcome]
    ) -> int: ...

    async def rewind(self, chain: str, expected: BlockRef, outcome: RewindOutcome) -> int: ...

    async def record_pool(self, chain: str, outcome: PoolOutcome) -> int: ...

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DeliveryJob]: ...

    async def next_due(self, now: float) -> float | None: ...

    async def complete(self, delivery_id: int, status: int, now: float) -> None: ...

    async def reschedule(
        self, delivery_id: int, next_attempt_at: float, status: int | None, error: str
    ) -> None: ...

    async def release_leases(self) -> int: ...


class SQLiteStore:
    """:class:`Store` on one SQLite file in WAL mode, through aiosqlite.

    One connection is shared by the chain followers and the delivery workers; a lock keeps
    each multi-statement transaction from interleaving with another coroutine's statements.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> SQLiteStore:
        """Open (creating if needed) and migrate the store at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # It holds the signing secrets of API-created subscriptions: owner only. SQLite
            # gives its -wal and -shm files the database file's mode.
            await asyncio.to_thread(path.touch, mode=0o600, exist_ok=True)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        store = cls(conn, path)
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
        return ChainState(row[0], cursor)

    async def set_chain_id(self, chain: str, chain_id: int) -> None:
        """Remember which chain id ``chain``'s node serves."""
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO chains (name, chain_id, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET chain_id = excluded.chain_id",
                (chain, chain_id, time.time()),
            )

    async def tracker_state(self, chain: str) -> TrackerState:
        """The recent blocks, live activities and pending transactions of ``chain``."""
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
                "SELECT tx_hash, sender, recipient, value, nonce, raw, first_seen, gone_since, "
                "matches FROM mempool WHERE chain = ?",
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
        async with self._transaction(chain, expected):
            conn = self._conn
            await conn.executemany(
                "INSERT OR REPLACE INTO blocks (chain, number, hash, parent_hash) "
                "VALUES (?, ?, ?, ?)",
                [(chain, o.block.number, o.block.hash, o.parent_hash) for o in outcomes],
            )
            created = await self._insert_events(chain, [e for o in outcomes for e in o.events], now)
            await conn.executemany(
                "INSERT OR REPLACE INTO activities (chain, subscription_id, mined_event_id, "
                "tx_hash, block_number, block_hash, confirm_at, confirmed_event_id, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        chain,
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
            )
            await conn.executemany(
                "DELETE FROM mempool WHERE chain = ? AND tx_hash = ?",
                [(chain, h) for o in outcomes for h in o.pool_removed],
            )
            await self._set_cursor(chain, head, now)
            horizon = head.number - REORG_WINDOW
            await conn.execute(
                "DELETE FROM blocks WHERE chain = ? AND number < ?", (chain, horizon)
            )
            await conn.execute(
                "DELETE FROM activities WHERE chain = ? AND block_number < ? "
                "AND (confirm_at IS NULL OR confirmed_event_id IS NOT NULL)",
                (chain, horizon),
            )
        return created

    async def rewind(self, chain: str, expected: BlockRef, outcome: RewindOutcome) -> int:
        """Move the cursor back to the reorg's common ancestor and record ``tx.reorged``."""
        now = time.time()
        ancestor = outcome.ancestor
        async with self._transaction(chain, expected):
            created = await self._insert_events(chain, outcome.events, now)
            await self._conn.execute(
                "DELETE FROM activities WHERE chain = ? AND block_number > ?",
                (chain, ancestor.number),
            )
            await self._conn.execute(
                "DELETE FROM blocks WHERE chain = ? AND number > ?", (chain, ancestor.number)
            )
            await self._set_cursor(chain, ancestor, now)
        return created

    async def record_pool(self, chain: str, outcome: PoolOutcome) -> int:
        """Write what a look at the mempool produced; the cursor does not move."""
        now = time.time()
        async with self._transaction(chain, None, check_cursor=False):
            created = await self._insert_events(chain, outcome.events, now)
            await self._conn.executemany(
                "INSERT OR REPLACE INTO mempool (chain, tx_hash, sender, recipient, value, "
                "nonce, raw, first_seen, gone_since, matches) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_pending_row(chain, p) for p in outcome.upserted],
            )
            await self._conn.executemany(
                "DELETE FROM mempool WHERE chain = ? AND tx_hash = ?",
                [(chain, h) for h in outcome.removed],
            )
        return created

    @asynccontextmanager
    async def _transaction(
        self, chain: str, expected: BlockRef | None, *, check_cursor: bool = True
    ) -> AsyncIterator[None]:
        """One write transaction under the lock, after checking the cursor is ``expected``."""
        conn = self._conn
        async with self._lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                if check_cursor:
                    row = await self._fetchone(
                        "SELECT cursor_number, cursor_hash FROM chains WHERE name = ?", (chain,)
                    )
                    stored = (
                        BlockRef(int(row[0]), str(row[1])) if row and row[0] is not None else None
                    )
                    if stored != expected:
                        raise CursorConflictError(
                            f"{chain}: cursor is {stored}, expected {expected}; another writer?"
                        )
                yield
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise

    async def _insert_events(self, chain: str, events: Sequence[Event], now: float) -> int:
        conn = self._conn
        await conn.executemany(
            "INSERT OR IGNORE INTO events "
            "(id, chain, type, tx_hash, block_number, block_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (e.id, chain, e.type.value, e.tx_hash, e.block_number, e.block_hash, e.created_at)
                for e in events
            ],
        )
        before = conn.total_changes
        await conn.executemany(
            "INSERT OR IGNORE INTO deliveries "
            "(event_id, subscription_id, body, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(e.id, e.subscription_id, envelope(e), e.created_at, now) for e in events],
        )
        return conn.total_changes - before

    async def _set_cursor(self, chain: str, head: BlockRef, now: float) -> None:
        await self._conn.execute(
            "INSERT INTO chains (name, cursor_number, cursor_hash, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "cursor_number = excluded.cursor_number, cursor_hash = excluded.cursor_hash, "
            "updated_at = excluded.updated_at",
            (chain, head.number, head.hash, now),
        )

    # --- deliveries --------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DeliveryJob]:
        """Lease up to ``limit`` due deliveries, oldest first, for ``lease_s`` seconds."""
        async with self._lock:
            rows = await self._fetchall(
                "UPDATE deliveries SET lease_until = ? WHERE id IN ("
                " SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?)"
                " ORDER BY next_attempt_at, id LIMIT ?"
                ") RETURNING id, event_id, subscription_id, body, attempts, created_at",
                (now + lease_s, now, now, limit),
            )
        jobs = [
            DeliveryJob(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4]), float(r[5]))
            for r in rows
        ]
        jobs.sort(key=lambda j: j.id)
        return jobs

    async def next_due(self, now: float) -> float | None:
        """When the earliest pending, unleased delivery becomes due (None if there is none)."""
        async with self._lock:
            row = await self._fetchone(
                "SELECT MIN(CASE WHEN lease_until > ? THEN lease_until ELSE next_attempt_at END) "
                "FROM deliveries WHERE status = 'pending'",
                (now,),
            )
        return float(row[0]) if row and row[0] is not None else None

    async def complete(self, delivery_id: int, status: int, now: float) -> None:
        """Mark a delivery acknowledged by its subscriber."""
        async with self._lock:
            await self._conn.execute(
                "UPDATE deliveries SET status = 'succeeded', attempts = attempts + 1, "
                "lease_until = NULL, last_status = ?, last_error = NULL, completed_at = ? "
                "WHERE id = ?",
                (status, now, delivery_id),
            )

    async def reschedule(
        self, delivery_id: int, next_attempt_at: float, status: int | None, error: str
    ) -> None:
        """Record a failed attempt and when to try again."""
        async with self._lock:
            await self._conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, lease_until = NULL, "
                "next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?",
                (next_attempt_at, status, error[:1000], delivery_id),
            )

    async def release_leases(self) -> int:
        """Forget every lease; called at start-up, when no delivery can be in flight."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL"
            )
            return cur.rowcount

    async def deliveries(self, status: str | None = None) -> list[DeliveryRecord]:
        """Delivery rows, oldest first, optionally only those with ``status``."""
        sql = (
            "SELECT d.id, d.event_id, e.type, d.subscription_id, d.status, d.attempts, "
            "d.next_attempt_at, d.last_status, d.last_error, d.body "
            "FROM deliveries d JOIN events e ON e.id = d.event_id"
        )
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE d.status = ?"
            params = (status,)
        async with self._lock:
            rows = await self._fetchall(sql + " ORDER BY d.id", params)
        return [
            DeliveryRecord(
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
            )
            for r in rows
        ]

    async def queue_depths(self, now: float) -> list[tuple[str, str, int]]:
        """Unacknowledged deliveries per subscription and state: due, waiting, in_flight."""
        async with self._lock:
            rows = await self._fetchall(
                "SELECT subscription_id, CASE WHEN lease_until > ? THEN 'in_flight' "
                "WHEN next_attempt_at <= ? THEN 'due' ELSE 'waiting' END AS state, COUNT(*) "
                "FROM deliveries WHERE status = 'pending' GROUP BY subscription_id, state",
                (now, now),
            )
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
                "SELECT id, spec, secret, created_at, updated_at FROM api_subscriptions "
                "ORDER BY created_at, id",
                (),
            )
        return [
            StoredSubscription(str(r[0]), json.loads(r[1]), str(r[2]), float(r[3]), float(r[4]))
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
        self, subscription_id: str, *, spec: JSONObject | None, secret: str | None, now: float
    ) -> bool:
        """Replace the definition and/or the secret of a subscription; False if it is gone."""
        async with self._lock:
            cur = await self._conn.execute(
                "UPDATE api_subscriptions SET spec = COALESCE(?, spec), "
                "secret = COALESCE(?, secret), updated_at = ? WHERE id = ?",
                (
                    _spec_json(spec) if spec is not None else None,
                    secret,
                    now,
                    subscription_id,
                ),
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

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())


def _spec_json(spec: JSONObject) -> bytes:
    # The standard library's json, not orjson: a condition may hold an integer beyond 64
    # bits (an amount in wei), which orjson neither writes nor reads back exactly.
    return json.dumps(spec, separators=(",", ":")).encode()


def _pending_row(chain: str, p: PendingTx) -> tuple[Any, ...]:
    tx = p.tx
    matches = [[m.subscription_id, m.address, m.direction.value] for m in p.matches]
    return (
        chain, tx.hash, tx.sender, tx.recipient, str(tx.value_wei), tx.nonce,
        orjson.dumps(tx.raw), p.first_seen, p.gone_since, orjson.dumps(matches),
    )  # fmt: skip


def _pending_from_row(chain: str, r: Any) -> PendingTx:
    tx = Tx(str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), orjson.loads(r[5]))
    matches = tuple(PoolMatch(str(s), str(a), Direction(d)) for s, a, d in orjson.loads(r[8]))
    return PendingTx(chain, tx, float(r[6]), r[7], matches)
