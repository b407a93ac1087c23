"""The outbox's delivery side: claiming due deliveries and recording each attempt.

A delivery worker's cycle is one transaction: log the finished attempts, apply the retry
policy's decisions and each subscription's health, then lease the next due deliveries
within every subscription's quota. Retries are rows here, not a loop in memory, so a
restart picks them up where they were.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from watcher.models import DeliveryJob
from watcher.policy import DeliveryStatus, SubscriptionHealth
from watcher.scheduling import Quota
from watcher.store.connection import SQLiteBase
from watcher.store.packing import _pack
from watcher.store.records import Claimed, FinishedAttempt
from watcher.store.statements import (
    _CLAIM,
    _INSERT_ATTEMPTS,
    _NOT_ACTIVE,
    _UPDATE_ATTEMPTED,
    _UPDATE_HEALTH,
)
from watcher.store.subscriptions import _health


class OutboxStore(SQLiteBase):
    """Claims of due deliveries, the attempt log, and what each attempt changes."""

    async def record_and_claim(
        self,
        attempts: Sequence[FinishedAttempt],
        now: float,
        quotas: Mapping[str, Quota],
        limit: int,
        lease_s: float,
        waiting: Collection[str] = (),
    ) -> Claimed:
        """:meth:`record_attempts`, then lease up to ``limit`` due deliveries of active
        subscriptions, each within its quota: one transaction, one trip to the store's thread.

        Subscriptions take turns: every subscription's oldest due delivery comes before any
        subscription's second, so one endpoint's backlog of retries cannot crowd out fresh
        deliveries to the others. For an ordered subscription only its oldest pending
        delivery is eligible, and only while it is not leased.

        ``waiting`` are the subscriptions of the deliveries the worker leased earlier and has
        not sent yet; those that are no longer active (disabled by ``watcher subscriptions
        disable``, from another process) are named in the result, so that the worker gives
        their deliveries back.

        This is the delivery worker's cycle: a trip to the store's thread waits for the event
        loop, which is busy with requests, so one trip instead of two keeps the slots full.
        Recording first lets an ordered subscription's next delivery go in the same cycle.
        """
        record = self._attempts_writer(attempts, now) if attempts else None
        params = _claim_params(now, quotas, limit, lease_s)
        if record is None and params is None and not waiting:
            return Claimed([], [], [])
        waiting_json = orjson.dumps(list(waiting)) if waiting else None

        def write(db: sqlite3.Connection) -> tuple[list[SubscriptionHealth], list[Any], list[str]]:
            failing = record(db) if record is not None else []
            rows = db.execute(_CLAIM, params).fetchall() if params is not None else []
            not_active = (
                [r[0] for r in db.execute(_NOT_ACTIVE, {"waiting": waiting_json})]
                if waiting_json is not None
                else []
            )
            return failing, rows, not_active

        failing, rows, not_active = await self._write(write)
        return Claimed(failing, _jobs(rows), not_active)

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
