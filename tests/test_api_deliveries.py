"""The API's delivery side end to end: a running daemon, real HTTP, anvil, real receivers.

Webhooks are created through the API with their own delivery settings; what they send is
read back through ``/api/webhooks/{id}/deliveries`` and ``/api/deliveries``; enable,
disable, retry, replay and the test-fire act on the daemon's live outbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.api_kit import ApiClient, api_client, service_sections
from tests.conftest import Harness, wait_until
from tests.delivery_kit import Reply, scripted
from tests.receiver import Receiver
from tests.test_health import scrape, value
from tests.test_signatures_and_formats import verifies
from watcher.devchain import Anvil


def webhook(url: str, address: str, **fields: Any) -> dict[str, Any]:
    return {"chain": "dev", "events": ["tx.mined"], "addresses": [address], "url": url, **fields}


async def deliveries(api: ApiClient, webhook_id: str, query: str = "") -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/webhooks/{webhook_id}/deliveries{query}")
    assert status == 200, body
    return list(body["data"])


async def test_a_webhook_created_through_the_api_has_its_attempt_in_the_delivery_log(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        status, body = await api.call(
            "POST", "/api/webhooks", webhook(receiver.url, accounts[1], id="shop")
        )
        assert status == 201, body
        assert body["data"]["enabled"] is True
        assert body["data"]["status"] == "active"
        receiver.secret = body["data"]["secret"]

        tx = await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.received) == 1, what="the webhook")

        async def succeeded() -> bool:
            found = await deliveries(api, "shop", "?status=succeeded")
            return len(found) == 1

        await wait_until(succeeded, what="the delivery to be recorded as succeeded")
        (listed,) = await deliveries(api, "shop")
        assert listed["webhook_id"] == "shop"
        assert listed["event_id"] == receiver.received[0].webhook_id
        assert listed["event_type"] == "tx.mined"
        assert listed["attempts"] == 1
        assert listed["last_status_code"] == 204
        assert await deliveries(api, "shop", "?status=failed") == []

        status, body = await api.call("GET", f"/api/deliveries/{listed['id']}")
        assert status == 200
        detail = body["data"]
        assert json.loads(detail["request_body"])["data"]["tx_hash"] == tx
        (attempt,) = detail["attempt_log"]
        assert attempt["status_code"] == 204
        assert attempt["error_class"] is None
        assert attempt["request_id"].startswith("req_")

        status, body = await api.call("GET", "/api/deliveries?webhook_id=shop&limit=1")
        assert status == 200
        assert [d["id"] for d in body["data"]] == [listed["id"]]
        assert body["meta"]["self"] == "/api/deliveries?webhook_id=shop&page=1&limit=1"

        _, body = await api.call("GET", "/api/webhooks/shop")
        shown = body["data"]
        assert shown["callback_error_count"] == 0
        assert shown["last_success_at"] is not None
        assert (shown["pending_deliveries"], shown["failed_deliveries"]) == (0, 0)

        for path, expected in [
            ("/api/deliveries?status=lost", 400),
            ("/api/deliveries?since=yesterday", 400),
            ("/api/deliveries/999999", 404),
            (f"/api/deliveries/{2**64}", 404),
            ("/api/webhooks/nope/deliveries", 404),
        ]:
            status, body = await api.call("GET", path)
            assert status == expected, (path, body)


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
            (waiting,) = await deliveries(api, "held")
            assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
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
            assert held.received[0].webhook_id == waiting["event_id"]

            status, body = await api.call("POST", "/api/webhooks/held/disable")
            assert (status, body["data"]["status"]) == (200, "disabled")
            status, body = await api.call("PATCH", "/api/webhooks/held", {"enabled": True})
            assert (status, body["data"]["status"]) == (200, "active")
            status, _ = await api.call("POST", "/api/webhooks/nope/enable")
            assert status == 404
    finally:
        await held.stop()


async def test_retry_and_replay_send_failed_deliveries_again(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    started = datetime.now(UTC).isoformat()
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        # The webhook's own retry policy: one quick retry, then the delivery is failed.
        status, body = await api.call(
            "POST",
            "/api/webhooks",
            webhook(receiver.url, accounts[1], id="flaky", retry_schedule_s=[0.1]),
        )
        assert status == 201, body
        assert body["data"]["retry_schedule_s"] == [0.1]
        receiver.secret = body["data"]["secret"]
        receiver.status = 500

        async def failed(count: int) -> bool:
            return len(await deliveries(api, "flaky", "?status=failed")) == count

        await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: failed(1), what="the first delivery to fail")
        (first,) = await deliveries(api, "flaky")
        assert (first["attempts"], first["last_status_code"]) == (2, 500)
        _, body = await api.call("GET", "/api/webhooks/flaky")
        assert body["data"]["callback_error_count"] == 2
        assert body["data"]["failed_deliveries"] == 1

        receiver.status = 204
        status, body = await api.call("POST", f"/api/deliveries/{first['id']}/retry")
        assert status == 200, body
        assert body["data"]["status"] == "pending"
        await wait_until(lambda: len(receiver.received) == 1, what="the retried delivery")
        assert receiver.received[0].webhook_id == first["event_id"]

        async def log_of(delivery_id: int) -> list[dict[str, Any]]:
            _, body = await api.call("GET", f"/api/deliveries/{delivery_id}")
            return list(body["data"]["attempt_log"])

        async def three_attempts() -> bool:
            return len(await log_of(first["id"])) == 3

        await wait_until(three_attempts, what="the retry in the attempt log")
        assert [a["status_code"] for a in await log_of(first["id"])] == [500, 500, 204]

        receiver.status = 500
        await anvil.send(accounts[0], accounts[1], 2)
        await anvil.mine()
        await wait_until(lambda: failed(1), what="the second delivery to fail")
        receiver.status = 204
        status, body = await api.call("POST", "/api/webhooks/flaky/replay", {"since": started})
        assert status == 200, body
        assert body["data"]["requeued"] == 1
        await wait_until(lambda: len(receiver.received) == 2, what="the replayed delivery")
        status, body = await api.call("POST", "/api/webhooks/flaky/replay", {"since": started})
        assert body["data"]["requeued"] == 0

        for method, path, payload, expected in [
            ("POST", "/api/deliveries/999999/retry", None, 404),
            ("POST", "/api/webhooks/nope/replay", {"since": started}, 404),
            ("POST", "/api/webhooks/flaky/replay", {"since": 1700000000}, 422),
            ("POST", "/api/webhooks/flaky/replay", {}, 422),
        ]:
            status, body = await api.call(method, path, payload)
            assert status == expected, (path, payload, body)


async def test_the_test_fire_sends_a_signed_sample_and_reports_the_answer(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "from-file", "addresses": [accounts[1]], "url": "http://127.0.0.1:9/closed"}],
        sections=service_sections(tmp_path),
    )
    async with (
        scripted(Reply(202, body=b"thanks")) as receiver,
        harness.running(config) as daemon,
        api_client(daemon.api_url) as api,
    ):
        _, body = await api.call(
            "POST", "/api/webhooks", webhook(receiver.url(), accounts[1], id="shop")
        )
        secret = body["data"]["secret"]
        status, body = await api.call("POST", "/api/webhooks/shop/test")
        assert status == 200, body
        result = body["data"]
        assert (result["ok"], result["status_code"], result["response_body"]) == (
            True,
            202,
            "thanks",
        )
        (request,) = receiver.requests
        assert verifies(secret, request)
        assert request.headers["webhook-id"] == result["event_id"]
        assert request.headers["X-Request-Id"] == result["request_id"]
        assert json.loads(request.body)["data"]["test"] is True
        assert await deliveries(api, "shop") == [], "a test-fire is not recorded"

        # A webhook from the file can be tested too; this one's endpoint is closed.
        status, body = await api.call("POST", "/api/webhooks/from-file/test")
        assert status == 200
        assert (body["data"]["ok"], body["data"]["error_class"]) == (False, "connection")
        status, _ = await api.call("POST", "/api/webhooks/nope/test")
        assert status == 404
