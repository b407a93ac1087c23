"""The store's one SQLite connection, and the base each part of the store builds on.

aiosqlite sends every statement to the connection's thread on its own; :class:`_Connection`
can send a whole transaction as one call instead. :class:`SQLiteBase` holds that connection
and the lock that keeps one coroutine's transaction from interleaving with another's
statements, with the helpers every part of :class:`~watcher.store.SQLiteStore` reads and
writes through.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from watcher.outbox import Planner, native_planner

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


class SQLiteBase:
    """The connection, its lock, and the helpers every part of the store runs statements with.

    The parts of :class:`~watcher.store.SQLiteStore` share one connection and one lock; each
    holds the lock for a whole transaction, so one coroutine's statements never land inside
    another's.
    """

    def __init__(self, conn: _Connection, path: Path, planner: Planner = native_planner) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._planner = planner
        self.path = path

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one write transaction, run on the connection's thread in one trip."""
        async with self._lock:
            return await self._conn.run(_in_transaction(work))

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
