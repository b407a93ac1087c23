"""Test kit for delivery: receivers that misbehave on purpose, an injected clock, a real outbox.

:class:`ScriptedReceiver` is a real aiohttp server on loopback; each request takes the next
:data:`Step` of its script (the last one repeats): answer with a status, hang, reset the
connection, redirect, or send a huge body. :class:`Outbox` is a real SQLite store and a real
:class:`~watcher.delivery.DeliveryWorker` driven step by step with ``run_once`` under a
:class:`FakeClock`, so retry schedules of days are checked in milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from watcher.attempts import webhook_session
from watcher.config import DeliveryConfig
from watcher.delivery import DeliveryWorker
from watcher.devchain import free_port
from watcher.models import (
    BlockOutcome,
    BlockRef,
    DeliverySettings,
    Event,
    EventType,
    RetryPolicy,
    Subscription,
)
from watcher.outbox import OutboxPlanner
from watcher.store import DeliveryRecord, SQLiteStore

LOOPBACK = "127.0.0.1/32"
KEY = b"delivery-test-key-0123456789"
WATCHED = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


class FakeClock:
    """Wall-clock time that moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Reply:
    """Answer with this status, headers and body."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Hang:
    """Take this long before answering 200 (longer than the client's timeout)."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Drop the connection with a TCP reset instead of answering."""


Step = Reply | Hang | Reset


@dataclass(frozen=True)
class Request:
    """One request the receiver saw."""

    path: str
    headers: CIMultiDict[str]
    body: bytes
    at: float


@dataclass
class ScriptedReceiver:
    """An aiohttp server answering each request with the next step of :attr:`script`."""

    script: list[Step] = field(default_factory=lambda: [Reply()])
    port: int = field(default_factory=free_port)
    check: Callable[[Request], bool] | None = None
    requests: list[Request] = field(default_factory=list)
    rejected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Request(request.path, CIMultiDict(request.headers), body, time.time())
        if self.check is not None and not self.check(seen):
            self.rejected += 1
            return web.Response(status=401, text="bad signature")
        self.requests.append(seen)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if isinstance(step, Hang):
                await asyncio.sleep(step.seconds)  # deliberate: a receiver slower than the timeout
                return web.Response(status=200)
            if isinstance(step, Reset):
                transport = request.transport
                assert transport is not None
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
                raise asyncio.CancelledError  # nothing more to send on this connection
            return web.Response(status=step.status, headers=step.headers, body=step.body)
        finally:
            self.in_flight -= 1

    def bodies(self, path: str | None = None) -> list[bytes]:
        return [r.body for r in self.requests if path is None or r.path == path]


@asynccontextmanager
async def scripted(
    *steps: Step, check: Callable[[Request], bool] | None = None
) -> AsyncIterator[ScriptedReceiver]:
    """A started :class:`ScriptedReceiver` (default: always 204), rejecting what fails ``check``."""
    receiver = ScriptedReceiver(list(steps) or [Reply()], check=check)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def subscription(
    url: str,
    sub_id: str = "sub",
    *,
    secret: bytes = KEY,
    policy: RetryPolicy | None = None,
    **settings: Any,
) -> Subscription:
    """A subscription for ``url`` with delivery settings overridden by keyword."""
    delivery = DeliverySettings(**settings)
    if policy is not None:
        delivery = dataclasses.replace(delivery, policy=policy)
    return Subscription(
        id=sub_id,
        chain="dev",
        addresses=frozenset({WATCHED}),
        events=frozenset(EventType),
        confirmations=1,
        url=url,
        secret=secret,
        delivery=delivery,
    )


def sample_event(sub_id: str, n: int, created_at: float) -> Event:
    """A ``tx.mined`` event numbered ``n``, shaped like the tracker's."""
    tx_hash = f"0x{n:064x}"
    block_hash = f"0x{n + 1:064x}"
    return Event(
        id=f"evt_{sub_id}_{n}",
        type=EventType.TX_MINED,
        chain="dev",
        subscription_id=sub_id,
        tx_hash=tx_hash,
        block_number=n,
        block_hash=block_hash,
        created_at=created_at,
        data={
            "tx_hash": tx_hash,
            "block_number": n,
            "block_hash": block_hash,
            "confirmations": 1,
            "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "value": "1",
            "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "direction": "in",
            "transaction": {"hash": tx_hash, "blockNumber": hex(n), "value": "0x1"},
        },
    )


class Outbox:
    """A real store and worker for a set of subscriptions, with an injected clock."""

    def __init__(
        self, store: SQLiteStore, worker: DeliveryWorker, clock: FakeClock, subs: list[Subscription]
    ) -> None:
        self.store = store
        self.worker = worker
        self.clock = clock
        self.subs = subs
        self._events = 0

    async def add_events(self, sub_id: str, count: int = 1) -> list[str]:
        """Record ``count`` new events for ``sub_id`` in one block; returns their ids."""
        state = await self.store.chain_state("dev")
        number = state.cursor.number + 1 if state.cursor else 0
        parent = state.cursor.hash if state.cursor else "0x" + "00" * 32
        events = []
        for _ in range(count):
            self._events += 1
            events.append(sample_event(sub_id, self._events, self.clock()))
        block = BlockRef(number, f"0x{number + 1:064x}")
        await self.store.record_blocks(
            "dev", state.cursor, [BlockOutcome(block, parent, tuple(events), (), ())]
        )
        return [e.id for e in events]

    async def rows(self, sub_id: str | None = None) -> list[DeliveryRecord]:
        return await self.store.deliveries(subscription_id=sub_id)

    async def row(self, delivery_id: int = 1) -> DeliveryRecord:
        record = await self.store.delivery(delivery_id)
        assert record is not None
        return record


@asynccontextmanager
async def outbox(
    tmp_path: Path,
    subs: Sequence[Subscription],
    *,
    clock: FakeClock | None = None,
    rand: Callable[[], float] = lambda: 0.5,
    **config: Any,
) -> AsyncIterator[Outbox]:
    """An :class:`Outbox` on a fresh store file; ``config`` overrides DeliveryConfig keys."""
    clock = clock or FakeClock()
    delivery = DeliveryConfig.model_validate({"allow_networks": [LOOPBACK], **config})
    store = await SQLiteStore.open(tmp_path / "outbox.db", planner=OutboxPlanner(subs))
    await store.sync_subscriptions([s.id for s in subs], clock())
    session: aiohttp.ClientSession = webhook_session(delivery.allow_networks, delivery.concurrency)
    try:
        worker = DeliveryWorker(
            store=store,
            subscriptions=subs,
            session=session,
            config=delivery,
            clock=clock,
            rand=rand,
        )
        yield Outbox(store, worker, clock, list(subs))
    finally:
        await session.close()
        await store.close()
