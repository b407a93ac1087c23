"""What operators ask of the outbox and do to it: listings, counts, retries and replays.

The admin commands, the admin API and the metrics listener read deliveries and attempts
through these, and re-queue what failed; none of it takes part in delivering. The readiness
probe's test write is here too.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
import orjson

from watcher.errors import StoreError
from watcher.store.connection import SQLiteBase
from watcher.store.records import AttemptRecord, DeliveryRecord
from watcher.store.statements import (
    _COUNT_DELIVERIES,
    _LIST_DELIVERIES,
    _QUEUE_DEPTHS,
    _SELECT_DELIVERY,
)


class OperatorStore(SQLiteBase):
    """Operator queries of deliveries and attempts, retries and replays, the readiness write."""

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
