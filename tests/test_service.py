"""The daemon as operators run it: a subprocess, stopped by signals; and the demo command."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.conftest import SECRET, SECRET_ENV, Harness, wait_until
from tests.receiver import Receiver
from watcher.cli import EXIT_OK
from watcher.devchain import Anvil


@asynccontextmanager
async def daemon_process(config: str) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {**os.environ, **SECRET_ENV}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "run", "-c", config,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_until(stream: asyncio.StreamReader, marker: str, log: list[str]) -> None:
    """Collect log lines until one contains ``marker``."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), timeout=30)).decode()
        if not line:
            raise AssertionError(f"log ended before {marker!r}:\n{''.join(log)}")
        log.append(line)
        if marker in line:
            return


async def test_sigterm_lets_the_in_flight_delivery_finish_and_exits_0(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    receiver.delay_s = 1.0
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "slow", "addresses": [accounts[1]], "url": receiver.url, "events": ["tx.mined"]}],
    )
    log: list[str] = []
    async with daemon_process(str(config)) as proc:
        assert proc.stderr is not None
        await read_until(proc.stderr, "chain_ready", log)
        tx = await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: receiver.in_flight == 1, what="the delivery to be in flight")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
        log.append((await proc.stderr.read()).decode())
    text = "".join(log)
    assert code == EXIT_OK, text
    assert [r.tx_hash for r in receiver.received] == [tx]
    assert "watcher_stopped" in text
    assert SECRET not in text
    async with harness.store() as store:
        (row,) = await store.deliveries()
    assert row.status == "succeeded"


async def test_demo_shows_signed_webhooks_arriving() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "demo", "--max-webhooks", "6",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == EXIT_OK, err.decode()
    assert text.count("signature ok") == 6
    assert "tx.mined" in text
    assert "tx.confirmed" in text
    assert "demo finished: 6 verified webhook(s)" in text
