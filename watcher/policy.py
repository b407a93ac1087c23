"""What happens after a webhook attempt: pure decisions, no I/O, randomness and time injected.

The worker measures an attempt (:class:`Outcome`) and asks :func:`decide` what to do with the
delivery: mark it succeeded, schedule the next attempt, or give up (``failed``). A subscription
is disabled at once by ``410 Gone`` and, through :func:`auto_disable_reason`, after its
deliveries have only failed for a long time. Keeping this pure lets the whole schedule be
checked without waiting days.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from watcher.models import RetryPolicy

Random = Callable[[], float]

# Statuses whose Retry-After header is honoured (within RetryPolicy.retry_after_max_s).
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE = 410
TOO_MANY_REQUESTS = 429


class ErrorClass(enum.StrEnum):
    """Why an attempt did not get a 2xx, as shown in the attempt log."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    DNS = "dns"
    HTTP = "http"
    BLOCKED = "blocked"


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands: waiting (``pending``), acknowledged, or given up on."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: an HTTP status, or an error class, and the Retry-After."""

    status: int | None
    error_class: ErrorClass | None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        """Only a 2xx status acknowledges a webhook."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record for a delivery after an attempt."""

    status: DeliveryStatus
    next_attempt_at: float | None
    disable_subscription: str | None = None


def decide(
    outcome: Outcome,
    attempt: int,
    policy: RetryPolicy,
    now: float,
    rand: Random = random.random,
) -> Decision:
    """The delivery's fate after attempt number ``attempt`` (1 for the first) ended in ``outcome``.

    Only 2xx succeeds. A refused (``blocked``) callback is never retried. ``410 Gone`` disables
    the subscription at once; the delivery itself stays pending so that re-enabling sends it.
    Otherwise the next attempt follows the schedule with added jitter, never earlier than a
    bounded Retry-After (429/503) nor, after a timeout or a 429, than ``slow_down_min_s``.
    """
    if outcome.ok:
        return Decision(DeliveryStatus.SUCCEEDED, None)
    if outcome.error_class is ErrorClass.BLOCKED:
        return Decision(DeliveryStatus.FAILED, None)
    disable = "endpoint answered 410 Gone" if outcome.status == GONE else None
    if attempt >= policy.max_attempts:
        return Decision(DeliveryStatus.FAILED, None, disable)
    return Decision(
        DeliveryStatus.PENDING, now + retry_delay(outcome, attempt, policy, now, rand), disable
    )


def retry_delay(
    outcome: Outcome, attempt: int, policy: RetryPolicy, now: float, rand: Random = random.random
) -> float:
    """Seconds until the attempt after attempt number ``attempt``."""
    step = policy.schedule_s[min(max(attempt, 1), len(policy.schedule_s)) - 1]
    delay = step * (1.0 + policy.jitter * rand())
    if outcome.error_class is ErrorClass.TIMEOUT or outcome.status == TOO_MANY_REQUESTS:
        delay = max(delay, policy.slow_down_min_s)
    if outcome.status in RETRY_AFTER_STATUSES and outcome.retry_after is not None:
        asked = parse_retry_after(outcome.retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, policy.retry_after_max_s))
    return delay


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if valid."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class SubscriptionHealth:
    """A subscription's delivery record, as the store keeps it."""

    id: str
    status: str
    callback_error_count: int
    failing_since: float | None
    exhausted_since_success: int
    last_success_at: float | None
    disabled_reason: str | None = None


def auto_disable_reason(health: SubscriptionHealth, policy: RetryPolicy, now: float) -> str | None:
    """Why ``health`` calls for disabling its subscription, or None.

    A subscription is disabled when nothing has succeeded for ``disable_after_s`` since its
    first failure and at least ``disable_after_exhausted`` deliveries have used up every retry.
    """
    if health.status != "active" or health.failing_since is None:
        return None
    failing_for = now - health.failing_since
    if failing_for < policy.disable_after_s:
        return None
    if health.exhausted_since_success < policy.disable_after_exhausted:
        return None
    days = failing_for / 86400.0
    since = datetime.fromtimestamp(health.failing_since, UTC).isoformat(timespec="seconds")
    return (
        f"only failures since {since} ({days:.1f} days) and "
        f"{health.exhausted_since_success} deliveries exhausted their retries"
    )
