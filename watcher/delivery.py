"""Outbox workers: claim due deliveries, POST them signed, record the result.

A delivery is claimed with a lease, sent without any store transaction open, then either
completed (2xx) or rescheduled with the next backoff step. Retry state lives only in the
store, so a crash or restart loses nothing: an unfinished delivery is simply sent again
with the same ``webhook-id``, which receivers use to deduplicate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

from watcher import __version__
from watcher.config import DeliveryConfig
from watcher.metrics import Metrics
from watcher.models import DeliveryJob, Subscription
from watcher.netguard import BlockedAddressError, GuardedResolver, refusal
from watcher.retry import delivery_delay
from watcher.signing import sign
from watcher.store import Store

log = structlog.get_logger()

USER_AGENT = f"watcher/{__version__}"
# Only this much of a response body is read: receivers are expected to answer quickly.
MAX_RESPONSE_BYTES = 64 * 1024
# A delivery whose subscription is gone from the configuration waits this long between looks.
UNKNOWN_SUBSCRIPTION_RETRY_S = 300.0


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one POST ended: an HTTP status, or an error class and message."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def webhook_session(config: DeliveryConfig) -> aiohttp.ClientSession:
    """The HTTP client for callbacks: guarded resolver, bounded pool, no cookies."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(config.allow_networks), limit=config.concurrency
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=config.timeout_s, connect=config.connect_timeout_s),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


class DeliveryWorker:
    """Sends due deliveries with at most ``config.concurrency`` requests in flight."""

    def __init__(
        self,
        *,
        store: Store,
        subscriptions: Mapping[str, Subscription],
        session: aiohttp.ClientSession,
        config: DeliveryConfig,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self._subscriptions = subscriptions
        self._session = session
        self._config = config
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._lease_s = config.timeout_s + 30.0

    def notify(self) -> None:
        """New deliveries were written: look for due work now rather than at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then drain in-flight requests within the bound."""
        stop_waiter = asyncio.create_task(stop.wait(), name="delivery:stop")
        try:
            while not stop.is_set():
                self._wakeup.clear()
                await self._claim_and_start()
                timeout = await self._idle_timeout()
                wake = asyncio.create_task(self._wakeup.wait(), name="delivery:wake")
                await asyncio.wait(
                    {wake, stop_waiter}, timeout=timeout, return_when="FIRST_COMPLETED"
                )
                wake.cancel()
        finally:
            stop_waiter.cancel()
            await self._drain()

    async def run_once(self) -> int:
        """Send every delivery due now and wait for them; returns how many were attempted."""
        total = 0
        while True:
            started = await self._claim_and_start()
            if not started:
                break
            total += started
            await asyncio.gather(*self._in_flight)
        return total

    async def _claim_and_start(self) -> int:
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        jobs = await self._store.claim_due(self._clock(), free, self._lease_s)
        for job in jobs:
            task = asyncio.create_task(self._deliver(job), name=f"deliver:{job.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(jobs)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery_task_crashed", error=repr(task.exception()))

    async def _idle_timeout(self) -> float:
        poll = self._config.poll_interval_s
        if len(self._in_flight) >= self._config.concurrency:
            return poll
        now = self._clock()
        due = await self._store.next_due(now)
        if due is None:
            return poll
        return min(poll, max(0.0, due - now))

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        log.info("delivery_draining", in_flight=len(self._in_flight))
        _, pending = await asyncio.wait(self._in_flight, timeout=self._config.drain_timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("delivery_drain_timeout", cancelled=len(pending))

    async def _deliver(self, job: DeliveryJob) -> None:
        sub = self._subscriptions.get(job.subscription_id)
        if sub is None:
            log.warning(
                "delivery_unknown_subscription", subscription=job.subscription_id, delivery=job.id
            )
            await self._store.reschedule(
                job.id, self._clock() + UNKNOWN_SUBSCRIPTION_RETRY_S, None, "unknown subscription"
            )
            self._metrics.deliveries.labels(job.subscription_id, "unknown_subscription").inc()
            return
        started = self._clock()
        result = await self._post(sub, job)
        now = self._clock()
        fields = {
            "subscription": sub.id,
            "delivery": job.id,
            "event_id": job.event_id,
            "attempt": job.attempts + 1,
            "duration_ms": round((now - started) * 1000),
        }
        latency_s = now - job.created_at if result.ok else None
        self._metrics.delivery_attempt(
            sub.id, "succeeded" if result.ok else "failed", now - started, latency_s
        )
        if result.ok:
            assert result.status is not None
            await self._store.complete(job.id, result.status, now)
            log.info("delivery_succeeded", status=result.status, **fields)
            return
        delay = delivery_delay(self._config.retry_schedule_s, job.attempts + 1)
        error = result.error or f"HTTP {result.status}"
        await self._store.reschedule(job.id, now + delay, result.status, error)
        log.warning(
            "delivery_failed",
            status=result.status,
            error=error,
            retry_in_s=round(delay, 2),
            **fields,
        )

    async def _post(self, sub: Subscription, job: DeliveryJob) -> AttemptResult:
        host = urlsplit(sub.url).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            reason = refusal(literal, self._config.allow_networks)
            if reason is not None:
                return AttemptResult(None, f"blocked: {host} is {reason}")
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": job.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(sub.secret, job.event_id, timestamp, job.body),
        }
        try:
            async with self._session.post(
                sub.url, data=job.body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                return AttemptResult(response.status, None)
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            if isinstance(cause, BlockedAddressError) or isinstance(
                exc.__cause__, BlockedAddressError
            ):
                return AttemptResult(None, f"blocked: {cause}")
            return AttemptResult(None, f"connection: {exc}")
        except TimeoutError:
            return AttemptResult(None, "timeout")
        except aiohttp.ClientError as exc:
            return AttemptResult(None, f"{type(exc).__name__}: {exc}")
