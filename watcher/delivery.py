"""Outbox workers: claim due deliveries, POST them signed, record each attempt and its outcome.

One loop owns all store access: in one transaction it records the attempts that finished
since it last looked and claims as many due deliveries as the caps allow
(:class:`~watcher.scheduling.Slots`) with a lease, plus a few rounds more to wait for a slot,
and starts one task per request; a request that ends starts the next waiting delivery at
once, without waiting for the store. The requests themselves never touch the store, so no write
transaction is open across an HTTP request. Retry state lives only in the store: a crash
between a request and its record loses nothing, the lease is released at the next start and
the delivery is sent again with the same ``webhook-id``, which receivers deduplicate on.

The subscriptions can change while the worker runs (the admin API, a SIGHUP reload):
:meth:`DeliveryWorker.set_subscriptions` takes the new set, requests in flight finish
under the settings they started with, and each new subscription gets its state row in the
store before any of its deliveries is claimed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp
import structlog

from watcher.attempts import AttemptResult, Sender, post_webhook
from watcher.config import DeliveryConfig
from watcher.metrics import Metrics
from watcher.models import DeliveryJob, Subscription
from watcher.policy import (
    DeliveryStatus,
    ErrorClass,
    SubscriptionHealth,
    auto_disable_reason,
    decide,
)
from watcher.scheduling import AHEAD_ROUNDS, Slots
from watcher.store import FinishedAttempt, Store

log = structlog.get_logger()

# A lease outlives the longest request by this much, so it never expires under a live attempt,
# counting the requests a delivery claimed ahead may wait for (AHEAD_ROUNDS).
LEASE_MARGIN_S = 30.0


class DeliveryWorker:
    """Sends due deliveries within the concurrency caps and records every attempt."""

    def __init__(
        self,
        *,
        store: Store,
        subscriptions: Iterable[Subscription],
        session: aiohttp.ClientSession,
        config: DeliveryConfig,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        send: Sender = post_webhook,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._send = send
        self._session = session
        self._config = config
        self._clock = clock
        self._rand = rand
        self._metrics = metrics or Metrics()
        self._subs: dict[str, Subscription] = {}
        self._slots = Slots((), config.concurrency, clock())
        self._unsynced: set[str] = set()
        self._lease_s = LEASE_MARGIN_S
        self._wakeup = asyncio.Event()
        self._in_flight: dict[asyncio.Task[FinishedAttempt], DeliveryJob] = {}
        self._ready: deque[DeliveryJob] = deque()  # claimed, waiting for a slot
        self._given_back: list[int] = []  # claimed, not to be sent: to release
        self._finished: list[FinishedAttempt] = []
        self._started = 0
        # When the claim next asks which waiting subscriptions were disabled elsewhere
        # (time.monotonic(): a bound on the query's rate, not part of any schedule).
        self._status_check_at = 0.0
        self.set_subscriptions(subscriptions)

    def set_subscriptions(self, subscriptions: Iterable[Subscription]) -> None:
        """Deliver for this set of subscriptions from now on.

        The store learns the new ones before the next claim (a delivery is only claimed for a
        subscription with an ``active`` state row); the deliveries of a removed one stay
        queued until a subscription with its id exists again.
        """
        subs = {s.id: s for s in subscriptions}
        self._unsynced |= subs.keys() - self._subs.keys()
        self._subs = subs
        self._slots.update(subs.values(), self._clock())
        longest = max((s.delivery.timeout_s for s in subs.values()), default=0.0)
        # Never shorter than before: a lease taken under a longer timeout may still be running.
        self._lease_s = max(self._lease_s, (1 + AHEAD_ROUNDS) * longest + LEASE_MARGIN_S)
        self._wakeup.set()

    def hold_back(self, subscription_id: str) -> None:
        """``subscription_id`` was disabled: its deliveries waiting for a slot are not sent.

        Requests already in flight finish; the waiting deliveries go back to the store at the
        next cycle, to be sent once the subscription is enabled again.
        """
        self._give_back(subscription_id)
        self._wakeup.set()

    def notify(self) -> None:
        """New deliveries were written: look for due work now rather than at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then drain in-flight requests within the bound."""
        relay = asyncio.create_task(self._wake_on(stop), name="delivery:stop")
        try:
            while True:
                self._wakeup.clear()
                if stop.is_set():
                    break
                saturated = await self._claim_and_start()
                timeout = await self._idle_timeout(query_store=not saturated)
                try:
                    async with asyncio.timeout(timeout):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            relay.cancel()
            await self._drain()
            await self._record_finished()

    async def run_once(self) -> int:
        """Send every delivery due now, wait for them and record them; returns how many."""
        total = 0
        while True:
            before = self._started
            await self._claim_and_start()
            while self._in_flight:  # ending requests start the waiting deliveries
                await asyncio.wait(set(self._in_flight))
            if self._started == before:
                await self._record_finished()
                await self._release_waiting()  # none wait once nothing runs; if any, free them
                return total
            total += self._started - before

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wakeup.set()

    async def _claim_and_start(self) -> bool:
        """Record what finished, claim and start what the caps allow (one store trip).

        Returns True if every quota was used up.
        """
        if self._unsynced:
            ids = sorted(self._unsynced)
            await self._store.sync_subscriptions(ids, self._clock())
            self._unsynced.difference_update(ids)
        batch, self._finished = self._finished, []
        now = self._clock()
        quotas = self._slots.quotas(now, ahead=True)
        limit = self._slots.claimable
        wanted = min(limit, sum(q.limit for q in quotas.values()))
        failing, jobs, not_active = await self._store.record_and_claim(
            batch, now, quotas, limit, self._lease_s, self._waiting_to_check()
        )
        await self._recorded(batch, failing, now)
        for subscription_id in not_active:
            # disabled from another process (the CLI), which cannot call hold_back
            log.info("subscription_held_back", subscription=subscription_id)
            self._give_back(subscription_id)
        for job in jobs:
            if job.subscription_id in self._subs:
                self._slots.reserve(job.subscription_id)
                self._ready.append(job)
            else:
                self._given_back.append(job.id)  # it went away while the claim ran
        self._start_ready()
        given_back, self._given_back = self._given_back, []
        await self._store.release(given_back)
        return not quotas or len(jobs) >= wanted

    def _waiting_to_check(self) -> set[str]:
        """The subscriptions of the claimed deliveries waiting for a slot, once a poll interval.

        ``watcher subscriptions disable`` runs in another process and only tells the store;
        asking it once a poll interval bounds both the delay and the cost of the question.
        """
        if not self._ready or time.monotonic() < self._status_check_at:
            return set()
        self._status_check_at = time.monotonic() + self._config.poll_interval_s
        return {job.subscription_id for job in self._ready}

    def _start_ready(self) -> None:
        """Start the waiting deliveries the caps allow now, oldest first."""
        if not self._ready or self._slots.free <= 0:
            return
        now = self._clock()
        blocked: list[DeliveryJob] = []
        while self._ready and self._slots.free > 0:
            job = self._ready.popleft()
            sub = self._subs.get(job.subscription_id)
            if sub is None:
                self._slots.unreserve(job.subscription_id)
                self._given_back.append(job.id)
                continue
            if not self._slots.try_start(job.subscription_id, now):
                blocked.append(job)  # its endpoint is at its cap: the others may go
                continue
            self._slots.unreserve(job.subscription_id)
            task = asyncio.create_task(self._attempt(sub, job), name=f"deliver:{job.id}")
            self._in_flight[task] = job
            self._started += 1
            task.add_done_callback(self._attempt_done)
        self._ready.extendleft(reversed(blocked))

    def _give_back(self, subscription_id: str) -> None:
        """Do not send the waiting deliveries of ``subscription_id`` (it was disabled)."""
        kept: deque[DeliveryJob] = deque()
        for job in self._ready:
            if job.subscription_id == subscription_id:
                self._slots.unreserve(subscription_id)
                self._given_back.append(job.id)
            else:
                kept.append(job)
        self._ready = kept

    async def _idle_timeout(self, *, query_store: bool) -> float:
        """Seconds until something may become due: a retry, a rate-limit token, a poll.

        When every quota was used up there is no point asking the store: only a finishing
        request (which wakes the loop) or a new rate-limit token can let more start.
        """
        now = self._clock()
        deadline = now + self._config.poll_interval_s
        quotas = self._slots.quotas(now) if query_store else {}
        if quotas:
            due = await self._store.next_due(now, list(quotas))
            if due is not None:
                deadline = min(deadline, due)
        token_at = self._slots.next_token_at(now)
        if token_at is not None:
            deadline = min(deadline, token_at)
        return max(0.0, deadline - now)

    async def _attempt(self, sub: Subscription, job: DeliveryJob) -> FinishedAttempt:
        result = await self._send(
            self._session,
            sub,
            job.event_id,
            job.body,
            allow_networks=self._config.allow_networks,
            clock=self._clock,
        )
        now = self._clock()
        decision = decide(result.outcome, job.attempts + 1, sub.delivery.policy, now, self._rand)
        _log_attempt(job, result, decision.status, decision.next_attempt_at, now)
        self._metrics.delivery_attempt(
            sub.id,
            "succeeded" if result.ok else "failed",
            result.duration_ms / 1000,
            now - job.created_at if result.ok else None,
        )
        return FinishedAttempt(
            delivery_id=job.id,
            subscription_id=job.subscription_id,
            request_id=result.request_id,
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            status_code=result.status,
            error_class=None if result.error_class is None else result.error_class.value,
            error=result.error,
            response_body=result.response_body,
            response_headers=result.response_headers,
            decision=decision,
            summary=None if result.ok else result.describe(),
        )

    def _attempt_done(self, task: asyncio.Task[FinishedAttempt]) -> None:
        # The slot is free as soon as the request is over; the delivery itself stays leased
        # (so nobody sends it again, and an ordered subscription's next event waits) until
        # its attempt is recorded.
        job = self._in_flight.pop(task)
        self._slots.finish(job.subscription_id)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is None:
            finished = task.result()
            self._finished.append(finished)
            if finished.decision.disable_subscription is not None:
                self._give_back(job.subscription_id)
            self._start_ready()
        elif not task.cancelled():
            # Nothing to record: the lease expires (or is released at the next start) and
            # the delivery is sent again.
            log.error("delivery_task_crashed", delivery=job.id, error=repr(task.exception()))

    async def _record_finished(self) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        now = self._clock()
        await self._recorded(batch, await self._store.record_attempts(batch, now), now)

    async def _recorded(
        self, batch: list[FinishedAttempt], failing: list[SubscriptionHealth], now: float
    ) -> None:
        """Act on recorded attempts: wake ordered subscriptions, apply auto-disable."""
        for attempt in batch:
            sub = self._subs.get(attempt.subscription_id)
            if sub is not None and sub.delivery.ordered:
                self._wakeup.set()  # its next event may go now
            reason = attempt.decision.disable_subscription
            if reason is not None:
                log.warning(
                    "subscription_disabled", subscription=attempt.subscription_id, reason=reason
                )
        for health in failing:
            sub = self._subs.get(health.id)
            if sub is None:
                continue
            reason = auto_disable_reason(health, sub.delivery.policy, now)
            if reason is not None and await self._store.set_subscription_status(
                health.id, "disabled", reason, now
            ):
                self._give_back(health.id)
                log.warning("subscription_disabled", subscription=health.id, reason=reason)

    async def _release_waiting(self) -> None:
        """Give every delivery claimed and not started back to the store."""
        waiting = [job.id for job in self._ready] + self._given_back
        for job in self._ready:
            self._slots.unreserve(job.subscription_id)
        self._ready.clear()
        self._given_back = []
        await self._store.release(waiting)

    async def _drain(self) -> None:
        await self._release_waiting()
        if not self._in_flight:
            return
        log.info("delivery_draining", in_flight=len(self._in_flight))
        tasks = set(self._in_flight)
        _, pending = await asyncio.wait(tasks, timeout=self._config.drain_timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("delivery_drain_timeout", cancelled=len(pending))


def _log_attempt(
    job: DeliveryJob,
    result: AttemptResult,
    status: DeliveryStatus,
    next_attempt_at: float | None,
    now: float,
) -> None:
    if status is DeliveryStatus.SUCCEEDED:
        log.debug(
            "delivery_succeeded",
            subscription=job.subscription_id,
            delivery=job.id,
            attempt=job.attempts + 1,
            status=result.status,
            duration_ms=result.duration_ms,
        )
        return
    fields = {
        "subscription": job.subscription_id,
        "delivery": job.id,
        "event_id": job.event_id,
        "attempt": job.attempts + 1,
        "request_id": result.request_id,
        "duration_ms": result.duration_ms,
        "status": result.status,
    }
    if result.error_class is ErrorClass.BLOCKED:
        log.warning("delivery_blocked", error=result.error, **fields)
    elif status is DeliveryStatus.FAILED:
        log.error("delivery_given_up", error=result.describe(), **fields)
    else:
        retry_in = None if next_attempt_at is None else round(next_attempt_at - now, 2)
        log.warning("delivery_failed", error=result.describe(), retry_in_s=retry_in, **fields)
