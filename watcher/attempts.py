"""One webhook attempt: build the signed request, POST it, and describe how it ended.

The request carries the stored body bytes unchanged, the Standard Webhooks headers (one
signature per active secret while a secret is being rotated), the subscription's
compatibility signature if it has one, and an ``X-Request-Id`` that also names the attempt
in the attempt log. Redirects are never followed. At most :data:`RESPONSE_BODY_MAX_BYTES` of
the answer are read, so a receiver cannot make the daemon download a large body. Every way
a request can fail is caught here by name and turned into an :class:`~watcher.policy.ErrorClass`.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from watcher import __version__
from watcher.models import SignatureScheme, Subscription
from watcher.netguard import BlockedAddressError, GuardedResolver, IPNetwork, refusal
from watcher.policy import ErrorClass, Outcome
from watcher.signing import blockvision_signature, body_hmac, sign_all

USER_AGENT = f"watcher/{__version__}"
RESPONSE_BODY_MAX_BYTES = 20 * 1024
REQUEST_ID_HEADER = "X-Request-Id"
BLOCKVISION_HEADER = "X-BV-SIGN"
REDACTED = "[redacted]"
# Response header names containing one of these are never stored in the attempt log.
_SENSITIVE_HEADER = re.compile("auth|cookie|token|secret|signature|key|session", re.IGNORECASE)

Clock = Callable[[], float]


class Sender(Protocol):
    """What sends one attempt: :func:`post_webhook`, or a stand-in in benchmarks."""

    async def __call__(
        self,
        session: aiohttp.ClientSession,
        sub: Subscription,
        event_id: str,
        body: bytes,
        *,
        allow_networks: Sequence[IPNetwork],
        clock: Clock,
    ) -> AttemptResult: ...


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """Everything the attempt log keeps about one POST."""

    request_id: str
    started_at: float
    duration_ms: int
    status: int | None
    error_class: ErrorClass | None
    error: str | None
    retry_after: str | None = None
    response_body: bytes = b""
    response_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def outcome(self) -> Outcome:
        """The part of the result the retry policy decides on."""
        return Outcome(self.status, self.error_class, self.retry_after)

    @property
    def ok(self) -> bool:
        """Whether the endpoint acknowledged the webhook (2xx)."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """A short human summary: ``HTTP 500``, ``timeout: ...``."""
        if self.error_class is None or self.error_class is ErrorClass.HTTP:
            return f"HTTP {self.status}"
        return f"{self.error_class.value}: {self.error}" if self.error else self.error_class.value


def new_request_id() -> str:
    """A fresh id for one attempt (also sent to the receiver): unique, not secret.

    A random prefix drawn at start-up and a counter: no system call per request.
    """
    return f"req_{_REQUEST_PREFIX}{next(_request_numbers):012x}"


_REQUEST_PREFIX = secrets.token_hex(6)
_request_numbers = itertools.count()


def signing_keys(sub: Subscription, now: float) -> list[bytes]:
    """The secrets to sign with at ``now``: the current one, plus the previous during overlap."""
    keys = [sub.secret]
    settings = sub.delivery
    previous, until = settings.previous_secret, settings.previous_secret_until
    if previous is not None and (until is None or now < until):
        keys.append(previous)
    return keys


def request_headers(
    sub: Subscription, event_id: str, body: bytes, now: float, request_id: str
) -> dict[str, str]:
    """The headers of one attempt; pure, so signatures are tested without a network."""
    timestamp = int(now)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_all(signing_keys(sub, now), event_id, timestamp, body),
        REQUEST_ID_HEADER: request_id,
    }
    signature = sub.delivery.signature
    if signature.scheme is SignatureScheme.HMAC_SHA256:
        assert signature.header is not None  # checked by the configuration
        headers[signature.header] = body_hmac(sub.secret, body, signature.encoding)
    elif signature.scheme is SignatureScheme.BLOCKVISION:
        headers[BLOCKVISION_HEADER] = blockvision_signature(sub.secret, sub.url, _timestamp(body))
    return headers


def _timestamp(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    value = doc.get("timestamp") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else ""


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers for the attempt log, with anything credential-like blanked."""
    out: dict[str, str] = {}
    for raw_name, value in headers:
        name = str(raw_name)  # aiohttp's case-insensitive istr is not a plain str
        shown = REDACTED if _sensitive(name) else value
        out[name] = f"{out[name]}, {shown}" if name in out else shown
    return out


@functools.lru_cache(maxsize=1024)
def _sensitive(name: str) -> bool:
    return _SENSITIVE_HEADER.search(name) is not None


def webhook_session(allow_networks: Sequence[IPNetwork], limit: int) -> aiohttp.ClientSession:
    """The HTTP client for callbacks: guarded resolver, bounded pool, no cookies, no env proxy."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_networks), limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


async def post_webhook(
    session: aiohttp.ClientSession,
    sub: Subscription,
    event_id: str,
    body: bytes,
    *,
    allow_networks: Sequence[IPNetwork],
    clock: Clock = time.time,
) -> AttemptResult:
    """POST ``body`` to ``sub``'s URL once and describe the result; never raises for I/O."""
    request_id = new_request_id()
    started_at = clock()
    started = time.monotonic()

    def result(
        status: int | None, error_class: ErrorClass | None, error: str | None
    ) -> AttemptResult:
        elapsed = round((time.monotonic() - started) * 1000)
        return AttemptResult(request_id, started_at, elapsed, status, error_class, error)

    blocked = _literal_refusal(sub.url, tuple(allow_networks))
    if blocked is not None:
        return result(None, ErrorClass.BLOCKED, blocked)
    settings = sub.delivery
    timeout = _timeout(settings.timeout_s, settings.connect_timeout_s)
    headers = request_headers(sub, event_id, body, started_at, request_id)
    try:
        async with session.post(
            sub.url, data=body, headers=headers, allow_redirects=False, timeout=timeout
        ) as response:
            answer = await _read_capped(response)
            elapsed = round((time.monotonic() - started) * 1000)
            ok = 200 <= response.status < 300
            return AttemptResult(
                request_id=request_id,
                started_at=started_at,
                duration_ms=elapsed,
                status=response.status,
                error_class=None if ok else ErrorClass.HTTP,
                error=None if ok else f"HTTP {response.status}",
                retry_after=response.headers.get("Retry-After"),
                response_body=answer,
                response_headers=redact_headers(response.headers.items()),
            )
    except aiohttp.ClientConnectorError as exc:
        if _blocked_cause(exc):
            return result(None, ErrorClass.BLOCKED, str(exc.os_error))
        kind = ErrorClass.DNS if isinstance(exc, aiohttp.ClientConnectorDNSError) else None
        return result(None, kind or ErrorClass.CONNECTION, str(exc))
    except TimeoutError:
        return result(None, ErrorClass.TIMEOUT, f"no answer within {settings.timeout_s:g}s")
    except aiohttp.InvalidURL as exc:
        return result(None, ErrorClass.BLOCKED, f"refused URL: {exc}")
    except (aiohttp.ClientError, OSError) as exc:
        return result(None, ErrorClass.CONNECTION, f"{type(exc).__name__}: {exc}")


@functools.lru_cache(maxsize=64)
def _timeout(total_s: float, connect_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total_s, sock_connect=connect_s)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """Up to RESPONSE_BODY_MAX_BYTES of the body; a stalled or cut body keeps what came."""
    if response.content_length == 0 or response.status in (204, 304):
        return b""  # no body, by definition
    chunks: list[bytes] = []
    size = 0
    try:
        while size < RESPONSE_BODY_MAX_BYTES:
            chunk = await response.content.read(RESPONSE_BODY_MAX_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        pass  # the status line decided the attempt; the body is only for the log
    return b"".join(chunks)


@functools.lru_cache(maxsize=1024)
def _literal_refusal(url: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: the guarded resolver checks what it resolves to
    reason = refusal(literal, allowed)
    return None if reason is None else f"{host} is {reason}"


def _blocked_cause(exc: aiohttp.ClientConnectorError) -> bool:
    return isinstance(exc.os_error, BlockedAddressError) or isinstance(
        exc.__cause__, BlockedAddressError
    )
