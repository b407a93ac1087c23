"""Shared fixtures: real anvil nodes, real receivers, real SQLite files, a real daemon."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from tests.bitcoin_fixtures import bcoin, bsv, funded_bcoin, funded_bsv  # noqa: F401
from tests.receiver import Receiver
from watcher.config import WatcherConfig, load_config
from watcher.daemon import Daemon
from watcher.devchain import Anvil, find_anvil
from watcher.store import SQLiteStore

SECRET = "whsec_" + base64.b64encode(b"test-secret-0123456789abcdef").decode()
SECRET_ENV = {"WATCHER_TEST_SECRET": SECRET}


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 20.0, what: str = ""
) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)  # poll


def reset_logging() -> None:
    """Undo :func:`watcher.logs.configure_logging`: structlog's defaults, no root handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_StructlogHandler":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _logging_reset_after_each_test() -> Iterator[None]:
    """Restore logging after each test.

    A test that runs the CLI in-process points logging at its captured stream, which pytest
    closes when the test ends; later tests must not write into it.
    """
    yield
    reset_logging()


@pytest.fixture
async def anvil() -> AsyncIterator[Anvil]:
    """A fresh anvil that mines only when told to."""
    async with Anvil(find_anvil()) as node:
        yield node


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running webhook receiver that verifies signatures with :data:`SECRET`."""
    r = Receiver(SECRET)
    await r.start()
    yield r
    await r.stop()


class Harness:
    """Writes configuration files and runs daemons in-process on one store file."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store_path = tmp_path / "watcher.db"
        # The environment configuration files are interpolated from.
        self.environ: dict[str, str] = dict(SECRET_ENV)

    def write_config(
        self,
        rpc_url: str,
        subscriptions: list[dict[str, Any]],
        *,
        chain: dict[str, Any] | None = None,
        delivery: dict[str, Any] | None = None,
        name: str = "watcher.yaml",
        sections: dict[str, Any] | None = None,
    ) -> Path:
        doc = {
            "store": {"path": str(self.store_path)},
            "log": {"level": "debug", "format": "json"},
            "delivery": {
                "allow_networks": ["127.0.0.1/32"],
                "poll_interval_s": 0.05,
                "retry_schedule_s": [0.2] * 50,
                "slow_down_min_s": 0.2,
                **(delivery or {}),
            },
            "chains": [
                {
                    "name": "dev",
                    "kind": "ethereum",
                    "rpc_url": rpc_url,
                    "poll_interval_s": 0.05,
                    "start": 0,
                    "confirmations": 3,
                    **(chain or {}),
                }
            ],
            "subscriptions": [
                {"chain": "dev", "secret": "${WATCHER_TEST_SECRET}", **sub} for sub in subscriptions
            ],
            **(sections or {}),
        }
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def load(self, path: Path) -> WatcherConfig:
        return load_config(path, environ=self.environ)

    @asynccontextmanager
    async def running(self, path: Path) -> AsyncIterator[Daemon]:
        """Run a daemon on the config at ``path`` until the block ends, then stop it cleanly."""
        daemon = Daemon(self.load(path), loader=self.load)
        task = asyncio.create_task(daemon.run(), name="daemon-under-test")
        ready = asyncio.create_task(daemon.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            await task  # raises the start-up error
        try:
            yield daemon
        finally:
            daemon.stop.set()
            await task

    @asynccontextmanager
    async def store(self) -> AsyncIterator[SQLiteStore]:
        """The daemon's store file, opened separately (as an operator's tool would)."""
        store = await SQLiteStore.open(self.store_path)
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


class Session:
    """A daemon under test that can be restarted in the middle of a scenario."""

    def __init__(self, harness: Harness, config: Path) -> None:
        self.harness = harness
        self.config = config
        self._stack = AsyncExitStack()
        self.daemon: Daemon | None = None
        self.store: SQLiteStore | None = None

    async def start(self) -> None:
        self.daemon = await self._stack.enter_async_context(self.harness.running(self.config))
        self.store = await self._stack.enter_async_context(self.harness.store())

    async def stop(self) -> None:
        await self._stack.aclose()
        self._stack = AsyncExitStack()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def settle(self) -> None:
        """Wait for two full polls after now and an empty outbox."""
        assert self.daemon is not None
        assert self.store is not None
        follower = self.daemon.followers[0]
        polls = follower.polls
        store = self.store
        await wait_until(lambda: follower.polls >= polls + 2, what="two polls")

        async def drained() -> bool:
            return not await store.deliveries("pending")

        await wait_until(drained, what="outbox drained")


@pytest.fixture
async def session_factory(harness: Harness) -> AsyncIterator[Any]:
    sessions: list[Session] = []

    async def make(config: Path) -> Session:
        session = Session(harness, config)
        await session.start()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.stop()
