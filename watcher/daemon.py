"""Wiring and lifecycle: open resources, run one follower per chain, the delivery worker and
the attempt-log pruner.

Resources are opened on an AsyncExitStack and the loops run as named tasks of one TaskGroup,
so a crash in any of them cancels the others visibly. SIGTERM and SIGINT set the stop event:
followers stop polling, the delivery worker stops claiming and drains what is in flight
within ``delivery.drain_timeout_s``, and the store is closed last.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import aiohttp
import structlog

from watcher import __version__
from watcher.attempts import webhook_session
from watcher.config import WatcherConfig
from watcher.delivery import DeliveryWorker
from watcher.gctuning import tune_for_daemon
from watcher.outbox import OutboxPlanner
from watcher.retention import AttemptLogPruner
from watcher.store import SQLiteStore
from watcher.wiring import AnyFollower, build_follower

log = structlog.get_logger()


@dataclass
class Daemon:
    """One running watcher: what ``watcher run`` starts."""

    config: WatcherConfig
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    followers: list[AnyFollower] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Run until :attr:`stop` is set."""
        config = self.config
        tune_for_daemon()
        async with AsyncExitStack() as stack:
            store = await SQLiteStore.open(
                config.store.path, planner=OutboxPlanner(config.subscriptions)
            )
            stack.push_async_callback(store.close)
            await store.sync_subscriptions([s.id for s in config.subscriptions], time.time())
            released = await store.release_leases()
            if released:
                log.info("delivery_leases_released", count=released)
            rpc = await stack.enter_async_context(aiohttp.ClientSession())
            delivery = config.delivery
            hooks = await stack.enter_async_context(
                webhook_session(delivery.allow_networks, delivery.concurrency)
            )
            worker = DeliveryWorker(
                store=store, subscriptions=config.subscriptions, session=hooks, config=delivery
            )
            pruner = AttemptLogPruner(store, delivery.attempt_log_retention_days * 86400.0)
            self.followers = [
                build_follower(
                    chain,
                    config.subscriptions,
                    store,
                    rpc,
                    worker.notify,
                    networks=config.networks.get(chain.name, ()),
                )
                for chain in config.chains
            ]
            log.info(
                "watcher_started",
                version=__version__,
                store=str(store.path),
                chains=[c.name for c in config.chains],
                subscriptions=len(config.subscriptions),
            )
            self.ready.set()
            async with asyncio.TaskGroup() as tasks:
                for follower in self.followers:
                    tasks.create_task(follower.run(self.stop), name=f"follow:{follower.chain}")
                tasks.create_task(worker.run(self.stop), name="deliver")
                tasks.create_task(pruner.run(self.stop), name="prune-attempts")
        log.info("watcher_stopped")


async def serve(config: WatcherConfig) -> None:
    """Run a daemon in the foreground until SIGTERM or SIGINT."""
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, daemon.stop, sig)
    try:
        await daemon.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("watcher_stopping", signal=sig.name)
    stop.set()
