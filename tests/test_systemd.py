"""Running under systemd: the unit passes systemd-analyze, and sd_notify messages arrive."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.conftest import SECRET_ENV, Harness
from tests.receiver import Receiver
from watcher.cli import EXIT_CONFIG, EXIT_OK
from watcher.devchain import Anvil
from watcher.sdnotify import Notifier

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "watcher.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as shipped, except that ExecStart names this checkout's watcher binary.

    ``verify`` insists that the binary exists, and /usr/local/bin/watcher (where ``pip
    install`` puts it) does not on a development machine.
    """
    assert SYSTEMD_ANALYZE is not None
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert f"RestartPreventExitStatus={EXIT_CONFIG}" in text
    watcher = Path(sys.executable).with_name("watcher")
    unit = tmp_path / "watcher.service"
    unit.write_text(text.replace("/usr/local/bin/watcher", str(watcher)))
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_stop_timeout_exceeds_the_drain_bound() -> None:
    from watcher.config import DeliveryConfig
    from watcher.listen import SHUTDOWN_TIMEOUT_S

    values = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    drain = DeliveryConfig().drain_timeout_s + SHUTDOWN_TIMEOUT_S
    assert float(values["TimeoutStopSec"]) > drain


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket like systemd's, at a short path (AF_UNIX paths are limited)."""
    folder = tempfile.mkdtemp(prefix="wn-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


class Messages:
    """What arrived on the notify socket, one dict of assignments per datagram."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received: list[dict[str, str]] = []

    async def until(
        self, key: str, value: str | None = None, *, after: int = 0, timeout: float = 30
    ) -> dict[str, str]:
        """The first datagram from index ``after`` on (received or arriving) assigning ``key``."""
        seen = after
        async with asyncio.timeout(timeout):
            while True:
                for message in self.received[seen:]:
                    if key in message and (value is None or message[key] == value):
                        return message
                seen = max(seen, len(self.received))
                data = await asyncio.get_running_loop().sock_recv(self._sock, 4096)
                text = data.decode()
                self.received.append(dict(line.split("=", 1) for line in text.splitlines()))


async def test_sd_notify_ready_status_watchdog_reloading_and_stopping(
    anvil: Anvil,
    receiver: Receiver,
    harness: Harness,
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    accounts = await anvil.accounts()
    await anvil.mine(2)
    config = harness.write_config(
        anvil.rpc_url, [{"id": "shop", "addresses": [accounts[1]], "url": receiver.url}]
    )
    env = {**os.environ, **SECRET_ENV, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"}
    messages = Messages(sock)
    log = harness.tmp_path / "daemon.log"
    async with _process(str(config), env, log) as proc:
        ready = await messages.until("READY", "1")
        assert ready["STATUS"] == "dev: head 2, processed 2"
        await messages.until("WATCHDOG", "1")

        proc.send_signal(signal.SIGHUP)
        reloading = await messages.until("RELOADING", "1")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        after = messages.received.index(reloading)
        again = await messages.until("READY", "1", after=after)
        assert again["STATUS"] == "dev: head 2, processed 2; reloaded"

        proc.send_signal(signal.SIGTERM)
        await messages.until("STOPPING", "1", after=after)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == EXIT_OK, log.read_text()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready("ok")  # does nothing, raises nothing


def test_an_abstract_notify_socket_is_reached(tmp_path: Path) -> None:
    name = f"watcher-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "x"})
        assert notifier.watchdog_interval_s is None
        notifier.status("head 1\nprocessed 1")
        assert sock.recv(100) == b"STATUS=head 1 processed 1"
        notifier.close()


def test_a_watchdog_meant_for_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environment(env).watchdog_interval_s is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier.from_environment(env).watchdog_interval_s == 1.0


@asynccontextmanager
async def _process(
    config: str, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watcher", "run", "-c", config,
            stdout=asyncio.subprocess.DEVNULL, stderr=out, env=env,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
