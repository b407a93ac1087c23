"""systemd's notification protocol: READY, STATUS, WATCHDOG, RELOADING and STOPPING.

Under ``Type=notify`` systemd passes a datagram socket in ``$NOTIFY_SOCKET`` and reads
newline-separated ``KEY=VALUE`` assignments from it (sd_notify(3)). Outside systemd the
variable is unset and every call does nothing, so the daemon needs no special mode.
``$WATCHDOG_USEC`` (with ``WatchdogSec=``) says how often ``WATCHDOG=1`` must arrive.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger()


class Notifier:
    """Sends notifications to the service manager, if there is one.

    Sending never blocks and never raises: a service manager that went away must not take
    the daemon down with it (a failure is logged once).
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(address) if address else None
        self.watchdog_interval_s = watchdog_usec / 1_000_000 if watchdog_usec else None
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd set up for this process (a silent one outside systemd)."""
        env = os.environ if environ is None else environ
        watchdog: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            watchdog = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str | None = None) -> None:
        """Start-up (or a reload) is complete."""
        self._send("READY=1", status)

    def status(self, status: str) -> None:
        """A one-line status shown by ``systemctl status``."""
        self._send(None, status)

    def watchdog(self) -> None:
        """The main loop is alive."""
        self._send("WATCHDOG=1", None)

    def reloading(self) -> None:
        """A configuration reload started; :meth:`ready` follows when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}", None)

    def stopping(self) -> None:
        """Shutdown started."""
        self._send("STOPPING=1", None)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, state: str | None, status: str | None) -> None:
        if self._address is None:
            return
        lines = [state] if state else []
        if status is not None:
            lines.append("STATUS=" + status.replace("\n", " "))
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify_failed", error=str(exc))
            self._failed = True


def _socket_address(address: str) -> str | bytes:
    """``@name`` is an abstract socket (a leading NUL byte); anything else a path."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address
