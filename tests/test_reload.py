"""SIGHUP reloads: a broken file changes nothing, a good one changes subscriptions live."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.api_kit import api_client, service_sections
from tests.conftest import SECRET_ENV, Harness, wait_until
from tests.receiver import Receiver
from watcher.cli import EXIT_CONFIG, main
from watcher.daemon import Daemon
from watcher.devchain import Anvil
from watcher.errors import ConfigError
from watcher.reload import ReloadResult
from watcher.store import SQLiteStore, StoredSubscription


async def reload(daemon: Daemon) -> ReloadResult:
    """What SIGHUP does, then the outcome once the reload task has run."""
    reloader = daemon.reloader
    assert reloader is not None
    done = len(reloader.results)
    daemon.request_reload()
    await wait_until(lambda: len(reloader.results) > done, what="the reload")
    return reloader.results[-1]


async def test_a_broken_file_is_refused_whole_and_the_old_config_keeps_serving(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "shop", "addresses": [accounts[1]], "url": receiver.url, "events": ["tx.mined"]}],
    )
    async with harness.running(config) as daemon:
        harness.write_config(
            anvil.rpc_url,
            [
                {"id": "shop", "addresses": [accounts[2]], "url": receiver.url, "colour": "blue"},
                {"id": "new", "addresses": ["0x1234"], "url": receiver.url},
            ],
        )
        result = await reload(daemon)
        assert not result.ok
        assert [p.split(" ", 1)[0] for p in result.problems] == [
            "subscriptions[0].colour",
            "subscriptions[1].addresses[0]",
        ]

        config.write_text("chains: [")  # not even YAML
        result = await reload(daemon)
        assert not result.ok
        assert "invalid YAML" in result.problems[0]

        tx = await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.received) == 1, what="a webhook on the old config")
        assert receiver.received[0].tx_hash == tx


async def test_a_good_file_adds_changes_and_removes_subscriptions_without_a_restart(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    alice, bob, carol, dave = accounts[1:5]

    def sub(sub_id: str, address: str) -> dict[str, object]:
        return {"id": sub_id, "addresses": [address], "url": receiver.url, "events": ["tx.mined"]}

    config = harness.write_config(anvil.rpc_url, [sub("shop", alice), sub("gone", bob)])
    async with harness.running(config) as daemon:
        harness.write_config(
            anvil.rpc_url,
            # shop also changes its payload format: its next webhook has the new shape.
            [{**sub("shop", carol), "format": "blox"}, sub("new", dave)],
            chain={"poll_interval_s": 0.06},
        )
        result = await reload(daemon)
        assert result.ok
        change = result.change
        assert (change.added, change.changed, change.removed) == (
            frozenset({"new"}),
            frozenset({"shop"}),
            frozenset({"gone"}),
        )
        assert result.restart_needed == ("chains",)

        for to in (alice, bob, carol, dave):
            await anvil.send(accounts[0], to, 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.received) == 2, what="two webhooks")
    async with harness.store() as store:
        delivered = {(r.subscription_id, r.status) for r in await store.deliveries()}
    assert delivered == {("shop", "succeeded"), ("new", "succeeded")}
    matched = {r.payload["data"]["address"].lower() for r in receiver.received}
    assert matched == {carol, dave}
    shapes = {
        r.payload["data"]["address"].lower(): "application" in r.payload for r in receiver.received
    }
    assert shapes == {carol: True, dave: False}


async def test_a_file_subscription_may_not_take_the_id_of_an_api_one(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    sections = service_sections(tmp_path)
    config = harness.write_config(anvil.rpc_url, [], sections=sections)
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        status, _ = await api.call(
            "POST",
            "/api/webhooks",
            {"id": "shop", "chain": "dev", "addresses": [accounts[1]], "url": receiver.url},
        )
        assert status == 201
        harness.write_config(
            anvil.rpc_url,
            [{"id": "shop", "addresses": [accounts[2]], "url": receiver.url}],
            sections=sections,
        )
        result = await reload(daemon)
        assert not result.ok
        assert result.problems[0].startswith("subscriptions[0].id: 'shop' is already the id")

    with pytest.raises(ConfigError, match="1 configuration error"):
        async with harness.running(config):
            pass


def test_the_id_clash_at_start_up_exits_with_the_config_error_code(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def store_api_subscription() -> None:
        store = await SQLiteStore.open(harness.store_path)
        spec = {"chain": "dev", "url": "http://127.0.0.1:9/hook", "addresses": ["0x" + "11" * 20]}
        await store.add_api_subscription(StoredSubscription("shop", spec, "whsec_x", 1.0, 1.0))
        await store.close()

    asyncio.run(store_api_subscription())
    config = harness.write_config(
        "http://127.0.0.1:9",
        [{"id": "shop", "addresses": ["0x" + "22" * 20], "url": "http://127.0.0.1:9/hook"}],
    )
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "-c", str(config)]) == EXIT_CONFIG
    assert "already the id of a subscription created through the API" in capsys.readouterr().err
