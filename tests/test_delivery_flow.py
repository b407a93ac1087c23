"""Subscription state and flow control: 410, auto-disable, rate limits, ordering, delay, caps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.delivery_kit import FakeClock, Hang, Outbox, Reply, outbox, scripted, subscription
from watcher.models import RetryPolicy
from watcher.scheduling import Quota
from watcher.store import SQLiteStore


async def test_410_disables_the_subscription_and_enabling_delivers_the_backlog(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with (
        scripted(Reply(410), Reply(204)) as receiver,
        outbox(tmp_path, [subscription(receiver.url())], clock=clock) as box,
    ):
        await box.add_events("sub")
        await box.worker.run_once()
        (state,) = await box.store.subscription_states()
        assert state.health.status == "disabled"
        assert state.health.disabled_reason == "endpoint answered 410 Gone"

        await box.add_events("sub", 3)  # events keep being recorded while disabled
        clock.advance(86400)
        assert await box.worker.run_once() == 0
        assert len(receiver.requests) == 1

        assert await box.store.set_subscription_status("sub", "active", None, clock())
        assert await box.worker.run_once() == 4
        assert [r.status for r in await box.rows()] == ["succeeded"] * 4


async def test_a_subscription_failing_for_days_is_disabled_and_keeps_its_events(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    policy = RetryPolicy(schedule_s=(60.0,), disable_after_s=86400, disable_after_exhausted=2)
    async with scripted(Reply(500)) as receiver:
        sub = subscription(receiver.url(), policy=policy)
        async with outbox(tmp_path, [sub], clock=clock) as box:
            for _ in range(3):
                await box.add_events("sub")
                await box.worker.run_once()
                clock.advance(120)
                await box.worker.run_once()  # the second and last attempt
                clock.advance(12 * 3600)
            # Two deliveries exhausted their retries within the first day; the first failure
            # a full day after the streak began disables the subscription.
            (state,) = await box.store.subscription_states()
            assert state.health.status == "disabled"
            assert state.health.disabled_reason is not None
            assert "2 deliveries exhausted" in state.health.disabled_reason
            assert (state.health.callback_error_count, state.failed, state.pending) == (5, 2, 1)

            await box.add_events("sub", 2)
            assert await box.worker.run_once() == 0
            receiver.script[:] = [Reply(204)]
            await box.store.set_subscription_status("sub", "active", None, clock())
            assert await box.worker.run_once() == 3
            rows = await box.rows()
            assert [r.status for r in rows] == ["failed"] * 2 + ["succeeded"] * 3
            (state,) = await box.store.subscription_states()
            assert (state.health.status, state.health.failing_since) == ("active", None)


async def test_a_rate_limit_holds_deliveries_back_without_using_a_retry(tmp_path: Path) -> None:
    clock = FakeClock()
    async with scripted() as receiver:
        sub = subscription(receiver.url(), rate_limit_per_s=2.0)
        async with outbox(tmp_path, [sub], clock=clock) as box:
            await box.add_events("sub", 7)
            assert await box.worker.run_once() == 2
            assert await box.worker.run_once() == 0
            waiting = [r for r in await box.rows() if r.status == "pending"]
            assert len(waiting) == 5
            assert all(r.attempts == 0 for r in waiting)
            clock.advance(1.0)
            assert await box.worker.run_once() == 2
            clock.advance(1.5)
            assert await box.worker.run_once() == 2  # the bucket holds at most one second's worth
            clock.advance(0.5)
            assert await box.worker.run_once() == 1
            assert all(r.attempts == 1 for r in await box.rows())


async def test_an_ordered_subscription_sends_the_next_event_only_after_the_previous_one(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with scripted(Reply(500), Reply(500), Reply(204)) as receiver:
        sub = subscription(receiver.url(), ordered=True)
        async with outbox(tmp_path, [sub], clock=clock) as box:
            ids = await box.add_events("sub", 3)
            await box.add_events("sub", 2)
            ids += [r.event_id for r in (await box.rows())[3:]]
            for _ in range(10):
                await box.worker.run_once()
                clock.advance(600)
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    assert sent == [ids[0], ids[0], *ids]


async def test_a_delay_makes_a_delivery_due_that_long_after_its_event(tmp_path: Path) -> None:
    clock = FakeClock()
    async with scripted() as receiver:
        sub = subscription(receiver.url(), delay_s=30.0)
        async with outbox(tmp_path, [sub], clock=clock) as box:
            await box.add_events("sub")
            assert (await box.row()).next_attempt_at == clock() + 30
            clock.advance(29.9)
            assert await box.worker.run_once() == 0
            clock.advance(0.1)
            assert await box.worker.run_once() == 1


async def test_a_dead_endpoint_cannot_starve_fresh_deliveries_to_a_healthy_one(
    tmp_path: Path,
) -> None:
    async with scripted(Hang(30)) as dead, scripted() as healthy:
        subs = [
            subscription(dead.url(), "dead", timeout_s=20.0, endpoint_concurrency=3),
            subscription(healthy.url(), "healthy", endpoint_concurrency=3),
        ]
        async with outbox(
            tmp_path, subs, concurrency=4, poll_interval_s=0.05, drain_timeout_s=0.2
        ) as box:
            await box.add_events("dead", 40)  # a backlog that alone could fill every slot
            stop = asyncio.Event()
            run = asyncio.create_task(box.worker.run(stop))
            try:
                await wait_until(lambda: dead.in_flight == 3, what="the dead endpoint's share")
                await box.add_events("healthy", 5)
                box.worker.notify()
                await wait_until(lambda: len(healthy.requests) == 5, timeout=5, what="fresh ones")
                assert dead.max_in_flight == 3
                assert healthy.max_in_flight <= 1
            finally:
                stop.set()
                await run


async def test_the_global_and_per_endpoint_caps_bound_requests_in_flight(
    tmp_path: Path,
) -> None:
    async with scripted(Hang(0.2)) as first, scripted(Hang(0.2)) as second:
        subs = [
            subscription(first.url(), "a", endpoint_concurrency=4),
            subscription(first.url("/other"), "b", endpoint_concurrency=4),
            subscription(second.url(), "c", endpoint_concurrency=4),
        ]
        async with outbox(tmp_path, subs, concurrency=6) as box:
            for sub in ("a", "b", "c"):
                await box.add_events(sub, 10)
            sent = 0
            while sent < 30:
                sent += await box.worker.run_once()
    assert first.max_in_flight == 4  # two subscriptions share this endpoint's cap
    assert second.max_in_flight <= 4
    assert len(first.requests) + len(second.requests) == 30


async def test_a_delivery_claimed_by_a_process_that_died_is_sent_again_after_restart(
    tmp_path: Path,
) -> None:
    async with scripted() as receiver:
        sub = subscription(receiver.url())
        async with outbox(tmp_path, [sub]) as box:
            (event_id,) = await box.add_events("sub")
            _, (job,), _ = await box.store.record_and_claim(
                (), box.clock(), {"sub": Quota(1, False)}, 1, 3600
            )
            assert job.event_id == event_id
            assert await box.worker.run_once() == 0  # leased: nobody else may send it
            assert await box.store.release_leases() == 1  # what the daemon does at start-up
            assert await box.worker.run_once() == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id]


async def test_deliveries_claimed_ahead_are_not_sent_after_a_410(tmp_path: Path) -> None:
    """One request at a time to the endpoint, the rest of the backlog claimed to wait."""
    clock = FakeClock()
    async with (
        scripted(Reply(410), Reply(204)) as receiver,
        outbox(
            tmp_path, [subscription(receiver.url(), endpoint_concurrency=1)], clock=clock
        ) as box,
    ):
        await box.add_events("sub", 5)
        assert await box.worker.run_once() == 1
        assert len(receiver.requests) == 1
        rows = await box.rows()
        assert [(r.status, r.attempts) for r in rows] == [("pending", 1)] + [("pending", 0)] * 4
        assert not any(r.leased for r in rows), "the waiting ones were given back"
        assert await box.store.set_subscription_status("sub", "active", None, clock())
        assert await box.worker.run_once() == 5  # the 410'd one is retried at once too
        assert len(receiver.requests) == 6


async def test_a_backlog_wider_than_the_caps_is_sent_in_full_one_claim_ahead(
    tmp_path: Path,
) -> None:
    async with (
        scripted() as receiver,
        outbox(tmp_path, [subscription(receiver.url(), endpoint_concurrency=2)]) as box,
    ):
        await box.add_events("sub", 30)
        assert await box.worker.run_once() == 30
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 30
        rows = await box.rows()
        assert [r.status for r in rows] == ["succeeded"] * 30
        assert all(r.attempts == 1 and not r.leased for r in rows)


async def _disable_in_the_worker(box: Outbox) -> None:
    """As the admin API does: the store's status first, then the running worker is told."""
    assert await box.store.set_subscription_status("sub", "disabled", "test", 0.0)
    box.worker.hold_back("sub")


async def _disable_from_another_process(box: Outbox) -> None:
    """As `watcher subscriptions disable` does: only the store is told, by its own connection.

    The running worker finds out at its next cycle, within one poll interval.
    """
    operator = await SQLiteStore.open(box.store.path)
    try:
        assert await operator.set_subscription_status("sub", "disabled", "test", 0.0)
    finally:
        await operator.close()


@pytest.mark.parametrize(
    "disable",
    [_disable_in_the_worker, _disable_from_another_process],
    ids=["admin-api", "another-process"],
)
async def test_disabling_a_subscription_holds_back_what_was_claimed_ahead(
    tmp_path: Path, disable: Callable[[Outbox], Awaitable[None]]
) -> None:
    """The request in flight finishes; what was claimed ahead goes back to the store unsent."""
    async with scripted(Hang(1.0), Reply(204)) as receiver:
        sub = subscription(receiver.url(), endpoint_concurrency=1)
        async with outbox(tmp_path, [sub], poll_interval_s=0.05) as box:
            await box.add_events("sub", 5)
            stop = asyncio.Event()
            run = asyncio.create_task(box.worker.run(stop))
            try:
                await wait_until(lambda: receiver.in_flight == 1, what="the first request")
                await disable(box)

                async def given_back() -> bool:
                    return sum(r.leased for r in await box.rows()) == 1  # the one in flight

                await wait_until(given_back, what="the claimed-ahead deliveries given back")
                assert receiver.in_flight == 1
                await wait_until(lambda: receiver.in_flight == 0, what="the first to end")
            finally:
                stop.set()
                await run
            rows = await box.rows()
    assert len(receiver.requests) == 1
    assert [r.status for r in rows] == ["succeeded"] + ["pending"] * 4
    assert not any(r.leased for r in rows)
