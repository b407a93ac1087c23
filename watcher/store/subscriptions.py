"""Subscription state: delivery health, enabling and disabling, API-created definitions.

Subscriptions from the config file only have a state row here; those created through the
admin API keep their definition and signing secrets here too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from watcher.models import JSONObject
from watcher.policy import SubscriptionHealth
from watcher.store.connection import SQLiteBase
from watcher.store.records import StoredSubscription, SubscriptionState
from watcher.store.statements import _SUBSCRIPTION_STATES


class SubscriptionStore(SQLiteBase):
    """Every subscription's delivery state, and the definitions of API-created ones."""

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


def _health(r: Any) -> SubscriptionHealth:
    return SubscriptionHealth(str(r[0]), str(r[1]), int(r[2]), r[3], int(r[4]), r[5], r[6])


def _spec_json(spec: JSONObject) -> bytes:
    # The standard library's json, not orjson: a condition may hold an integer beyond 64
    # bits (an amount in wei), which orjson neither writes nor reads back exactly.
    return json.dumps(spec, separators=(",", ":")).encode()
