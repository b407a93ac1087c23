"""Retries against real receivers that misbehave on purpose, timed with an injected clock.

Each test drives a real worker on a real SQLite file one step at a time (``run_once``) and
moves the clock instead of sleeping, so a schedule of days runs in well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.delivery_kit import FakeClock, Hang, Reply, Reset, outbox, scripted, subscription
from watcher.attempts import (
    REDACTED,
    REQUEST_ID_HEADER,
    RESPONSE_BODY_MAX_BYTES,
    new_request_id,
)
from watcher.models import STANDARD_RETRY_SCHEDULE_S, RetryPolicy


async def test_a_failing_endpoint_is_retried_on_the_standard_schedule_then_failed(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with (
        scripted(Reply(500)) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub")
        assert await box.worker.run_once() == 1
        for attempt, step in enumerate(STANDARD_RETRY_SCHEDULE_S, start=1):
            row = await box.row()
            assert (row.status, row.attempts) == ("pending", attempt)
            wait = row.next_attempt_at - clock()
            assert step <= wait <= step * 1.2
            clock.advance(step * 0.999)
            assert await box.worker.run_once() == 0, "sent before it was due"
            clock.advance(wait - step * 0.999)
            assert await box.worker.run_once() == 1
        row = await box.row()
        assert (row.status, row.attempts, row.last_error) == ("failed", 10, "HTTP 500")
        clock.advance(10 * 86400)
        assert await box.worker.run_once() == 0
        assert len(receiver.requests) == 10
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


async def test_a_receiver_that_recovers_after_three_failures_gets_the_webhook(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with (
        scripted(Reply(500), Reply(502), Reply(503), Reply(200, body=b"thanks")) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub")
        for _ in range(4):
            await box.worker.run_once()
            clock.advance(86400)
        row = await box.row()
        assert (row.status, row.attempts, row.last_status) == ("succeeded", 4, 200)
        attempts = await box.store.attempts(row.id)
        assert [a.status_code for a in attempts] == [500, 502, 503, 200]
        assert [a.error_class for a in attempts] == ["http", "http", "http", None]
        assert attempts[-1].response_body == b"thanks"
        health = (await box.store.subscription_states())[0].health
        assert health.callback_error_count == 3
        assert health.last_success_at is not None
        assert health.failing_since is None


async def test_a_timeout_is_retried_no_sooner_than_a_minute_later(tmp_path: Path) -> None:
    clock = FakeClock()
    async with scripted(Hang(5.0), Reply(204)) as receiver:
        sub = subscription(receiver.url(), timeout_s=0.3)
        async with outbox(tmp_path, [sub], clock=clock) as box:
            await box.add_events("sub")
            await box.worker.run_once()
            row = await box.row()
            (attempt,) = await box.store.attempts(row.id)
    assert row.last_error is not None
    assert row.last_error.startswith("timeout")
    assert row.next_attempt_at - clock() >= 60
    assert attempt.error_class == "timeout"
    assert attempt.duration_ms < 2000


async def test_a_connection_reset_is_a_connection_error_and_is_retried(tmp_path: Path) -> None:
    clock = FakeClock()
    async with (
        scripted(Reset(), Reply(204)) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub")
        await box.worker.run_once()
        row = await box.row()
        assert row.status == "pending"
        (attempt,) = await box.store.attempts(row.id)
        assert attempt.error_class == "connection"
        clock.advance(6)
        await box.worker.run_once()
        assert (await box.row()).status == "succeeded"


async def test_a_refused_connection_is_a_connection_error(tmp_path: Path) -> None:
    async with scripted() as receiver:
        url = receiver.url()
    async with outbox(tmp_path, [subscription(url)]) as box:
        await box.add_events("sub")
        await box.worker.run_once()
        (attempt,) = await box.store.attempts(1)
        assert attempt.error_class == "connection"
        assert (await box.row()).status == "pending"


async def test_429_with_retry_after_is_honoured_within_its_bound(tmp_path: Path) -> None:
    clock = FakeClock()
    policy = RetryPolicy(retry_after_max_s=3600)
    async with (
        scripted(
            Reply(429, {"Retry-After": "120"}), Reply(503, {"Retry-After": "86400"}), Reply(204)
        ) as receiver,
        outbox(tmp_path, [subscription(receiver.url(), policy=policy)], clock=clock) as box,
    ):
        await box.add_events("sub")
        await box.worker.run_once()
        first = await box.row()
        assert 120 <= first.next_attempt_at - clock() <= 121
        clock.advance(119)
        assert await box.worker.run_once() == 0
        clock.advance(2)
        await box.worker.run_once()
        second = await box.row()
        assert second.next_attempt_at - clock() == 3600  # capped at retry_after_max_s
        clock.advance(3600)
        await box.worker.run_once()
        assert (await box.row()).status == "succeeded"


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(tmp_path: Path) -> None:
    async with scripted() as elsewhere:
        async with (
            scripted(Reply(302, {"Location": elsewhere.url()})) as receiver,
            outbox(tmp_path, [subscription(receiver.url())]) as box,
        ):
            await box.add_events("sub")
            await box.worker.run_once()
            row = await box.row()
        assert (row.status, row.last_status, row.last_error) == ("pending", 302, "HTTP 302")
        assert elsewhere.requests == []


async def test_a_10_mb_response_body_is_cut_at_20_kb(tmp_path: Path) -> None:
    huge = b"x" * (10 * 1024 * 1024)
    async with (
        scripted(Reply(200, body=huge)) as receiver,
        outbox(tmp_path, [subscription(receiver.url())]) as box,
    ):
        await box.add_events("sub")
        await box.worker.run_once()
        row = await box.row()
        (attempt,) = await box.store.attempts(row.id)
    assert row.status == "succeeded"
    assert attempt.response_body == huge[:RESPONSE_BODY_MAX_BYTES]


async def test_the_attempt_log_keeps_request_id_timing_and_redacted_headers(
    tmp_path: Path,
) -> None:
    headers = {"Set-Cookie": "session=abc", "X-Api-Key": "k", "X-Trace": "t-1"}
    clock = FakeClock()
    async with (
        scripted(Reply(500, headers, b"oops")) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub")
        await box.worker.run_once()
        (attempt,) = await box.store.attempts(1)
    (request,) = receiver.requests
    assert attempt.request_id == request.headers[REQUEST_ID_HEADER]
    assert attempt.started_at == clock()
    assert attempt.duration_ms >= 0
    assert (attempt.status_code, attempt.error_class, attempt.response_body) == (
        500,
        "http",
        b"oops",
    )
    assert attempt.response_headers["Set-Cookie"] == REDACTED
    assert attempt.response_headers["X-Api-Key"] == REDACTED
    assert attempt.response_headers["X-Trace"] == "t-1"


async def test_a_host_name_that_does_not_resolve_is_a_dns_error_and_is_retried(
    tmp_path: Path,
) -> None:
    async with outbox(tmp_path, [subscription("http://watcher-test.invalid/hook")]) as box:
        await box.add_events("sub")
        await box.worker.run_once()
        row = await box.row()
        (attempt,) = await box.store.attempts(row.id)
    assert (row.status, attempt.error_class) == ("pending", "dns")


def test_request_ids_are_unique_and_keep_their_shape() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
