"""Operator actions on a store that a running daemon may be using at the same time.

Each action opens its own connection to the SQLite file (WAL mode lets it read while the
daemon writes; writes are single short transactions that wait for the daemon's, never the
other way round), does one thing and returns values; ``cli.py`` prints them. The daemon
notices re-queued deliveries and re-enabled subscriptions at its next poll.

A subscription is named by its id: one from the configuration file, or one created through
the admin API (kept in the store).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from watcher.addresses import checksum_ethereum
from watcher.api.specs import Context, stored_entry
from watcher.attempts import AttemptResult, post_webhook, webhook_session
from watcher.config import WatcherConfig
from watcher.errors import WatcherError
from watcher.formats import render
from watcher.models import Event, EventType, Subscription
from watcher.netguard import IPNetwork
from watcher.policy import SubscriptionHealth
from watcher.store import AttemptRecord, DeliveryRecord, SQLiteStore

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class NotFoundError(WatcherError):
    """The delivery or subscription an operator named does not exist."""


def parse_when(text: str, now: float) -> float:
    """A point in time: ISO 8601 (UTC unless it says otherwise) or an age like ``2h``, ``7d``."""
    match = _RELATIVE.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use 2026-11-23T10:00:00Z or 30m, 2h, 7d)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@asynccontextmanager
async def opened(config: WatcherConfig) -> AsyncIterator[SQLiteStore]:
    """The configured store, opened for one command (never created by one)."""
    if not config.store.path.exists():
        raise NotFoundError(f"no store at {config.store.path}: has the daemon run yet?")
    store = await SQLiteStore.open(config.store.path)
    try:
        yield store
    finally:
        await store.close()


async def list_deliveries(
    config: WatcherConfig,
    *,
    subscription: str | None,
    status: str | None,
    since: float | None,
    limit: int,
) -> list[DeliveryRecord]:
    """The latest ``limit`` deliveries matching the filters, oldest first."""
    async with opened(config) as store:
        return await store.deliveries(
            status, subscription_id=subscription, since=since, latest=limit
        )


async def show_delivery(
    config: WatcherConfig, delivery_id: int
) -> tuple[DeliveryRecord, list[AttemptRecord]]:
    """One delivery and its logged attempts."""
    async with opened(config) as store:
        record = await store.delivery(delivery_id)
        if record is None:
            raise NotFoundError(f"no delivery {delivery_id}")
        return record, await store.attempts(delivery_id)


async def retry_delivery(config: WatcherConfig, delivery_id: int) -> None:
    """Make a delivery due now (a failed or succeeded one gets a fresh retry schedule)."""
    async with opened(config) as store:
        if not await store.retry_delivery(delivery_id, time.time()):
            raise NotFoundError(f"no delivery {delivery_id}")


async def replay(config: WatcherConfig, subscription: str, since: float, until: float) -> int:
    """Re-queue every delivery of ``subscription`` that failed in the window; returns how many."""
    async with opened(config) as store:
        await _subscription(config, store, subscription, runnable=False)
        return await store.replay(subscription, since, until, time.time())


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """One line of ``watcher subscriptions list``."""

    id: str
    configured: bool
    health: SubscriptionHealth
    disabled_at: float | None
    last_attempt_at: float | None
    pending: int
    failed: int


async def subscriptions(config: WatcherConfig) -> list[SubscriptionRow]:
    """Configured subscriptions (file and API) and others the store holds deliveries for."""
    async with opened(config) as store:
        states = {s.health.id: s for s in await store.subscription_states()}
        api_ids = {s.id for s in await store.api_subscriptions()}
    configured = {s.id for s in config.subscriptions} | api_ids
    rows: list[SubscriptionRow] = []
    for sub_id in sorted(configured | set(states)):
        state = states.get(sub_id)
        if state is None:
            health = SubscriptionHealth(sub_id, "active", 0, None, 0, None)
            rows.append(SubscriptionRow(sub_id, True, health, None, None, 0, 0))
            continue
        rows.append(
            SubscriptionRow(
                sub_id,
                sub_id in configured,
                state.health,
                state.disabled_at,
                state.last_attempt_at,
                state.pending,
                state.failed,
            )
        )
    return rows


async def set_enabled(
    config: WatcherConfig, subscription: str, enabled: bool, reason: str | None = None
) -> bool:
    """Enable or disable a subscription; False when it already was."""
    status = "active" if enabled else "disabled"
    async with opened(config) as store:
        await _subscription(config, store, subscription, runnable=False)
        return await store.set_subscription_status(
            subscription,
            status,
            None if enabled else reason or "disabled by an operator",
            time.time(),
        )


async def test_webhook(config: WatcherConfig, subscription: str) -> tuple[Event, AttemptResult]:
    """Send a signed sample ``tx.mined`` event to a subscription (nothing is recorded)."""
    if config.store.path.exists():
        async with opened(config) as store:
            sub = await _subscription(config, store, subscription, runnable=True)
    else:  # no API subscriptions yet; the file's can still be tested
        sub = await _subscription(config, None, subscription, runnable=True)
    assert sub is not None  # runnable=True raises instead
    allowed = config.delivery.allow_networks
    async with webhook_session(allowed, 1) as session:
        return await send_test(session, sub, allowed)


async def send_test(
    session: aiohttp.ClientSession, sub: Subscription, allow_networks: Sequence[IPNetwork]
) -> tuple[Event, AttemptResult]:
    """POST a signed sample event to ``sub``, in its format, exactly as a delivery would be.

    The test-fire of ``watcher test-webhook`` and of the admin API; nothing is recorded.
    """
    event = sample_event(sub, time.time())
    body = render(event, sub.delivery.format, sub.delivery.format_options)
    result = await post_webhook(session, sub, event.id, body, allow_networks=allow_networks)
    return event, result


def sample_event(sub: Subscription, now: float) -> Event:
    """A recognisable test event in the shape of a real ``tx.mined``; ``data.test`` is true."""
    address = checksum_ethereum(min(sub.addresses)) if sub.addresses else None
    zero_hash = "0x" + "00" * 32
    tx_hash = "0x" + secrets.token_hex(32)
    transaction = {
        "hash": tx_hash,
        "blockHash": zero_hash,
        "blockNumber": "0x0",
        "from": address,
        "to": address,
        "value": "0x0",
        "nonce": "0x0",
        "input": "0x",
    }
    return Event(
        id="evt_test_" + secrets.token_hex(12),
        type=EventType.TX_MINED,
        chain=sub.chain,
        subscription_id=sub.id,
        tx_hash=tx_hash,
        block_number=0,
        block_hash=zero_hash,
        created_at=now,
        data={
            "test": True,
            "tx_hash": tx_hash,
            "block_number": 0,
            "block_hash": zero_hash,
            "block_timestamp": int(now),
            "confirmations": 1,
            "from": address,
            "to": address,
            "value": "0",
            "address": address,
            "direction": "in",
            "transaction": transaction,
        },
    )


async def _subscription(
    config: WatcherConfig, store: SQLiteStore | None, subscription: str, *, runnable: bool
) -> Subscription | None:
    """The subscription with this id: from the file, else one created through the API.

    NotFoundError when there is none (or, if ``runnable``, when it cannot run); otherwise
    None only for an API subscription that cannot run.
    """
    for sub in config.subscriptions:
        if sub.id == subscription:
            return sub
    stored = {s.id: s for s in await store.api_subscriptions()} if store is not None else {}
    found = stored.get(subscription)
    if found is None:
        known = ", ".join(sorted({s.id for s in config.subscriptions} | stored.keys())) or "none"
        raise NotFoundError(
            f"no subscription {subscription!r} in {config.source} or created through the "
            f"API (known: {known})"
        )
    context = Context(
        chains={c.name: c for c in config.chains},
        allow_networks=config.delivery.allow_networks,
        delivery=config.delivery,
    )
    entry = stored_entry(
        found.id,
        found.spec,
        found.secret,
        found.created_at,
        found.updated_at,
        context,
        found.previous_secret,
        found.previous_secret_until,
    )
    if entry.subscription is None and runnable:
        raise NotFoundError(f"subscription {subscription!r} cannot run: {entry.problem}")
    return entry.subscription
