"""``GET /metrics``, ``/healthz`` and ``/readyz``: the listener monitoring systems scrape.

It needs no token and may bind apart from the admin API. ``/healthz`` answers while the
process serves requests at all. ``/readyz`` answers 503 with the reasons when the store
does not accept a write, a chain was not polled successfully within the configured age,
or a chain's lag exceeds the configured bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from watcher.config import MetricsConfig
from watcher.errors import StoreError
from watcher.heartbeat import ChainView
from watcher.metrics import Metrics

log = structlog.get_logger()

# How long the readiness probe and the queue gauges may wait for the store.
STORE_CHECK_TIMEOUT_S = 2.0


class ChainProgress(ChainView, Protocol):
    """What readiness reads from a chain follower."""

    @property
    def last_poll_at(self) -> float | None: ...


class HealthStore(Protocol):
    """What the health listener needs from the store."""

    async def probe_write(self, now: float) -> None: ...

    async def queue_depths(self, now: float) -> list[tuple[str, str, int]]: ...


@dataclass(frozen=True, slots=True)
class ReadinessBounds:
    """When a chain stops counting as ready."""

    max_lag_blocks: int
    max_poll_age_s: float


def chain_problems(
    chains: Sequence[ChainProgress], bounds: ReadinessBounds, now: float
) -> list[str]:
    """Why the chains are not ready (empty when they are); pure."""
    problems: list[str] = []
    for c in chains:
        if c.connected_at is None or c.last_poll_at is None:
            problems.append(f"chain {c.chain}: not polled successfully yet")
            continue
        age = now - c.last_poll_at
        if age > bounds.max_poll_age_s:
            problems.append(
                f"chain {c.chain}: last successful poll {age:.1f}s ago "
                f"(bound {bounds.max_poll_age_s:g}s)"
            )
        if c.head_seen is not None and c.processed_height is not None:
            lag = c.head_seen - c.processed_height
            if lag > bounds.max_lag_blocks:
                problems.append(
                    f"chain {c.chain}: {lag} blocks behind the node (bound {bounds.max_lag_blocks})"
                )
    return problems


class HealthChecks:
    """Readiness of a running daemon, and the store-backed gauges refreshed per scrape."""

    def __init__(
        self,
        store: HealthStore,
        chains: Sequence[ChainProgress],
        metrics: Metrics,
        config: MetricsConfig,
        clock: Callable[[], float] = time.time,
        store_timeout_s: float = STORE_CHECK_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._chains = chains
        self._metrics = metrics
        self._bounds = ReadinessBounds(config.ready_max_lag_blocks, config.ready_max_poll_age_s)
        self._clock = clock
        self._store_timeout_s = store_timeout_s

    async def problems(self) -> list[str]:
        """Everything that keeps the daemon from being ready."""
        problems: list[str] = []
        try:
            async with asyncio.timeout(self._store_timeout_s):
                await self._store.probe_write(self._clock())
        except StoreError as exc:
            problems.append(f"store: {exc}")
        except TimeoutError:
            problems.append(f"store: no write completed within {self._store_timeout_s:g}s")
        problems.extend(chain_problems(self._chains, self._bounds, self._clock()))
        return problems

    async def refresh_queue(self) -> None:
        """Read the outbox's queue depths into the gauges (kept as they were on failure)."""
        try:
            async with asyncio.timeout(self._store_timeout_s):
                depths = await self._store.queue_depths(self._clock())
        except TimeoutError:
            log.warning("metrics_queue_timeout", timeout_s=self._store_timeout_s)
            return
        self._metrics.set_queue(depths)


def health_app(checks: HealthChecks, metrics: Metrics) -> web.Application:
    """The aiohttp application of the metrics listener."""

    async def get_metrics(request: web.Request) -> web.Response:
        await checks.refresh_queue()
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        problems = await checks.problems()
        if problems:
            return web.json_response({"status": "not ready", "reasons": problems}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
