"""Webhook signatures (Standard Webhooks and compatible schemes): pure functions, no I/O.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` and the signature header
is ``v1,<base64 HMAC-SHA256>``; while a secret is being rotated, one signature per secret is
sent, space-separated, and receivers accept the message if any of them verifies. Secrets
given as ``whsec_<base64>`` are decoded as Standard Webhooks libraries expect; any other
secret is used as its UTF-8 bytes. The compatibility signatures (a plain HMAC of the body,
BlockVision's ``X-BV-SIGN``) exist for receivers written for those services.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Sequence

from watcher.errors import WatcherError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret
MIN_SECRET_BYTES = 16


class SecretFormatError(WatcherError):
    """A signing secret is malformed or too short."""


def parse_secret(text: str) -> bytes:
    """Turn a configured secret into key bytes."""
    text = text.strip()
    if text.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise SecretFormatError("a whsec_ secret must be base64 after the prefix") from None
    else:
        key = text.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise SecretFormatError(f"the secret must be at least {MIN_SECRET_BYTES} bytes long")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    mac = _keyed(key).copy()
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


@functools.lru_cache(maxsize=256)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 state with ``key`` mixed in: copying it skips keying every message."""
    return hmac.new(key, digestmod=hashlib.sha256)


def verify(key: bytes, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether any ``v1`` signature in ``header`` matches; constant-time comparison.

    A header with non-ASCII characters cannot hold a base64 signature: it does not match.
    """
    if not header.isascii():
        return False
    expected = sign(key, msg_id, timestamp, body).encode("ascii")
    return any(
        hmac.compare_digest(expected, candidate.encode("ascii"))
        for candidate in header.split()
        if candidate.startswith("v1,")
    )


def sign_all(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """A ``webhook-signature`` value with one signature per key, space-separated (rotation)."""
    if len(keys) == 1:
        return sign(keys[0], msg_id, timestamp, body)
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def body_hmac(key: bytes, body: bytes, encoding: str) -> str:
    """HMAC-SHA256 of the raw body as ``hex``, ``base64``, or ``base64-hex``.

    ``hex`` is Alchemy's ``X-Alchemy-Signature``. ``base64-hex`` is the base64 of the hex
    digest, which is what BLOX's documented PHP computes for ``X-Hook-Signature``
    (``base64_encode(hash_hmac('sha256', $payload, $secret))``: ``hash_hmac`` returns hex).
    """
    digest = hmac.new(key, body, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64-hex":
        return base64.b64encode(digest.hex().encode("ascii")).decode("ascii")
    return base64.b64encode(digest).decode("ascii")


def blockvision_signature(key: bytes, url: str, timestamp: str) -> str:
    """BlockVision's ``X-BV-SIGN``: hex HMAC-SHA256 of ``{webhook url}&{body timestamp}``."""
    return hmac.new(key, f"{url}&{timestamp}".encode(), hashlib.sha256).hexdigest()
