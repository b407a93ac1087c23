"""The store's schema, as the migrations that build it, oldest first.

A store's ``PRAGMA user_version`` counts the migrations it has run; opening it runs the rest,
each in one transaction with the version it reaches, so a store is never between two
versions. A store that counts more than this watcher knows is refused, not guessed at.
"""

from __future__ import annotations

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
