"""The admin API end to end: a running daemon, real HTTP, anvil, a verifying receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from pathlib import Path

from tests.api_kit import API_TOKEN, api_client, service_sections
from tests.conftest import Harness, wait_until
from tests.delivery_kit import Request, scripted
from tests.receiver import Receiver
from tests.test_signatures_and_formats import verifies
from watcher.addresses import checksum_ethereum
from watcher.devchain import Anvil


def webhook(**fields: object) -> dict[str, object]:
    return {"chain": "dev", "events": ["tx.mined"], **fields}


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


async def test_a_webhook_created_through_the_api_receives_signed_events(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        status, body = await api.call(
            "POST", "/api/webhooks", webhook(addresses=[accounts[1]], url=receiver.url)
        )
        assert status == 201, body
        created = body["data"]
        assert created["source"] == "api"
        assert created["secret"].startswith("whsec_")
        assert created["addresses"] == [checksum_ethereum(accounts[1])]
        assert created["confirmations"] == 3  # the chain's default
        receiver.secret = created["secret"]

        tx = await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.received) == 1, what="the webhook")
        (hook,) = receiver.received
        assert hook.tx_hash == tx
        assert hook.payload["subscription"] == created["id"]

        status, body = await api.call("GET", f"/api/webhooks/{created['id']}")
        assert status == 200
        assert "secret" not in body["data"], "the secret is shown only when created"


async def test_api_webhooks_survive_a_restart_and_added_addresses_take_effect_at_once(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        _, body = await api.call(
            "POST",
            "/api/webhooks",
            webhook(id="treasury", addresses=[accounts[1]], url=receiver.url),
        )
        receiver.secret = body["data"]["secret"]

    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        status, body = await api.call("GET", "/api/webhooks")
        assert status == 200
        assert [(w["id"], w["source"]) for w in body["data"]] == [("treasury", "api")]

        status, body = await api.call(
            "POST", "/api/webhooks/treasury/addresses", {"addresses": [accounts[2]]}
        )
        assert status == 200, body
        assert body["data"]["addresses"] == sorted(
            [checksum_ethereum(accounts[1]), checksum_ethereum(accounts[2])],
            key=str.lower,
        )
        tx = await anvil.send(accounts[0], accounts[2], 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.received) == 1, what="the webhook")
        assert receiver.received[0].tx_hash == tx
        assert receiver.received[0].payload["data"]["address"] == checksum_ethereum(accounts[2])

        status, body = await api.call("DELETE", f"/api/webhooks/treasury/addresses/{accounts[2]}")
        assert status == 200
        assert body["data"]["addresses"] == [checksum_ethereum(accounts[1])]


async def test_an_api_webhook_uses_its_own_format_and_signature_from_its_first_event(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    async with (
        scripted() as receiver,
        harness.running(config) as daemon,
        api_client(daemon.api_url) as api,
    ):
        fields: dict[str, object] = {
            "format": "blox",
            "blox": {"application": "newsroom"},
            "signature": {
                "scheme": "hmac-sha256",
                "header": "X-Hook-Signature",
                "encoding": "base64-hex",
            },
        }
        status, body = await api.call(
            "POST", "/api/webhooks", webhook(addresses=[accounts[1]], url=receiver.url(), **fields)
        )
        assert status == 201, body
        secret = body["data"]["secret"]
        assert body["data"]["format"] == "blox"
        assert body["data"]["blox"] == {"application": "newsroom"}
        assert body["data"]["timeout_s"] == 15  # the daemon's default

        await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()
        await wait_until(lambda: len(receiver.requests) == 1, what="the webhook")
    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert payload["application"] == "newsroom"
    assert payload["event"] == "tx.mined"
    digest = hmac.new(key_of(secret), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hook-Signature"] == base64.b64encode(digest.encode()).decode()
    assert verifies(secret, request)


async def test_a_rotated_secret_keeps_the_old_one_signing_for_the_overlap(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    async with (
        scripted() as receiver,
        harness.running(config) as daemon,
        api_client(daemon.api_url) as api,
    ):
        _, body = await api.call(
            "POST", "/api/webhooks", webhook(addresses=[accounts[1]], url=receiver.url())
        )
        first, webhook_id = body["data"]["secret"], body["data"]["id"]
        status, body = await api.call("POST", f"/api/webhooks/{webhook_id}/rotate-secret")
        assert status == 200, body
        second = body["data"]["secret"]
        overlap_ends = datetime.fromisoformat(body["data"]["previous_secret_until"]).timestamp()
        assert abs(overlap_ends - (time.time() + 86400)) < 60  # the default overlap

        async def one_more_webhook() -> Request:
            seen = len(receiver.requests)
            await anvil.send(accounts[0], accounts[1], 1)
            await anvil.mine()
            await wait_until(lambda: len(receiver.requests) > seen, what="the webhook")
            return receiver.requests[-1]

        during = await one_more_webhook()
        assert len(during.headers["webhook-signature"].split()) == 2
        assert verifies(first, during)
        assert verifies(second, during)

        # A leaked secret is retired at once.
        status, body = await api.call(
            "POST", f"/api/webhooks/{webhook_id}/rotate-secret", {"overlap_s": 0}
        )
        assert status == 200, body
        assert body["data"]["previous_secret_until"] is None
        third = body["data"]["secret"]
        after = await one_more_webhook()
        assert verifies(third, after)
        assert not verifies(second, after)
        assert not verifies(first, after)

        status, body = await api.call(
            "POST", f"/api/webhooks/{webhook_id}/rotate-secret", {"overlap_s": -1}
        )
        assert (status, body["errors"][0]["field"]) == (422, "overlap_s")


async def test_every_request_needs_the_bearer_token(
    anvil: Anvil, harness: Harness, tmp_path: Path
) -> None:
    config = harness.write_config(anvil.rpc_url, [], sections=service_sections(tmp_path))
    wrong = [
        {},
        {"Authorization": "Bearer not-the-token-0123456789"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {API_TOKEN}x"},
        {"Authorization": f"Bearer {API_TOKEN[:-1]}"},
    ]
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        for headers in wrong:
            for method, path in [
                ("GET", "/api/webhooks"),
                ("POST", "/api/webhooks"),
                ("GET", "/api/openapi.json"),
                ("GET", "/api/no-such-thing"),
            ]:
                status, body = await api.call(method, path, headers=headers)
                assert status == 401, (headers, path)
                assert body["statusCode"] == 401
                assert body["error"] == "Unauthorized"
                assert body["message"]
        status, body = await api.call("GET", "/api/no-such-thing")
        assert status == 404
        assert body["statusCode"] == 404


async def test_mistakes_get_a_4xx_json_body_naming_the_field(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    sections = service_sections(tmp_path)
    sections["api"]["max_body_bytes"] = 2048
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "from-file", "addresses": [accounts[1]], "url": receiver.url}],
        sections=sections,
    )
    mixed_case_typo = checksum_ethereum(accounts[2])[:-1] + "F"
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        valid = webhook(addresses=[accounts[1]], url=receiver.url)
        cases: list[tuple[str, str, object, int, str]] = [
            ("POST", "/api/webhooks", {**valid, "chain": "mainnet"}, 422, "chain"),
            (
                "POST",
                "/api/webhooks",
                {**valid, "addresses": [accounts[1], mixed_case_typo]},
                422,
                "addresses[1]",
            ),
            ("POST", "/api/webhooks", {**valid, "colour": "blue"}, 422, "colour"),
            ("POST", "/api/webhooks", {**valid, "events": ["tx.lost"]}, 422, "events[0]"),
            (
                "POST",
                "/api/webhooks",
                {**valid, "conditions": [{"key": "value", "condition": "gte", "value": "1 mile"}]},
                422,
                "conditions[0].value",
            ),
            ("POST", "/api/webhooks", {**valid, "url": "http://10.1.2.3/hook"}, 422, "url"),
            ("POST", "/api/webhooks", {"url": receiver.url}, 422, "chain"),
            ("POST", "/api/webhooks", [valid], 422, ""),
            ("POST", "/api/webhooks", {**valid, "id": "from-file"}, 409, "id"),
            ("GET", "/api/webhooks?page=0", None, 400, "page"),
            ("GET", "/api/webhooks?limit=lots", None, 400, "limit"),
            ("GET", "/api/webhooks/nope", None, 404, ""),
            ("PATCH", "/api/webhooks/nope", {"url": receiver.url}, 404, ""),
            ("PUT", "/api/webhooks/from-file", valid, 409, ""),
            ("PATCH", "/api/webhooks/from-file", {"url": receiver.url}, 409, ""),
            ("DELETE", "/api/webhooks/from-file", None, 409, ""),
            ("POST", "/api/webhooks/from-file/rotate-secret", None, 409, ""),
            ("POST", "/api/webhooks", {**valid, "addresses": ["0x" + "ab" * 20] * 60}, 413, ""),
        ]
        for method, path, payload, expected, field in cases:
            status, body = await api.call(method, path, payload)
            assert status == expected, (method, path, payload, body)
            assert body["statusCode"] == expected
            if field:
                assert field in [e["field"] for e in body["errors"]], body

        status, body = await api.call("POST", "/api/webhooks", data=b'{"chain": ')
        assert status == 400
        assert body["error"] == "Bad Request"

        status, body = await api.call("GET", "/api/webhooks/from-file/rotate-secret")
        assert status == 405
        assert body["statusCode"] == 405


async def test_the_list_is_paginated_with_ark_meta_and_file_webhooks_come_first(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "from-file", "addresses": [accounts[1]], "url": receiver.url}],
        sections=service_sections(tmp_path),
    )
    async with harness.running(config) as daemon, api_client(daemon.api_url) as api:
        for name in ("a", "b", "c"):
            status, _ = await api.call(
                "POST", "/api/webhooks", webhook(id=name, addresses=[accounts[2]], url=receiver.url)
            )
            assert status == 201
        status, body = await api.call("GET", "/api/webhooks?page=2&limit=3")
        assert status == 200
        assert [w["id"] for w in body["data"]] == ["c"]
        assert body["meta"] == {
            "count": 1,
            "pageCount": 2,
            "totalCount": 4,
            "next": None,
            "previous": "/api/webhooks?page=1&limit=3",
            "self": "/api/webhooks?page=2&limit=3",
            "first": "/api/webhooks?page=1&limit=3",
            "last": "/api/webhooks?page=2&limit=3",
        }
        _, body = await api.call("GET", "/api/webhooks?limit=2")
        assert [(w["id"], w["source"]) for w in body["data"]] == [
            ("from-file", "file"),
            ("a", "api"),
        ]
        assert body["meta"]["next"] == "/api/webhooks?page=2&limit=2"

        status, body = await api.call("PATCH", "/api/webhooks/a", {"events": ["tx.confirmed"]})
        assert status == 200
        assert body["data"]["events"] == ["tx.confirmed"]
        assert body["data"]["addresses"] == [checksum_ethereum(accounts[2])]
        status, _ = await api.call("DELETE", "/api/webhooks/a")
        assert status == 204
        status, _ = await api.call("GET", "/api/webhooks/a")
        assert status == 404
