"""Crash safety: ``kill -9`` the daemon at random moments while transactions flow; nothing is lost.

Every transfer to the watched address must reach both subscriptions as ``tx.mined`` and
``tx.confirmed``, verified by an independent Standard Webhooks implementation; duplicates
are allowed (that is what ``webhook-id`` is for) and their number is printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import SECRET, SECRET_ENV, Harness, wait_until
from watcher.devchain import Anvil, free_port

KILLS = 20


class CountingReceiver:
    """Verifies each webhook and counts (subscription, type, tx) and webhook ids."""

    def __init__(self, rng: random.Random) -> None:
        self.port = free_port()
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.ids: Counter[tuple[str, str]] = Counter()
        self.rejected = 0
        self._rng = rng
        self._webhook = Webhook(SECRET)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(self._rng.uniform(0, 0.03))  # deliberate: keep requests in flight
        try:
            payload = self._webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401)
        name = request.match_info["name"]
        self.seen[(name, payload["type"], payload["data"]["tx_hash"])] += 1
        self.ids[(name, request.headers["webhook-id"])] += 1
        return web.Response(status=204)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CountingReceiver]:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@asynccontextmanager
async def daemon_process(
    config: Path,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, asyncio.Event]]:
    """``watcher run`` in a subprocess; the event is set once it logged ``watcher_started``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "run", "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **SECRET_ENV},
    )  # fmt: skip
    started = asyncio.Event()

    async def drain() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            if b"watcher_started" in line:
                started.set()

    reader = asyncio.create_task(drain())
    try:
        yield proc, started
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await reader


async def test_kill_9_at_random_moments_loses_no_webhook(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    seed = int(time.time())
    rng = random.Random(seed)
    accounts = await anvil.accounts()
    watched = accounts[1]
    receiver = CountingReceiver(rng)
    sent: list[str] = []
    stop_traffic = asyncio.Event()

    async def traffic() -> None:
        while not stop_traffic.is_set():
            sent.append(await anvil.send(accounts[0], watched, 1))
            await anvil.send(accounts[2], accounts[3], 1)  # unwatched: nothing expected
            await anvil.mine()
            await asyncio.sleep(0.05)  # deliberate: the chain's block time

    async with receiver.running():
        config = harness.write_config(
            anvil.rpc_url,
            [
                {
                    "id": name,
                    "addresses": [watched],
                    "url": receiver.url(name),
                    "confirmations": 2,
                    "events": ["tx.mined", "tx.confirmed"],
                }
                for name in ("a", "b")
            ],
        )
        mover = asyncio.create_task(traffic())
        try:
            for _ in range(KILLS):
                async with daemon_process(config) as (proc, started):
                    await asyncio.wait_for(started.wait(), timeout=30)
                    await asyncio.sleep(rng.uniform(0, 0.6))  # deliberate: a random moment
                    proc.send_signal(signal.SIGKILL)
        finally:
            stop_traffic.set()
            await mover
        await anvil.mine(3)  # let the last transfers reach their confirmation depth

        async with harness.running(config), harness.store() as store:

            async def settled() -> bool:
                expected = {(n, k, tx) for n in ("a", "b") for k in ("tx.mined", "tx.confirmed")
                            for tx in sent}  # fmt: skip
                return expected <= receiver.seen.keys() and not await store.deliveries("pending")

            await wait_until(settled, timeout=60, what="every webhook after the last restart")
            rows = await store.deliveries()

    assert receiver.rejected == 0
    assert all(r.status == "succeeded" and not r.leased for r in rows)
    assert {(r.subscription_id, r.event_id) for r in rows} == set(receiver.ids)
    assert len(rows) == 4 * len(sent)
    duplicates = sum(receiver.ids.values()) - len(receiver.ids)
    print(
        f"\ncrash test (seed {seed}): {KILLS} kill -9, {len(sent)} transfers, "
        f"{len(rows)} deliveries, {duplicates} duplicate webhook(s) received"
    )
