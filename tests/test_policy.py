"""The retry and auto-disable policy as pure functions: no network, no clock, no sleeps."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.models import STANDARD_RETRY_SCHEDULE_S, RetryPolicy
from watcher.policy import (
    DeliveryStatus,
    ErrorClass,
    Outcome,
    SubscriptionHealth,
    auto_disable_reason,
    decide,
    parse_retry_after,
)

NOW = 1_800_000_000.0
POLICY = RetryPolicy()
HTTP_500 = Outcome(500, ErrorClass.HTTP)


def test_only_2xx_succeeds() -> None:
    for status in (200, 201, 204, 299):
        assert decide(Outcome(status, None), 1, POLICY, NOW).status is DeliveryStatus.SUCCEEDED
    for status in (199, 301, 302, 304, 400, 404, 500):
        decision = decide(Outcome(status, ErrorClass.HTTP), 1, POLICY, NOW)
        assert decision.status is DeliveryStatus.PENDING, status


def test_the_standard_schedule_is_followed_with_up_to_20_percent_added_jitter() -> None:
    for attempt, step in enumerate(STANDARD_RETRY_SCHEDULE_S, start=1):
        earliest = decide(HTTP_500, attempt, POLICY, NOW, rand=lambda: 0.0)
        latest = decide(HTTP_500, attempt, POLICY, NOW, rand=lambda: 0.999999)
        assert earliest.next_attempt_at == pytest.approx(NOW + step)
        assert latest.next_attempt_at == pytest.approx(NOW + step * 1.2, rel=1e-5)


def test_after_the_last_scheduled_retry_the_delivery_is_failed() -> None:
    assert POLICY.max_attempts == 10
    assert decide(HTTP_500, 9, POLICY, NOW).status is DeliveryStatus.PENDING
    last = decide(HTTP_500, 10, POLICY, NOW)
    assert last.status is DeliveryStatus.FAILED
    assert last.next_attempt_at is None


@given(
    attempt=st.integers(min_value=1, max_value=9),
    status=st.sampled_from([None, 302, 404, 429, 500, 503]),
    retry_after=st.one_of(st.none(), st.integers(min_value=0, max_value=10**7).map(str)),
    rand=st.floats(min_value=0, max_value=0.999),
)
def test_a_retry_is_never_earlier_than_scheduled(
    attempt: int, status: int | None, retry_after: str | None, rand: float
) -> None:
    error = ErrorClass.TIMEOUT if status is None else ErrorClass.HTTP
    decision = decide(Outcome(status, error, retry_after), attempt, POLICY, NOW, lambda: rand)
    assert decision.next_attempt_at is not None
    wait = decision.next_attempt_at - NOW
    step = STANDARD_RETRY_SCHEDULE_S[attempt - 1]
    assert wait >= step
    assert wait <= max(step * 1.2, POLICY.retry_after_max_s, POLICY.slow_down_min_s)


def test_timeouts_and_429_wait_at_least_a_minute() -> None:
    timeout = decide(Outcome(None, ErrorClass.TIMEOUT), 1, POLICY, NOW, rand=lambda: 0.0)
    too_many = decide(Outcome(429, ErrorClass.HTTP), 1, POLICY, NOW, rand=lambda: 0.0)
    refused = decide(Outcome(None, ErrorClass.CONNECTION), 1, POLICY, NOW, rand=lambda: 0.0)
    assert timeout.next_attempt_at == NOW + 60
    assert too_many.next_attempt_at == NOW + 60
    assert refused.next_attempt_at == NOW + 5


def test_retry_after_on_429_and_503_is_honoured_within_bounds() -> None:
    policy = RetryPolicy(retry_after_max_s=3600)
    asked = decide(Outcome(503, ErrorClass.HTTP, "120"), 1, policy, NOW, rand=lambda: 0.0)
    assert asked.next_attempt_at == NOW + 120
    capped = decide(Outcome(429, ErrorClass.HTTP, "999999"), 1, policy, NOW, rand=lambda: 0.0)
    assert capped.next_attempt_at == NOW + 3600
    short = decide(Outcome(429, ErrorClass.HTTP, "1"), 1, policy, NOW, rand=lambda: 0.0)
    assert short.next_attempt_at == NOW + 60  # never below the 429 minimum
    later_step = decide(Outcome(503, ErrorClass.HTTP, "10"), 3, policy, NOW, rand=lambda: 0.0)
    assert later_step.next_attempt_at == NOW + 1800  # never earlier than the schedule
    ignored = decide(Outcome(500, ErrorClass.HTTP, "600"), 1, policy, NOW, rand=lambda: 0.0)
    assert ignored.next_attempt_at == NOW + 5  # only 429 and 503 carry a meaningful Retry-After


def test_retry_after_as_an_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 300, UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == pytest.approx(300)
    assert parse_retry_after(" 42 ", NOW) == 42
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None


def test_410_disables_the_subscription_and_keeps_the_delivery_for_the_backlog() -> None:
    gone = decide(Outcome(410, ErrorClass.HTTP), 1, POLICY, NOW)
    assert gone.disable_subscription == "endpoint answered 410 Gone"
    assert gone.status is DeliveryStatus.PENDING
    assert decide(Outcome(410, ErrorClass.HTTP), 10, POLICY, NOW).disable_subscription


def test_a_blocked_callback_is_failed_at_once_and_never_retried() -> None:
    blocked = decide(Outcome(None, ErrorClass.BLOCKED), 1, POLICY, NOW)
    assert blocked.status is DeliveryStatus.FAILED
    assert blocked.next_attempt_at is None


def health(
    failing_for_s: float | None, exhausted: int, status: str = "active"
) -> SubscriptionHealth:
    since = None if failing_for_s is None else NOW - failing_for_s
    return SubscriptionHealth("s", status, 12, since, exhausted, None)


def test_auto_disable_needs_both_the_failing_time_and_the_exhausted_deliveries() -> None:
    policy = RetryPolicy(disable_after_s=5 * 86400, disable_after_exhausted=3)
    assert auto_disable_reason(health(6 * 86400, 3), policy, NOW) is not None
    assert auto_disable_reason(health(4 * 86400, 10), policy, NOW) is None
    assert auto_disable_reason(health(6 * 86400, 2), policy, NOW) is None
    assert auto_disable_reason(health(None, 10), policy, NOW) is None
    assert auto_disable_reason(health(6 * 86400, 3, status="disabled"), policy, NOW) is None
    reason = auto_disable_reason(health(6 * 86400, 3), policy, NOW)
    assert reason is not None
    assert "6.0 days" in reason
