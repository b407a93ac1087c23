"""A node run as a child process on loopback ports: started until it answers, stopped reliably.

The dev chains (anvil, bcoin, bitcoind) and the benchmark's replay server all run this way.
Their ports were free a moment before the process binds them, so another process may take
one first: the process then exits and is started again on fresh ports. Readiness is polled
until the node answers, never a fixed sleep, and a stop gives the process a grace period
before it is killed, so no node outlives a test, a demo or a benchmark.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import ClassVar, Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeProcess:
    """Base of a node in a child process; ``async with`` starts it and always stops it.

    A subclass starts the process on fresh ports in :meth:`_spawn`, raises one of
    :attr:`not_ready_errors` from :meth:`_ready` until the node answers, and says in
    :meth:`_start_error` why no attempt succeeded. What the process needs besides (a folder,
    an HTTP session) the subclass prepares before ``super().start()`` and releases in its
    :meth:`stop`, which awaits ``super().stop()``.
    """

    startup_timeout_s: ClassVar[float] = 20.0
    start_attempts: ClassVar[int] = 5
    poll_interval_s: ClassVar[float] = 0.02
    stop_timeout_s: ClassVar[float] = 5.0
    # What _ready raises while the node does not answer yet.
    not_ready_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the process on fresh ports until it answers; on failure, stop and raise.

        Each attempt waits up to :attr:`startup_timeout_s`; a process that exits early (most
        likely because a port was taken) or does not answer in time is stopped and the next
        attempt takes fresh ports.
        """
        exit_code: int | None = None
        for _ in range(self.start_attempts):
            self._process = process = await self._spawn()
            if await self._wait_ready(process):
                return
            exit_code = process.returncode
            await self._terminate()
        error = self._start_error(exit_code)
        await self.stop()
        raise error

    async def stop(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL if it is still there after the grace period."""
        await self._terminate()

    async def _spawn(self) -> asyncio.subprocess.Process:
        """Pick the ports of this attempt and start the process on them."""
        raise NotImplementedError

    async def _ready(self) -> None:
        """Return once the node answers; raise one of :attr:`not_ready_errors` until then."""
        raise NotImplementedError

    def _start_error(self, exit_code: int | None) -> Exception:
        """The error for a start whose attempts all failed; ``exit_code`` of the last one."""
        raise NotImplementedError

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if process.returncode is not None:
                return False
            try:
                await self._ready()
                return True
            except self.not_ready_errors:
                await asyncio.sleep(self.poll_interval_s)
        return False

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=self.stop_timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
