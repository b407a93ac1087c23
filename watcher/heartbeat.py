"""Keeps systemd informed: READY once every chain answered, STATUS lines, WATCHDOG pings.

The loop runs as a task of the daemon's task group, so a ping proves that the event loop
itself is not stuck: a blocked loop misses ``WatchdogSec=`` and systemd restarts the
service. Readiness for systemd means the store is open and every chain's node confirmed
its chain id; catching up on old blocks happens afterwards and shows in ``STATUS=``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from watcher.pacing import wait_or_stop
from watcher.sdnotify import Notifier

STATUS_INTERVAL_S = 1.0


class ChainView(Protocol):
    """What the heartbeat reads from a chain follower."""

    @property
    def chain(self) -> str: ...

    @property
    def connected_at(self) -> float | None: ...

    @property
    def head_seen(self) -> int | None: ...

    @property
    def processed_height(self) -> int | None: ...


def status_line(chains: Sequence[ChainView]) -> str:
    """``mainnet: head 19000000, processed 18999998; sepolia: connecting``."""
    parts = []
    for c in chains:
        if c.connected_at is None:
            parts.append(f"{c.chain}: connecting")
        else:
            parts.append(f"{c.chain}: head {c.head_seen}, processed {c.processed_height}")
    return "; ".join(parts) or "no chains"


class Heartbeat:
    """Sends READY=1, STATUS= and WATCHDOG=1 from the main loop; STOPPING=1 at the end."""

    def __init__(self, notifier: Notifier, chains: Sequence[ChainView]) -> None:
        self._notifier = notifier
        self._chains = chains
        self._ready_sent = False
        self._status: str | None = None
        watchdog = notifier.watchdog_interval_s
        self._interval_s = min(STATUS_INTERVAL_S, watchdog / 2) if watchdog else STATUS_INTERVAL_S

    @property
    def ready_sent(self) -> bool:
        return self._ready_sent

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until ``stop`` is set."""
        try:
            while not stop.is_set():
                self.beat()
                await wait_or_stop(stop, self._interval_s)
        finally:
            self._notifier.stopping()

    def beat(self) -> None:
        """One beat: READY=1 the first time everything is up, STATUS= when it changed."""
        status = status_line(self._chains)
        if not self._ready_sent and all(c.connected_at is not None for c in self._chains):
            self._notifier.ready(status)
            self._ready_sent = True
        elif status != self._status:
            self._notifier.status(status)
        self._status = status
        if self._notifier.watchdog_interval_s:
            self._notifier.watchdog()

    def reloading(self) -> None:
        self._notifier.reloading()

    def reloaded(self, summary: str) -> None:
        """A reload finished: READY=1 again (unless start-up itself is not finished)."""
        status = f"{status_line(self._chains)}; {summary}"
        if self._ready_sent:
            self._notifier.ready(status)
        else:
            self._notifier.status(status)
