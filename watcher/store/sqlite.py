"""``SQLiteStore``: the :class:`~watcher.store.Store` on one SQLite file in WAL mode.

Each part of the store (chain writes, the outbox, subscriptions, operator queries) is a
class of its own on the shared :class:`~watcher.store.connection.SQLiteBase`; this one
combines them, and opens, migrates and closes the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from watcher.errors import StoreError
from watcher.outbox import Planner, native_planner
from watcher.store.chains import ChainStore
from watcher.store.connection import _Connection
from watcher.store.operations import OperatorStore
from watcher.store.outbox import OutboxStore
from watcher.store.schema import _MIGRATIONS
from watcher.store.subscriptions import SubscriptionStore


class SQLiteStore(ChainStore, OutboxStore, SubscriptionStore, OperatorStore):
    """:class:`~watcher.store.Store` on one SQLite file in WAL mode, through aiosqlite.

    One connection is shared by the chain followers and the delivery workers; a lock keeps
    each multi-statement transaction from interleaving with another coroutine's statements.
    """

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
