"""Serving an aiohttp application on a TCP listener for as long as an exit stack is open."""

from __future__ import annotations

import ipaddress
from contextlib import AsyncExitStack

from aiohttp import web

from watcher.errors import WatcherError

# How long open connections may take to finish their request when the daemon stops.
SHUTDOWN_TIMEOUT_S = 5.0


class ListenError(WatcherError):
    """A listener could not bind its address."""


async def serve_app(
    stack: AsyncExitStack, app: web.Application, host: str, port: int, name: str
) -> str:
    """Start serving ``app`` on ``host:port`` until ``stack`` closes; returns its base URL.

    Port 0 takes a free port; the URL names the port actually bound.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        raise ListenError(f"{name}: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    return f"http://{shown}:{bound}"
