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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import orjson

from watcher.errors import StoreError
from watcher.events import envelope
from watcher.models import BlockOutcome, BlockRef, DeliveryJob, PendingConfirmation

# How many recent block hashes to keep per chain (enough to walk back over a reorg).
BLOCK_WINDOW = 256

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
    CREATE TABLE confirmations (
        chain TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        mined_event_id TEXT NOT NULL,
        confirm_at INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (chain, subscription_id, mined_event_id)
    ) WITHOUT ROWID;
    """,
)


@dataclass(frozen=True, slots=True)
class ChainState:
    """What the store knows about a chain: the node's chain id and the last block processed."""

    chain_id: int | None
    cursor: BlockRef | None


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


class CursorConflictError(StoreError):
    """The chain cursor moved under us: another writer, or a stale in-memory view."""


class Store(Protocol):
    """What the daemon needs from durable storage."""

    async def chain_state(self, chain: str) -> ChainState: ...

    async def set_chain_id(self, chain: str, chain_id: int) -> None: ...

    async def pending_confirmations(self, chain: str) -> list[PendingConfirmation]: ...

    async def record_blocks(
        self, chain: str, expected: BlockRef | None, outcomes: Sequence[BlockOutcome]
    ) -> int: ...

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

    async def pending_confirmations(self, chain: str) -> list[PendingConfirmation]:
        """Mined transactions of ``chain`` still waiting for their confirmation depth."""
        async with self._lock:
            rows = await self._fetchall(
                "SELECT subscription_id, mined_event_id, confirm_at, data FROM confirmations "
                "WHERE chain = ? ORDER BY confirm_at",
                (chain,),
            )
        return [
            PendingConfirmation(chain, str(r[0]), str(r[1]), int(r[2]), orjson.loads(r[3]))
            for r in rows
        ]

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
        blocks = [(chain, o.block.number, o.block.hash, o.parent_hash) for o in outcomes]
        events: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        for outcome in outcomes:
            for e in outcome.events:
                events.append(
                    (
                        e.id,
                        chain,
                        e.type.value,
                        e.tx_hash,
                        e.block_number,
                        e.block_hash,
                        e.created_at,
                    )
                )
                deliveries.append((e.id, e.subscription_id, envelope(e), e.created_at, now))
        added = [
            (chain, p.subscription_id, p.mined_event_id, p.confirm_at, orjson.dumps(p.data))
            for o in outcomes
            for p in o.confirmations_added
        ]
        done = [
            (chain, p.subscription_id, p.mined_event_id)
            for o in outcomes
            for p in o.confirmations_done
        ]
        head = outcomes[-1].block
        conn = self._conn
        async with self._lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                row = await self._fetchone(
                    "SELECT cursor_number, cursor_hash FROM chains WHERE name = ?", (chain,)
                )
                stored = BlockRef(int(row[0]), str(row[1])) if row and row[0] is not None else None
                if stored != expected:
                    raise CursorConflictError(
                        f"{chain}: cursor is {stored}, expected {expected}; another writer?"
                    )
                await conn.executemany(
                    "INSERT OR REPLACE INTO blocks (chain, number, hash, parent_hash) "
                    "VALUES (?, ?, ?, ?)",
                    blocks,
                )
                await conn.executemany(
                    "INSERT OR IGNORE INTO events "
                    "(id, chain, type, tx_hash, block_number, block_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    events,
                )
                before = conn.total_changes
                await conn.executemany(
                    "INSERT OR IGNORE INTO deliveries "
                    "(event_id, subscription_id, body, next_attempt_at, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    deliveries,
                )
                created = conn.total_changes - before
                await conn.executemany(
                    "INSERT OR IGNORE INTO confirmations "
                    "(chain, subscription_id, mined_event_id, confirm_at, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    added,
                )
                await conn.executemany(
                    "DELETE FROM confirmations "
                    "WHERE chain = ? AND subscription_id = ? AND mined_event_id = ?",
                    done,
                )
                await conn.execute(
                    "INSERT INTO chains (name, cursor_number, cursor_hash, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                    "cursor_number = excluded.cursor_number, cursor_hash = excluded.cursor_hash, "
                    "updated_at = excluded.updated_at",
                    (chain, head.number, head.hash, now),
                )
                await conn.execute(
                    "DELETE FROM blocks WHERE chain = ? AND number < ?",
                    (chain, head.number - BLOCK_WINDOW),
                )
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return created

    # --- deliveries --------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DeliveryJob]:
        """Lease up to ``limit`` due deliveries, oldest first, for ``lease_s`` seconds."""
        async with self._lock:
            rows = await self._fetchall(
                "UPDATE deliveries SET lease_until = ? WHERE id IN ("
                " SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?)"
                " ORDER BY next_attempt_at, id LIMIT ?"
                ") RETURNING id, event_id, subscription_id, body, attempts",
                (now + lease_s, now, now, limit),
            )
        jobs = [DeliveryJob(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]
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

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())
