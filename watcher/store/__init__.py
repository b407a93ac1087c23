"""The durable outbox and chain cursors: the only package that contains SQL.

:class:`Store` is the interface the rest of the daemon uses; :class:`SQLiteStore` is the
default implementation (one file, WAL mode). A server-backed implementation for several
daemon instances implements the same protocol.

``sqlite.py`` puts :class:`SQLiteStore` together from one class per concern, each on the
shared connection of ``connection.py``: ``chains.py`` (cursors, and everything a block writes
in the transaction that advances them), ``outbox.py`` (claims and the attempt log),
``subscriptions.py`` (health, and definitions created through the admin API) and
``operations.py`` (what operators query and re-queue). ``records.py`` holds what they return,
``protocol.py`` the :class:`Store` interface, ``schema.py`` the migrations, ``statements.py``
the long SQL and ``packing.py`` the one-step bulk inserts.
"""

from __future__ import annotations

from watcher.store.protocol import Store
from watcher.store.records import (
    AttemptRecord,
    ChainState,
    Claimed,
    CursorConflictError,
    DeliveryRecord,
    FinishedAttempt,
    StoredSubscription,
    SubscriptionState,
    TrackerState,
)
from watcher.store.sqlite import SQLiteStore

__all__ = [
    "AttemptRecord",
    "ChainState",
    "Claimed",
    "CursorConflictError",
    "DeliveryRecord",
    "FinishedAttempt",
    "SQLiteStore",
    "Store",
    "StoredSubscription",
    "SubscriptionState",
    "TrackerState",
]
