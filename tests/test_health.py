"""Metrics and health on their own listener: real scrapes of a running daemon on anvil."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.api_kit import service_sections
from tests.conftest import Harness, wait_until
from tests.receiver import Receiver
from watcher.config import MetricsConfig
from watcher.devchain import Anvil, find_anvil, free_port
from watcher.health import ChainProgress, HealthChecks, ReadinessBounds, chain_problems
from watcher.metrics import Metrics
from watcher.store import SQLiteStore


async def scrape(
    session: aiohttp.ClientSession, url: str
) -> dict[tuple[str, frozenset[str]], float]:
    """Every sample of ``url``/metrics, keyed by name and labels."""
    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, frozenset(f"{k}={v}" for k, v in s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[str]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(f"{k}={v}" for k, v in labels.items())), 0.0)


async def test_metrics_move_when_blocks_are_mined_and_webhooks_delivered(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "shop", "addresses": [accounts[1]], "url": receiver.url, "events": ["tx.mined"]}],
        sections=service_sections(tmp_path),
    )
    async with harness.running(config) as daemon, aiohttp.ClientSession() as http:
        url = daemon.metrics_url
        assert url is not None
        async with http.get(url + "/healthz") as response:
            assert response.status == 200
        await wait_until(lambda: daemon.followers[0].polls > 0, what="a first poll")
        before = await scrape(http, url)
        assert value(before, "watcher_chain_head_height", chain="dev") == 0

        await anvil.send(accounts[0], accounts[1], 1)
        await anvil.send(accounts[0], accounts[2], 1)
        await anvil.mine()
        await anvil.mine(2)
        await wait_until(lambda: len(receiver.received) == 1, what="the webhook")

        async def moved() -> bool:
            after = await scrape(http, url)
            return (
                value(after, "watcher_chain_processed_height", chain="dev") == 3
                and value(
                    after, "watcher_deliveries_total", subscription="shop", outcome="succeeded"
                )
                == 1
            )

        await wait_until(moved, what="the metrics to move")
        after = await scrape(http, url)
    assert value(after, "watcher_chain_head_height", chain="dev") == 3
    assert value(after, "watcher_chain_lag_blocks", chain="dev") == 0
    blocks = "watcher_blocks_processed_total"
    assert value(after, blocks, chain="dev") - value(before, blocks, chain="dev") == 3
    assert value(after, "watcher_transactions_processed_total", chain="dev") == 2
    assert value(after, "watcher_events_total", chain="dev", type="tx.mined") == 1
    assert value(after, "watcher_delivery_latency_seconds_count", subscription="shop") == 1
    assert value(after, "watcher_delivery_attempt_duration_seconds_count", subscription="shop") == 1
    assert value(after, "watcher_chain_last_poll_timestamp_seconds", chain="dev") > 0


async def test_readiness_fails_while_the_node_is_down_and_recovers_when_it_returns(
    harness: Harness, receiver: Receiver, tmp_path: Path
) -> None:
    node = Anvil(find_anvil(), port=free_port(), state_path=tmp_path / "anvil-state.json")
    async with node:
        accounts = await node.accounts()
        config = harness.write_config(
            node.rpc_url,
            [{"id": "shop", "addresses": [accounts[1]], "url": receiver.url}],
            chain={"request_timeout_s": 1},
            sections=service_sections(tmp_path, ready_max_poll_age_s=0.5),
        )
        async with harness.running(config) as daemon, aiohttp.ClientSession() as http:
            readyz = f"{daemon.metrics_url}/readyz"

            async def ready_is(status: int) -> bool:
                async with http.get(readyz) as response:
                    return response.status == status

            await wait_until(lambda: ready_is(200), what="ready")
            await node.stop()
            await wait_until(lambda: ready_is(503), what="not ready")
            async with http.get(readyz) as response:
                body = await response.json()
            assert body["status"] == "not ready"
            assert any(r.startswith("chain dev: last successful poll") for r in body["reasons"])
            assert daemon.metrics_url is not None
            errors = await scrape(http, daemon.metrics_url)
            assert (
                value(errors, "watcher_rpc_errors_total", chain="dev", method="eth_chainId")
                + (
                    value(
                        errors,
                        "watcher_rpc_errors_total",
                        chain="dev",
                        method="eth_getBlockByNumber",
                    )
                )
                >= 1
            )

            await node.start()
            await wait_until(lambda: ready_is(200), timeout=30, what="ready again")


async def test_a_locked_store_makes_the_daemon_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "watcher.db"
    store = await SQLiteStore.open(path)
    checks = HealthChecks(store, [], Metrics(), MetricsConfig(port=0), store_timeout_s=0.2)
    assert await checks.problems() == []
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        (problem,) = await checks.problems()
        assert problem == "store: no write completed within 0.2s"
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()


@dataclass
class Chain:
    chain: str
    connected_at: float | None = 1.0
    head_seen: int | None = 100
    processed_height: int | None = 100
    last_poll_at: float | None = 1000.0


def test_readiness_names_each_chain_that_is_stale_behind_or_not_polled() -> None:
    bounds = ReadinessBounds(max_lag_blocks=10, max_poll_age_s=30)
    chains: Sequence[ChainProgress] = [
        Chain("fine", last_poll_at=990.0, processed_height=90),
        Chain("stale", last_poll_at=900.0),
        Chain("behind", processed_height=89),
        Chain("new", connected_at=None, last_poll_at=None, head_seen=None, processed_height=None),
    ]
    assert chain_problems(chains, bounds, now=1000.0) == [
        "chain stale: last successful poll 100.0s ago (bound 30s)",
        "chain behind: 11 blocks behind the node (bound 10)",
        "chain new: not polled successfully yet",
    ]
