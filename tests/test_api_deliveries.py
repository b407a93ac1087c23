"""The API and the outbox: a running daemon, real HTTP, anvil, real receivers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.api_kit import api_client, service_sections
from tests.conftest import Harness, wait_until
from tests.receiver import Receiver
from tests.test_health import scrape, value
from watcher.devchain import Anvil


def webhook(url: str, address: str, **fields: Any) -> dict[str, Any]:
    return {"chain": "dev", "events": ["tx.mined"], "addresses": [address], "url": url, **fields}


async def test_a_disabled_webhook_keeps_its_events_and_enabling_sends_the_backlog(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    held = Receiver("")
    await held.start()
    try:
        async with (
            harness.running(config) as daemon,
            api_client(daemon.api_url) as api,
            aiohttp.ClientSession() as http,
        ):
            _, body = await api.call("POST", "/api/webhooks", webhook(receiver.url, accounts[1]))
            receiver.secret = body["data"]["secret"]
            status, body = await api.call(
                "POST",
                "/api/webhooks",
                webhook(held.url, accounts[1], id="held", enabled=False),
            )
            assert status == 201, body
            assert (body["data"]["enabled"], body["data"]["status"]) == (False, "disabled")
            held.secret = body["data"]["secret"]

            await anvil.send(accounts[0], accounts[1], 1)
            await anvil.mine()
            # The enabled webhook's delivery is claimed in the same pass as the held one's.
            await wait_until(lambda: len(receiver.received) == 1, what="the enabled webhook")
            assert held.requests == 0
            _, body = await api.call("GET", "/api/webhooks/held")
            assert body["data"]["pending_deliveries"] == 1
            assert body["data"]["disabled_reason"] == "disabled through the admin API"
            assert daemon.metrics_url is not None
            samples = await scrape(http, daemon.metrics_url)
            assert value(samples, "watcher_delivery_queue", subscription="held", state="held") == 1

            status, body = await api.call("POST", "/api/webhooks/held/enable")
            assert status == 200
            assert (body["data"]["enabled"], body["data"]["disabled_reason"]) == (True, None)
            await wait_until(lambda: len(held.received) == 1, what="the backlog")
            assert held.received[0].tx_hash == receiver.received[0].tx_hash

            status, body = await api.call("POST", "/api/webhooks/held/disable")
            assert (status, body["data"]["status"]) == (200, "disabled")
            status, body = await api.call("PATCH", "/api/webhooks/held", {"enabled": True})
            assert (status, body["data"]["status"]) == (200, "active")
            status, _ = await api.call("POST", "/api/webhooks/nope/enable")
            assert status == 404
    finally:
        await held.stop()
