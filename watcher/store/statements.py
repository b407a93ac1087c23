"""The store's long SQL statements, by name.

Short statements sit in the method that runs them; these are the ones too long to read
inline, and the ``INSERT ... SELECT`` statements that unpack rows from
:mod:`watcher.store.packing`.
"""

from __future__ import annotations

from watcher.store.packing import _packed_columns

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

# Which of the subscriptions a worker holds claimed deliveries for are no longer active: an
# operator disabled them from another process, which cannot tell the running worker.
_NOT_ACTIVE = (
    "SELECT s.id FROM json_each(:waiting) w "
    "JOIN subscriptions s ON s.id = w.value WHERE s.status != 'active'"
)

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
