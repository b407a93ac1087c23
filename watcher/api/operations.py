"""The outbox through the API: list and inspect deliveries, retry, replay, test-fire.

The same actions as the ``watcher deliveries`` and ``watcher test-webhook`` commands, on the
daemon's own store connection. Re-queued deliveries wake the delivery worker at once rather
than at its next poll. The retry state itself stays in the store (see
:mod:`watcher.delivery`): retry and replay only make deliveries due again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import aiohttp
import structlog

from watcher.admin import send_test
from watcher.api.delivery_specs import (
    MAX_DELIVERY_ID,
    DeliveryQuery,
    ReplayBody,
    ReplayResult,
    TestResult,
    test_result,
    timestamp,
)
from watcher.api.errors import ConflictError, FieldError, InvalidError, NotFoundError
from watcher.models import Subscription
from watcher.netguard import IPNetwork
from watcher.registry import SubscriptionRegistry
from watcher.store import AttemptRecord, DeliveryRecord

log = structlog.get_logger()


class OutboxStore(Protocol):
    """What the operations need from the store."""

    async def delivery_page(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[DeliveryRecord], int]: ...

    async def delivery(self, delivery_id: int) -> DeliveryRecord | None: ...

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]: ...

    async def retry_delivery(self, delivery_id: int, now: float) -> bool: ...

    async def replay(self, subscription_id: str, since: float, until: float, now: float) -> int: ...


class DeliveryOperations:
    """Delivery queries and actions for the admin API."""

    def __init__(
        self,
        store: OutboxStore,
        registry: SubscriptionRegistry,
        wake: Callable[[], None],
        session: aiohttp.ClientSession,
        allow_networks: Sequence[IPNetwork],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._registry = registry
        self._wake = wake
        self._session = session
        self._allow_networks = allow_networks
        self._clock = clock

    def known(self, webhook_id: str) -> None:
        """Return if a webhook with this id exists (runnable or not); NotFoundError if not."""
        if self._registry.entry(webhook_id) is None:
            raise NotFoundError(f"no webhook with id '{webhook_id}'")

    async def page(self, query: DeliveryQuery) -> tuple[list[DeliveryRecord], int]:
        """The deliveries matching ``query``, newest first, and how many match in all."""
        return await self._store.delivery_page(
            status=None if query.status is None else query.status.value,
            subscription_id=query.webhook_id,
            since=query.since,
            until=query.until,
            offset=query.page.offset,
            limit=query.page.limit,
        )

    async def detail(self, delivery_id: int) -> tuple[DeliveryRecord, list[AttemptRecord]]:
        """One delivery and its attempt log."""
        record = await self._delivery(delivery_id)
        return record, await self._store.attempts(delivery_id)

    async def retry(self, delivery_id: int) -> DeliveryRecord:
        """Make a delivery due now; a finished one gets a fresh retry schedule."""
        self._check_id(delivery_id)
        if not await self._store.retry_delivery(delivery_id, self._clock()):
            raise NotFoundError(f"no delivery {delivery_id}")
        self._wake()
        log.info("delivery_retry_requested", delivery=delivery_id)
        return await self._delivery(delivery_id)

    async def replay(self, webhook_id: str, body: ReplayBody) -> ReplayResult:
        """Re-queue every delivery of a webhook that failed in the window."""
        self.known(webhook_id)
        now = self._clock()
        until = body.until or datetime.fromtimestamp(now, UTC)
        try:
            window = (timestamp(body.since), timestamp(until))
        except (OverflowError, ValueError):
            raise InvalidError(
                "the request body is invalid", [FieldError("since", "is out of range")]
            ) from None
        count = await self._store.replay(webhook_id, *window, now)
        if count:
            self._wake()
        log.info("deliveries_replayed", subscription=webhook_id, count=count)
        return ReplayResult(webhook_id=webhook_id, since=body.since, until=until, requeued=count)

    async def test_fire(self, webhook_id: str) -> TestResult:
        """Send a signed sample event to the webhook now and report the answer."""
        sub = self._runnable(webhook_id)
        event, result = await send_test(self._session, sub, self._allow_networks)
        log.info(
            "webhook_test_sent",
            subscription=webhook_id,
            request_id=result.request_id,
            status=result.status,
            error=None if result.ok else result.describe(),
        )
        return test_result(webhook_id, event, result)

    def _runnable(self, webhook_id: str) -> Subscription:
        entry = self._registry.entry(webhook_id)
        if entry is None:
            raise NotFoundError(f"no webhook with id '{webhook_id}'")
        if entry.subscription is None or entry.problem is not None:
            raise ConflictError(f"webhook '{webhook_id}' cannot run: {entry.problem}")
        return entry.subscription

    async def _delivery(self, delivery_id: int) -> DeliveryRecord:
        self._check_id(delivery_id)
        record = await self._store.delivery(delivery_id)
        if record is None:
            raise NotFoundError(f"no delivery {delivery_id}")
        return record

    @staticmethod
    def _check_id(delivery_id: int) -> None:
        if not 0 < delivery_id <= MAX_DELIVERY_ID:
            raise NotFoundError(f"no delivery {delivery_id}")
