"""Text for operators: the tables and details the ``deliveries``, ``subscriptions`` and
``test-webhook`` commands show. Pure: values in, lines out; ``cli.py`` prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from watcher.admin import SubscriptionRow
from watcher.attempts import AttemptResult
from watcher.models import Event
from watcher.store import AttemptRecord, DeliveryRecord

# How much of a stored response body ``deliveries show`` prints.
SHOWN_BODY_CHARS = 2000


def when(ts: float | None) -> str:
    """``2026-11-23T02:37:56Z``, or ``-``."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def deliveries_table(rows: Sequence[DeliveryRecord]) -> list[str]:
    """``watcher deliveries list``: one line per delivery."""
    if not rows:
        return ["no deliveries"]
    return table(
        ("ID", "STATUS", "ATTEMPTS", "SUBSCRIPTION", "TYPE", "EVENT", "CREATED", "NEXT", "LAST"),
        [
            (
                str(r.id),
                _status(r),
                str(r.attempts),
                r.subscription_id,
                r.event_type,
                r.event_id,
                when(r.created_at),
                when(r.next_attempt_at) if r.status == "pending" else "-",
                r.last_error or (f"HTTP {r.last_status}" if r.last_status else "-"),
            )
            for r in rows
        ],
    )


def delivery_details(record: DeliveryRecord, attempts: Sequence[AttemptRecord]) -> list[str]:
    """``watcher deliveries show``: the delivery, its body, then every logged attempt."""
    lines = [
        f"delivery {record.id}",
        f"  status        {_status(record)} after {record.attempts} attempt(s)",
        f"  subscription  {record.subscription_id}",
        f"  event         {record.event_id} ({record.event_type})",
        f"  created       {when(record.created_at)}",
    ]
    if record.status == "pending":
        lines.append(f"  next attempt  {when(record.next_attempt_at)}")
    else:
        lines.append(f"  finished      {when(record.completed_at)}")
    if record.last_error or record.last_status:
        lines.append(f"  last result   {record.last_error or f'HTTP {record.last_status}'}")
    lines += ["", "request body (sent unchanged on every attempt):", _text(record.body)]
    lines += ["", f"attempts ({len(attempts)} in the log):"]
    for a in attempts:
        result = f"HTTP {a.status_code}" if a.status_code is not None else "no answer"
        error = f", {a.error_class}: {a.error}" if a.error_class and a.error_class != "http" else ""
        lines.append(f"  {when(a.started_at)}  {a.request_id}  {a.duration_ms} ms  {result}{error}")
        for name, value in a.response_headers.items():
            lines.append(f"      {name}: {value}")
        if a.response_body:
            lines.append(
                f"      body ({len(a.response_body)} bytes kept): {_text(a.response_body)}"
            )
    return lines


def subscriptions_table(rows: Sequence[SubscriptionRow]) -> list[str]:
    """``watcher subscriptions list``, then why each disabled subscription is disabled."""
    if not rows:
        return ["no subscriptions"]
    lines = table(
        ("ID", "STATUS", "ERRORS", "LAST SUCCESS", "FAILING SINCE", "PENDING", "FAILED"),
        [
            (
                r.id + ("" if r.configured else " (not configured)"),
                r.health.status,
                str(r.health.callback_error_count),
                when(r.health.last_success_at),
                when(r.health.failing_since),
                str(r.pending),
                str(r.failed),
            )
            for r in rows
        ],
    )
    for r in rows:
        if r.health.status == "disabled":
            lines.append(f"{r.id}: disabled {when(r.disabled_at)}: {r.health.disabled_reason}")
    return lines


def test_webhook_result(event: Event, result: AttemptResult) -> list[str]:
    """``watcher test-webhook``: what was sent and how the endpoint answered."""
    outcome = f"HTTP {result.status}" if result.status is not None else result.describe()
    verdict = "ok" if result.ok else "not acknowledged (only 2xx counts)"
    lines = [
        f"sent sample {event.type.value} {event.id} ({result.request_id})",
        f"answer: {outcome} in {result.duration_ms} ms: {verdict}",
    ]
    if result.response_body:
        lines.append(f"response body: {_text(result.response_body)}")
    return lines


def _status(record: DeliveryRecord) -> str:
    return "in flight" if record.leased and record.status == "pending" else record.status


def _text(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    if len(text) > SHOWN_BODY_CHARS:
        return f"{text[:SHOWN_BODY_CHARS]}... ({len(text) - SHOWN_BODY_CHARS} more characters)"
    return text
