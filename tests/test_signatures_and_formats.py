"""Signatures and payload formats, checked by receivers that verify the way each vendor documents.

The Standard Webhooks checks use the independent ``standardwebhooks`` package. The
compatibility receivers implement the seed documents literally: BlockVision's Python sample for
``X-BV-SIGN``, BLOX's PHP ``base64_encode(hash_hmac('sha256', $payload, $secret))``, Alchemy's
hex HMAC of the body, and BlockSDK's ``api_token`` (the MD5 of the API token) in the body.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.delivery_kit import KEY, Request, outbox, sample_event, scripted, subscription
from watcher.formats import render
from watcher.models import (
    EventType,
    FormatOptions,
    PayloadFormat,
    SignatureScheme,
    SignatureSettings,
    Subscription,
)

OLD_SECRET = "whsec_" + base64.b64encode(b"the-old-secret-0123456789").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the-new-secret-0123456789").decode()
OLD_KEY = base64.b64decode(OLD_SECRET.removeprefix("whsec_"))
NEW_KEY = base64.b64decode(NEW_SECRET.removeprefix("whsec_"))
PLAIN_KEY = "vendor-signing-key-1234"  # vendor keys are plain strings, used as UTF-8


def verifies(secret: str, request: Request) -> bool:
    try:
        Webhook(secret).verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return False
    return True


def rotating(url: str, sub_id: str, overlap_ends: float) -> Subscription:
    return subscription(
        url, sub_id, secret=NEW_KEY, previous_secret=OLD_KEY, previous_secret_until=overlap_ends
    )


async def test_during_a_rotation_both_secrets_verify_and_afterwards_only_the_new_one(
    tmp_path: Path,
) -> None:
    async with scripted() as receiver:
        subs = [
            rotating(receiver.url("/during"), "during", time.time() + 3600),
            rotating(receiver.url("/after"), "after", time.time() - 1),
        ]
        async with outbox(tmp_path, subs) as box:
            await box.add_events("during")
            await box.add_events("after")
            await box.worker.run_once()
    during = next(r for r in receiver.requests if r.path == "/during")
    after = next(r for r in receiver.requests if r.path == "/after")
    assert len(during.headers["webhook-signature"].split()) == 2
    assert verifies(OLD_SECRET, during)
    assert verifies(NEW_SECRET, during)
    assert len(after.headers["webhook-signature"].split()) == 1
    assert verifies(NEW_SECRET, after)
    assert not verifies(OLD_SECRET, after)


def blockvision_receiver(url: str) -> Callable[[Request], bool]:
    """BlockVision's documented Python check, nearly verbatim."""

    def is_valid_signature(request: Request) -> bool:
        webhook_url = url
        signing_key = PLAIN_KEY
        signature = request.headers["X-BV-SIGN"]
        timestamp = json.loads(request.body)["timestamp"]
        param_str = webhook_url + "&" + timestamp
        digest = hmac.new(
            bytes(signing_key, "utf-8"), msg=bytes(param_str, "utf-8"), digestmod=hashlib.sha256
        ).hexdigest()
        return bool(signature == digest)

    return is_valid_signature


def blox_check(request: Request) -> bool:
    """BLOX: signature = base64_encode(hash_hmac('sha256', 'JSON payload', 'secret'))."""
    hash_hmac = hmac.new(PLAIN_KEY.encode(), request.body, hashlib.sha256).hexdigest()
    expected = base64.b64encode(hash_hmac.encode()).decode()
    return hmac.compare_digest(request.headers.get("X-Hook-Signature", ""), expected)


def alchemy_check(request: Request) -> bool:
    """Alchemy: X-Alchemy-Signature is the hex HMAC-SHA256 of the raw body."""
    digest = hmac.new(PLAIN_KEY.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Alchemy-Signature", ""), digest)


def blocksdk_check(request: Request) -> bool:
    """BlockSDK: the body's api_token is the MD5 of the receiver's own API token."""
    body = json.loads(request.body)
    return bool(body["api_token"] == hashlib.md5(b"my-api-token").hexdigest())  # noqa: S324


async def test_blockvision_format_and_x_bv_sign_pass_blockvision_verification(
    tmp_path: Path,
) -> None:
    async with scripted() as receiver:
        url = receiver.url("/yourWebhookServer/push")
        receiver.check = blockvision_receiver(url)
        sub = subscription(
            url,
            secret=PLAIN_KEY.encode(),
            format=PayloadFormat.BLOCKVISION,
            format_options=FormatOptions(blockvision_app="blockvision eth"),
            signature=SignatureSettings(SignatureScheme.BLOCKVISION),
        )
        async with outbox(tmp_path, [sub]) as box:
            await box.add_events("sub")
            await box.worker.run_once()
            assert (await box.row()).status == "succeeded"
    body = json.loads(receiver.requests[0].body)
    assert list(body) == ["app", "network", "webhookType", "timestamp", "transaction"]
    assert body["app"] == "blockvision eth"
    assert body["network"] == "Mainnet"
    assert body["webhookType"] == "Mined_Transaction"
    datetime.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%S")  # "2022-03-20 14:22:53"
    assert body["transaction"]["hash"] == f"0x{1:064x}"


@pytest.mark.parametrize(
    ("header", "encoding", "check"),
    [("X-Hook-Signature", "base64-hex", blox_check), ("X-Alchemy-Signature", "hex", alchemy_check)],
)
async def test_hmac_of_the_raw_body_passes_blox_and_alchemy_verification(
    tmp_path: Path, header: str, encoding: str, check: Callable[[Request], bool]
) -> None:
    async with scripted(check=check) as receiver:
        sub = subscription(
            receiver.url(),
            secret=PLAIN_KEY.encode(),
            format=PayloadFormat.BLOX,
            signature=SignatureSettings(SignatureScheme.HMAC_SHA256, header, encoding),
        )
        async with outbox(tmp_path, [sub]) as box:
            await box.add_events("sub")
            await box.worker.run_once()
            assert (await box.row()).status == "succeeded"
    body = json.loads(receiver.requests[0].body)
    assert list(body) == ["application", "event", "data"]
    assert (body["application"], body["event"]) == ("watcher", "tx.mined")
    assert body["data"]["tx_hash"] == f"0x{1:064x}"
    assert body["data"]["id"] == "evt_sub_1"


async def test_blocksdk_format_carries_the_md5_of_the_api_token(tmp_path: Path) -> None:
    options = FormatOptions(
        blocksdk_webhook_id=2151,
        blocksdk_api_token_md5=hashlib.md5(b"my-api-token").hexdigest(),  # noqa: S324
    )
    async with scripted(check=blocksdk_check) as receiver:
        sub = subscription(receiver.url(), format=PayloadFormat.BLOCKSDK, format_options=options)
        async with outbox(tmp_path, [sub]) as box:
            await box.add_events("sub")
            await box.worker.run_once()
            assert (await box.row()).status == "succeeded"
    body = json.loads(receiver.requests[0].body)
    assert body == {
        "webhook_id": 2151,
        "event": "unconfirmed",
        "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "symbol": "eth",
        "tx_hash": f"0x{1:064x}",
        "api_token": hashlib.md5(b"my-api-token").hexdigest(),  # noqa: S324
    }


async def test_standard_webhooks_headers_are_sent_with_every_format(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(KEY).decode()
    async with scripted() as receiver:
        subs = [
            subscription(receiver.url(f"/{fmt.value}"), fmt.value, format=fmt)
            for fmt in PayloadFormat
        ]
        async with outbox(tmp_path, subs) as box:
            for fmt in PayloadFormat:
                await box.add_events(fmt.value)
            await box.worker.run_once()
    assert len(receiver.requests) == len(PayloadFormat)
    assert all(verifies(secret, r) for r in receiver.requests)


def test_event_names_map_onto_each_vendor_vocabulary() -> None:
    event = sample_event("s", 1, 1_700_000_000.0)
    confirmed = dataclasses.replace(event, type=EventType.TX_CONFIRMED)
    sdk = json.loads(render(confirmed, PayloadFormat.BLOCKSDK, FormatOptions()))
    bv = json.loads(render(confirmed, PayloadFormat.BLOCKVISION, FormatOptions()))
    assert sdk["event"] == "confirmed"
    assert sdk["webhook_id"] == "s"  # the subscription id when no webhook_id is configured
    assert bv["webhookType"] == "Confirmed_Transaction"
    assert bv["timestamp"] == "2023-11-14 22:13:20"
    native = json.loads(render(event, PayloadFormat.NATIVE, FormatOptions()))
    assert native["timestamp"] == "2023-11-14T22:13:20.000Z"
