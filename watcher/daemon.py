"""Wiring and lifecycle: open resources, run one follower per chain, the delivery worker and
the attempt-log pruner.

Resources are opened on an AsyncExitStack and the loops run as named tasks of one TaskGroup,
so a crash in any of them cancels the others visibly. SIGTERM and SIGINT set the stop event:
followers stop polling, the delivery worker stops claiming and drains what is in flight
within ``delivery.drain_timeout_s``, the listeners close, and the store is closed last.
SIGHUP reloads the configuration file's subscriptions (see :mod:`watcher.reload`).

Subscriptions live in one :class:`~watcher.registry.SubscriptionRegistry`, filled from the
file and from the store's API-created subscriptions. The followers and the delivery worker
listen to it and the outbox planner reads it, so a subscription created through the admin
API or changed by a reload is matched, rendered in its format and delivered under its own
policy without a restart.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import structlog

from watcher import __version__
from watcher.api.app import build_app
from watcher.api.manager import Keys, WebhookManager
from watcher.api.operations import DeliveryOperations
from watcher.api.specs import Context, stored_entry
from watcher.attempts import webhook_session
from watcher.config import WatcherConfig, load_config
from watcher.delivery import DeliveryWorker
from watcher.errors import ConfigError
from watcher.gctuning import tune_for_daemon
from watcher.health import HealthChecks, health_app
from watcher.heartbeat import Heartbeat
from watcher.listen import serve_app
from watcher.metrics import Metrics
from watcher.outbox import OutboxPlanner
from watcher.registry import Change, Entry, SubscriptionRegistry, file_entries
from watcher.reload import Reloader, id_conflicts
from watcher.retention import AttemptLogPruner
from watcher.sdnotify import Notifier
from watcher.store import SQLiteStore
from watcher.wiring import AnyFollower, build_follower

log = structlog.get_logger()


@dataclass
class Daemon:
    """One running watcher: what ``watcher run`` starts.

    ``api_url`` and ``metrics_url`` are set once their listeners are bound (a configured
    port 0 takes a free one).
    """

    config: WatcherConfig
    loader: Callable[[Path], WatcherConfig] = load_config
    notifier: Notifier = field(default_factory=Notifier.from_environment)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    followers: list[AnyFollower] = field(default_factory=list)
    worker: DeliveryWorker | None = None
    registry: SubscriptionRegistry = field(default_factory=SubscriptionRegistry)
    metrics: Metrics = field(default_factory=Metrics)
    reloader: Reloader | None = None
    api_url: str | None = None
    metrics_url: str | None = None
    _reload_early: bool = False

    def request_reload(self) -> None:
        """Reload the configuration file's subscriptions (what SIGHUP does)."""
        if self.reloader is None:
            self._reload_early = True
        else:
            self.reloader.request()

    async def run(self) -> None:
        """Run until :attr:`stop` is set."""
        config = self.config
        tune_for_daemon()
        async with AsyncExitStack() as stack:
            stack.callback(self.notifier.close)
            store = await SQLiteStore.open(config.store.path, planner=OutboxPlanner(self.registry))
            stack.push_async_callback(store.close)
            released = await store.release_leases()
            if released:
                log.info("delivery_leases_released", count=released)
            delivery = config.delivery
            context = Context(
                chains={c.name: c for c in config.chains},
                allow_networks=delivery.allow_networks,
                delivery=delivery,
            )
            hooks = await stack.enter_async_context(
                webhook_session(delivery.allow_networks, delivery.concurrency)
            )
            self.worker = worker = DeliveryWorker(
                store=store, subscriptions=(), session=hooks, config=delivery, metrics=self.metrics
            )
            # Registered first: loading the subscriptions hands them to the worker.
            self.registry.listen(self._apply_change)
            manager = WebhookManager(
                store,
                self.registry,
                context,
                rotation_overlap_s=config.api.rotation_overlap_s if config.api else 0.0,
                on_enabled=worker.notify,
                on_disabled=worker.hold_back,
            )
            await self._load_subscriptions(store, manager, context)
            rpc = await stack.enter_async_context(aiohttp.ClientSession())
            pruner = AttemptLogPruner(store, delivery.attempt_log_retention_days * 86400.0)
            self.followers = [
                build_follower(
                    chain,
                    self.registry.for_chain(chain.name),
                    store,
                    rpc,
                    worker.notify,
                    networks=config.networks.get(chain.name, ()),
                    metrics=self.metrics,
                )
                for chain in config.chains
            ]
            heartbeat = Heartbeat(self.notifier, self.followers)
            self.reloader = Reloader(config, self.registry, self.loader, heartbeat)
            if config.api is not None:
                operations = DeliveryOperations(
                    store, self.registry, worker.notify, hooks, delivery.allow_networks
                )
                app = build_app(
                    manager, operations, config.api.token, context.chains, config.api.max_body_bytes
                )
                self.api_url = await serve_app(
                    stack, app, config.api.listen, config.api.port, "api"
                )
            if config.metrics is not None:
                checks = HealthChecks(store, self.followers, self.metrics, config.metrics)
                self.metrics_url = await serve_app(
                    stack,
                    health_app(checks, self.metrics),
                    str(config.metrics.listen),
                    config.metrics.port,
                    "metrics",
                )
            log.info(
                "watcher_started",
                version=__version__,
                store=str(store.path),
                chains=[c.name for c in config.chains],
                subscriptions=len(self.registry),
                api=self.api_url,
                metrics=self.metrics_url,
            )
            self.ready.set()
            if self._reload_early:
                self.reloader.request()
            async with asyncio.TaskGroup() as tasks:
                for follower in self.followers:
                    tasks.create_task(follower.run(self.stop), name=f"follow:{follower.chain}")
                tasks.create_task(worker.run(self.stop), name="deliver")
                tasks.create_task(pruner.run(self.stop), name="prune-attempts")
                tasks.create_task(self.reloader.run(self.stop), name="reload")
                if self.notifier.enabled:
                    tasks.create_task(heartbeat.run(self.stop), name="heartbeat")
        log.info("watcher_stopped")

    async def _load_subscriptions(
        self, store: SQLiteStore, manager: WebhookManager, context: Context
    ) -> None:
        """Fill the registry from the file and the store; a clash of ids is a config error."""
        config = self.config
        stored = await store.api_subscriptions()
        conflicts = id_conflicts(config, [s.id for s in stored])
        if conflicts:
            raise ConfigError(str(config.source), conflicts)
        entries: list[Entry] = file_entries(config.subscriptions, context.chains)
        for s in stored:
            entry = stored_entry(
                s.id,
                s.spec,
                s.secret,
                s.created_at,
                s.updated_at,
                context,
                s.previous_secret,
                s.previous_secret_until,
            )
            manager.remember_keys(s.id, Keys(s.secret, s.previous_secret, s.previous_secret_until))
            if entry.problem is not None:
                log.warning("subscription_not_running", subscription=s.id, reason=entry.problem)
            entries.append(entry)
        self.registry.install(entries)

    def _apply_change(self, change: Change) -> None:
        for follower in self.followers:
            if follower.chain in change.chains:
                follower.set_subscriptions(self.registry.for_chain(follower.chain))
        if self.worker is not None:
            self.worker.set_subscriptions(self.registry.values())


async def serve(config: WatcherConfig) -> None:
    """Run a daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads."""
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, daemon.stop, sig)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    try:
        await daemon.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("watcher_stopping", signal=sig.name)
    stop.set()
