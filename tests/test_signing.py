"""Standard Webhooks signatures: our signer, our verifier and the reference library agree."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from watcher.signing import MIN_SECRET_BYTES, SecretFormatError, parse_secret, sign, verify

KEY = bytes(range(32))
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
MSG_ID = "evt_0123456789abcdef0123456789abcdef"
BODY = b'{"data":{"value":"1000"},"id":"evt_0123456789abcdef0123456789abcdef"}'
TIMESTAMP = 1_700_000_000


def headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_whsec_secret_decodes_its_base64_part() -> None:
    assert parse_secret(WHSEC) == KEY


def test_plain_secret_is_used_as_its_utf8_bytes() -> None:
    assert parse_secret("correct horse battery staple") == b"correct horse battery staple"


def test_surrounding_whitespace_of_a_secret_is_ignored() -> None:
    assert parse_secret(f"  {WHSEC}\n") == KEY


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param("whsec_not*base64!", "base64", id="whsec-not-base64"),
        pytest.param("whsec_" + base64.b64encode(KEY)[:-1].decode(), "base64", id="whsec-cut"),
        pytest.param("whsec_" + base64.b64encode(b"x" * 15).decode(), "16 bytes", id="whsec-short"),
        pytest.param("whsec_", "16 bytes", id="whsec-empty"),
        pytest.param("x" * (MIN_SECRET_BYTES - 1), "16 bytes", id="plain-short"),
        pytest.param("", "16 bytes", id="empty"),
    ],
)
def test_malformed_or_short_secret_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(SecretFormatError, match=complaint):
        parse_secret(text)


def test_secret_of_exactly_the_minimum_length_is_accepted() -> None:
    assert parse_secret("x" * MIN_SECRET_BYTES) == b"x" * MIN_SECRET_BYTES


def test_signature_has_the_v1_base64_format() -> None:
    signature = sign(KEY, MSG_ID, TIMESTAMP, BODY)
    version, _, digest = signature.partition(",")
    assert version == "v1"
    assert len(base64.b64decode(digest, validate=True)) == 32


def test_sign_then_verify_round_trips() -> None:
    signature = sign(KEY, MSG_ID, TIMESTAMP, BODY)
    assert verify(KEY, MSG_ID, TIMESTAMP, BODY, signature)


def test_standardwebhooks_library_verifies_our_signature() -> None:
    now = int(time.time())
    signature = sign(parse_secret(WHSEC), MSG_ID, now, BODY)
    payload = Webhook(WHSEC).verify(BODY, headers(MSG_ID, now, signature))
    assert payload == {"data": {"value": "1000"}, "id": MSG_ID}


def test_standardwebhooks_library_rejects_a_signature_made_with_another_key() -> None:
    now = int(time.time())
    signature = sign(b"another key of enough length", MSG_ID, now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY, headers(MSG_ID, now, signature))


def test_we_verify_a_signature_made_by_the_standardwebhooks_library() -> None:
    when = datetime.fromtimestamp(TIMESTAMP, UTC)
    signature = Webhook(WHSEC).sign(MSG_ID, when, BODY.decode())
    assert verify(parse_secret(WHSEC), MSG_ID, TIMESTAMP, BODY, signature)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        pytest.param(MSG_ID, TIMESTAMP, BODY.replace(b"1000", b"9000"), id="body"),
        pytest.param(MSG_ID, TIMESTAMP, BODY + b" ", id="body-whitespace"),
        pytest.param("evt_other", TIMESTAMP, BODY, id="id"),
        pytest.param(MSG_ID, TIMESTAMP + 1, BODY, id="timestamp"),
    ],
)
def test_verify_rejects_a_tampered_message(msg_id: str, timestamp: int, body: bytes) -> None:
    signature = sign(KEY, MSG_ID, TIMESTAMP, BODY)
    assert not verify(KEY, msg_id, timestamp, body, signature)


def test_verify_rejects_a_signature_made_with_another_key() -> None:
    signature = sign(b"another key of enough length", MSG_ID, TIMESTAMP, BODY)
    assert not verify(KEY, MSG_ID, TIMESTAMP, BODY, signature)


def test_verify_accepts_when_one_of_several_signatures_matches() -> None:
    """Key rotation: the sender lists old and new signatures, space-separated."""
    old = sign(b"the retired key, long enough", MSG_ID, TIMESTAMP, BODY)
    current = sign(KEY, MSG_ID, TIMESTAMP, BODY)
    assert verify(KEY, MSG_ID, TIMESTAMP, BODY, f"{old} {current}")
    assert verify(KEY, MSG_ID, TIMESTAMP, BODY, f"{current} {old}")


def test_verify_ignores_signatures_of_other_versions() -> None:
    digest = sign(KEY, MSG_ID, TIMESTAMP, BODY).removeprefix("v1,")
    assert not verify(KEY, MSG_ID, TIMESTAMP, BODY, f"v2,{digest} v1a,{digest}")


@pytest.mark.parametrize("header", ["", "   ", "v1,", "v1,not-base64", "garbage"])
def test_verify_rejects_empty_or_garbage_headers(header: str) -> None:
    assert not verify(KEY, MSG_ID, TIMESTAMP, BODY, header)


def test_verify_rejects_a_non_ascii_header_without_raising() -> None:
    assert not verify(KEY, MSG_ID, TIMESTAMP, BODY, "v1,ü")


@given(
    key=st.binary(min_size=MIN_SECRET_BYTES, max_size=64),
    msg_id=st.text(),
    timestamp=st.integers(min_value=0, max_value=2**40),
    body=st.binary(),
)
def test_any_message_round_trips_and_a_changed_body_does_not(
    key: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    signature = sign(key, msg_id, timestamp, body)
    assert verify(key, msg_id, timestamp, body, signature)
    assert not verify(key, msg_id, timestamp, body + b"\x00", signature)


@given(key=st.binary(min_size=MIN_SECRET_BYTES, max_size=64), body=st.text(), msg_id=st.text())
def test_any_message_matches_the_standardwebhooks_signer(
    key: bytes, body: str, msg_id: str
) -> None:
    when = datetime.fromtimestamp(TIMESTAMP, UTC)
    theirs = Webhook(key).sign(msg_id, when, body)
    assert sign(key, msg_id, TIMESTAMP, body.encode()) == theirs


def test_signatures_with_different_keys_do_not_share_state() -> None:
    """Each key's HMAC state is computed once and copied per message."""
    key_a, key_b = b"a" * 32, b"b" * 32
    body = b'{"n": 1}'
    first = sign(key_a, "msg_1", 1_700_000_000, body)
    assert sign(key_b, "msg_1", 1_700_000_000, body) != first
    assert sign(key_a, "msg_1", 1_700_000_000, body) == first  # nothing left from before
    digest = hmac.new(key_a, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert first == "v1," + base64.b64encode(digest).decode()
