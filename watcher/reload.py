"""SIGHUP: re-read the configuration file and apply its subscriptions to the running daemon.

The new file is validated in full first. If anything is wrong, every problem is logged and
the daemon keeps running on what it had. Otherwise the file's subscriptions replace the old
ones in the live registry: added ones start at the next block, changed ones (addresses,
events, conditions, URL, secrets re-read from their files, their own delivery keys) take
effect at once, removed ones stop producing events; deliveries already in flight finish,
queued ones stay queued. A delivery's body was rendered when its event was recorded, so a
new ``format`` applies to events recorded after the reload.

Chains, the store, the ``delivery`` section, logging and the listeners are built once at
start-up: a change to those is logged as needing a restart and is not applied (except that
the file's subscriptions, being rebuilt, resolve their policy defaults from the new file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from watcher.config import WatcherConfig
from watcher.errors import ConfigError, ConfigIssue
from watcher.heartbeat import Heartbeat
from watcher.registry import Change, Source, SubscriptionRegistry, file_entries

log = structlog.get_logger()

Loader = Callable[[Path], WatcherConfig]
# Sections of the file that only a restart applies.
RESTART_SECTIONS = ("store", "log", "delivery", "chains", "api", "metrics")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload did: the problems that stopped it, or what it changed."""

    ok: bool
    problems: tuple[str, ...] = ()
    change: Change = field(default_factory=Change)
    restart_needed: tuple[str, ...] = ()


def id_conflicts(config: WatcherConfig, api_ids: Iterable[str]) -> list[ConfigIssue]:
    """File subscriptions whose id an API-created subscription already has."""
    taken = set(api_ids)
    return [
        ConfigIssue(
            f"subscriptions[{index}].id",
            f"'{sub.id}' is already the id of a subscription created through the API "
            "(rename this one, or delete that one through the API)",
        )
        for index, sub in enumerate(config.subscriptions)
        if sub.id in taken
    ]


def restart_needed(running: WatcherConfig, new: WatcherConfig) -> list[str]:
    """The sections of ``new`` that differ from what the daemon runs on."""
    return [s for s in RESTART_SECTIONS if getattr(running, s) != getattr(new, s)]


class Reloader:
    """Applies the configuration file again each time :meth:`request` is called."""

    def __init__(
        self,
        running: WatcherConfig,
        registry: SubscriptionRegistry,
        loader: Loader,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self._running = running
        self._registry = registry
        self._loader = loader
        self._heartbeat = heartbeat
        self._requested = asyncio.Event()
        self.results: list[ReloadResult] = []

    def request(self) -> None:
        """Reload soon (what the SIGHUP handler calls); requests made meanwhile coalesce."""
        self._requested.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve reload requests until ``stop`` is set."""
        stopping = asyncio.create_task(stop.wait(), name="reload:stop")
        try:
            while not stop.is_set():
                requested = asyncio.create_task(self._requested.wait(), name="reload:wait")
                await asyncio.wait({stopping, requested}, return_when=asyncio.FIRST_COMPLETED)
                requested.cancel()
                if stop.is_set():
                    return
                self._requested.clear()
                await self.reload()
        finally:
            stopping.cancel()

    async def reload(self) -> ReloadResult:
        """Validate the file and apply its subscriptions; the result is also logged."""
        source = self._running.source
        log.info("config_reloading", source=str(source))
        if self._heartbeat is not None:
            self._heartbeat.reloading()
        result = await self._reload(source)
        self.results.append(result)
        if self._heartbeat is not None:
            summary = "reloaded" if result.ok else "reload failed, running on the old config"
            self._heartbeat.reloaded(summary)
        return result

    async def _reload(self, source: Path) -> ReloadResult:
        try:
            new = await asyncio.to_thread(self._loader, source)
            api_ids = [e.id for e in self._registry.entries() if e.source is Source.API]
            conflicts = id_conflicts(new, api_ids)
            if conflicts:
                raise ConfigError(str(source), conflicts)
        except ConfigError as exc:
            problems = tuple(str(issue) for issue in exc.issues)
            log.error(
                "config_reload_failed",
                source=exc.source,
                problems=list(problems),
                action="still running on the previous configuration",
            )
            return ReloadResult(ok=False, problems=problems)
        chains = [c.name for c in self._running.chains]
        change = self._registry.replace_file(file_entries(new.subscriptions, chains))
        restart = restart_needed(self._running, new)
        log.info(
            "config_reloaded",
            source=str(source),
            added=sorted(change.added),
            changed=sorted(change.changed),
            removed=sorted(change.removed),
        )
        for entry in self._registry.entries():
            if entry.source is Source.FILE and entry.problem is not None:
                log.warning("subscription_not_running", subscription=entry.id, reason=entry.problem)
        if restart:
            log.warning(
                "config_restart_needed",
                sections=restart,
                action="these sections changed and apply only after a restart",
            )
        return ReloadResult(ok=True, change=change, restart_needed=tuple(restart))
