"""Operator commands run as separate processes against the store of a running daemon."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.api_kit import api_client, service_sections
from tests.conftest import SECRET_ENV, Harness, wait_until
from tests.delivery_kit import Hang, Reply, scripted
from watcher.cli import EXIT_FAILURE, EXIT_OK
from watcher.devchain import Anvil
from watcher.store import SQLiteStore


async def watcher(config: Path, *args: str) -> tuple[int, str]:
    """Run ``watcher ARGS -c CONFIG``; returns the exit code and stdout (stderr appended)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", *args, "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **SECRET_ENV},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


def counted(
    store: SQLiteStore, status: str, subscription: str, wanted: int = 1
) -> Callable[[], Awaitable[bool]]:
    """A predicate: ``subscription`` has ``wanted`` deliveries in ``status``."""

    async def check() -> bool:
        return len(await store.deliveries(status, subscription_id=subscription)) == wanted

    return check


async def test_deliveries_and_subscriptions_commands_while_the_daemon_runs(
    anvil: Anvil, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    watched = accounts[1]
    async with scripted() as good, scripted(Reply(500, body=b"broken")) as bad:
        config = harness.write_config(
            anvil.rpc_url,
            [
                {"id": "good", "addresses": [watched], "url": good.url(), "events": ["tx.mined"]},
                {
                    "id": "bad",
                    "addresses": [watched],
                    "url": bad.url(),
                    "events": ["tx.mined"],
                    "retry_schedule_s": [0.1],
                },
            ],
        )
        async with harness.running(config), harness.store() as store:
            await anvil.send(accounts[0], watched, 1)
            await anvil.mine()
            await wait_until(counted(store, "failed", "bad"), what="bad to give up")
            await wait_until(counted(store, "succeeded", "good"), what="good delivered")

            code, out = await watcher(config, "deliveries", "list")
            assert code == EXIT_OK, out
            assert "succeeded" in out
            assert "failed" in out
            code, out = await watcher(
                config, "deliveries", "list", "--status", "failed", "--since", "1h"
            )
            lines = out.strip().splitlines()
            assert len(lines) == 2  # the header and the failed delivery of "bad"
            assert " bad " in lines[1]
            failed_id = lines[1].split()[0]

            code, out = await watcher(config, "deliveries", "show", failed_id)
            assert code == EXIT_OK, out
            assert "failed after 2 attempt(s)" in out
            assert "attempts (2 in the log)" in out
            assert "HTTP 500" in out
            assert "broken" in out  # the receiver's response body

            code, out = await watcher(config, "subscriptions", "list")
            assert code == EXIT_OK, out
            rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
            assert rows["bad"][1:3] == ["active", "2"]
            assert rows["good"][1:3] == ["active", "0"]

            bad.script[:] = [Reply(204)]
            code, out = await watcher(
                config, "deliveries", "replay", "--subscription", "bad", "--since", "1h"
            )
            assert (code, out.strip()) == (EXIT_OK, "re-queued 1 failed deliveries of bad")
            await wait_until(counted(store, "succeeded", "bad"), what="the replay")
            code, out = await watcher(config, "deliveries", "show", failed_id)
            assert "succeeded after 3 attempt(s)" in out

            good_id = str((await store.deliveries(subscription_id="good"))[0].id)
            code, out = await watcher(config, "deliveries", "retry", good_id)
            assert code == EXIT_OK, out
            await wait_until(lambda: len(good.requests) == 2, what="the retried delivery")
            assert len({r.headers["webhook-id"] for r in good.requests}) == 1

            code, out = await watcher(config, "subscriptions", "disable", "good")
            assert (code, out.strip()) == (EXIT_OK, "good disabled")
            await anvil.send(accounts[0], watched, 2)
            await anvil.mine()
            await wait_until(counted(store, "succeeded", "bad", 2), what="bad, again")
            assert await counted(store, "pending", "good")()
            code, out = await watcher(config, "subscriptions", "enable", "good")
            assert (code, out.strip()) == (EXIT_OK, "good enabled")
            await wait_until(lambda: len(good.requests) == 3, what="the backlog after enabling")

            code, out = await watcher(config, "deliveries", "show", "999")
            assert code == EXIT_FAILURE
            assert "no delivery 999" in out


async def test_test_webhook_sends_a_signed_sample_and_prints_the_answer(
    harness: Harness,
) -> None:
    async with scripted(Reply(200, body=b"got it"), Reply(503, body=b"down")) as receiver:
        config = harness.write_config(
            "http://127.0.0.1:1",
            [{"id": "s", "addresses": ["0x" + "11" * 20], "url": receiver.url()}],
        )
        code, out = await watcher(config, "test-webhook", "s")
        assert code == EXIT_OK, out
        assert "answer: HTTP 200" in out
        assert "response body: got it" in out
        code, out = await watcher(config, "test-webhook", "s")
        assert code == EXIT_FAILURE
        assert "HTTP 503" in out
        code, out = await watcher(config, "test-webhook", "nope")
        assert code == EXIT_FAILURE
        assert "no subscription 'nope'" in out
        code, out = await watcher(config, "deliveries", "list")
        assert code == EXIT_FAILURE
        assert "has the daemon run yet?" in out
    payload = json.loads(receiver.requests[0].body)
    assert payload["type"] == "tx.mined"
    assert payload["subscription"] == "s"
    assert payload["data"]["test"] is True
    assert receiver.requests[0].headers["webhook-id"].startswith("evt_test_")


async def test_no_write_transaction_is_open_while_a_request_is_in_flight(
    anvil: Anvil, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    async with scripted(Hang(3.0)) as slow:
        config = harness.write_config(
            anvil.rpc_url,
            [{"id": "slow", "addresses": [accounts[1]], "url": slow.url(), "events": ["tx.mined"]}],
            delivery={"drain_timeout_s": 0.2},
        )
        async with harness.running(config):
            await anvil.send(accounts[0], accounts[1], 1)
            await anvil.mine()
            await wait_until(lambda: slow.in_flight == 1, what="a request in flight")
            probe = sqlite3.connect(harness.store_path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")  # fails at once if anyone holds the write lock
                probe.execute("ROLLBACK")
            finally:
                probe.close()


async def test_commands_name_subscriptions_created_through_the_api_too(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    async with scripted(Reply(200, body=b"hello")) as receiver:
        config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
        async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
            status, body = await api.call(
                "POST",
                "/api/webhooks",
                {
                    "id": "shop",
                    "chain": "dev",
                    "addresses": ["0x" + "11" * 20],
                    "url": receiver.url(),
                },
            )
            assert status == 201, body
            secret = body["data"]["secret"]

            code, out = await watcher(config, "test-webhook", "shop")
            assert code == EXIT_OK, out
            assert "response body: hello" in out
            code, out = await watcher(config, "subscriptions", "disable", "shop")
            assert (code, out.strip()) == (EXIT_OK, "shop disabled")
            _, body = await api.call("GET", "/api/webhooks/shop")
            assert body["data"]["status"] == "disabled"
            code, out = await watcher(config, "subscriptions", "list")
            assert "shop  disabled" in out
            assert "not configured" not in out
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, dict(request.headers))["data"]["test"] is True
