"""A real webhook receiver on loopback for the tests.

It verifies every request with the `standardwebhooks` package (an independent
implementation, not the daemon's own signing code) and records what it accepted. Tests can
make it answer with another status or take it off the network entirely.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from watcher.devchain import free_port


@dataclass(frozen=True)
class Received:
    """One accepted webhook."""

    webhook_id: str
    payload: dict[str, Any]
    body: bytes

    @property
    def type(self) -> str:
        return str(self.payload["type"])

    @property
    def tx_hash(self) -> str:
        return str(self.payload["data"].get("tx_hash"))


@dataclass
class Receiver:
    """An aiohttp server that checks Standard Webhooks signatures with a given secret."""

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 204
    delay_s: float = 0.0
    in_flight: int = 0
    received: list[Received] = field(default_factory=list)
    rejected: int = 0
    requests: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        """Listen on :attr:`port` (the same port every time, so the daemon's URL stays valid)."""
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start` is called again."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.delay_s:
            self.in_flight += 1
            await asyncio.sleep(self.delay_s)  # deliberate: a slow receiver
            self.in_flight -= 1
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401, text="bad signature")
        if 200 <= self.status < 300:
            self.received.append(Received(request.headers["webhook-id"], payload, body))
        return web.Response(status=self.status)

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.type == event_type]

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]
