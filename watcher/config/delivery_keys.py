"""A subscription's delivery keys: their checks and the settings they resolve to.

The configuration file and the admin API both take these keys, so both check and resolve
them with the same functions, and an operator reads the same message from either.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from watcher.config.credentials import _env_only, _read_key
from watcher.config.models import (
    BlockVisionConfig,
    BloxConfig,
    DeliveryConfig,
    SignatureConfig,
    SubscriptionConfig,
)
from watcher.config.source import Loc, _YamlDocument
from watcher.errors import ConfigIssue
from watcher.formats import api_token_md5
from watcher.models import (
    DeliverySettings,
    FormatOptions,
    PayloadFormat,
    RetryPolicy,
    SignatureScheme,
    SignatureSettings,
)

# Headers watcher sets itself; a compatibility signature may not take their place.
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "x-request-id"}
)


class DeliveryKeys(Protocol):
    """A subscription's delivery keys, as the file and the admin API both give them.

    The policy keys are overrides: None takes the ``delivery`` section's value. The
    ``blocksdk`` labels are not here: the file and the API hold its token differently.
    """

    @property
    def format(self) -> PayloadFormat: ...
    @property
    def signature(self) -> SignatureConfig: ...
    @property
    def blockvision(self) -> BlockVisionConfig | None: ...
    @property
    def blox(self) -> BloxConfig | None: ...
    @property
    def ordered(self) -> bool: ...
    @property
    def delay_s(self) -> float: ...
    @property
    def rate_limit_per_s(self) -> float | None: ...
    @property
    def endpoint_concurrency(self) -> int | None: ...
    @property
    def connect_timeout_s(self) -> float | None: ...
    @property
    def timeout_s(self) -> float | None: ...
    @property
    def retry_schedule_s(self) -> tuple[float, ...] | None: ...
    @property
    def retry_after_max_s(self) -> float | None: ...
    @property
    def slow_down_min_s(self) -> float | None: ...
    @property
    def disable_after_s(self) -> float | None: ...
    @property
    def disable_after_exhausted(self) -> int | None: ...


def delivery_key_problems(keys: DeliveryKeys, *, blocksdk_given: bool) -> list[tuple[Loc, str]]:
    """What the delivery keys get wrong together, each at its place under the subscription."""
    problems: list[tuple[Loc, str]] = []
    signature = keys.signature
    if signature.scheme is SignatureScheme.HMAC_SHA256:
        if signature.header is None:
            problems.append(
                (("signature", "scheme"), "hmac-sha256 needs a header, e.g. X-Hook-Signature")
            )
        elif signature.header.lower() in _RESERVED_HEADERS or signature.header.lower().startswith(
            "webhook-"
        ):
            problems.append((("signature", "header"), "is a header watcher sets itself"))
    elif signature.header is not None:
        problems.append((("signature", "header"), "is only used with scheme hmac-sha256"))
    if signature.scheme is SignatureScheme.BLOCKVISION and keys.format not in (
        PayloadFormat.NATIVE,
        PayloadFormat.BLOCKVISION,
    ):
        problems.append(
            (
                ("signature", "scheme"),
                "blockvision signs the body's timestamp: use format blockvision or native",
            )
        )
    given = {
        PayloadFormat.BLOCKSDK: blocksdk_given,
        PayloadFormat.BLOCKVISION: keys.blockvision is not None,
        PayloadFormat.BLOX: keys.blox is not None,
    }
    for fmt, present in given.items():
        if present and keys.format is not fmt:
            problems.append(((fmt.value,), f"is only used with format {fmt.value}"))
    if keys.format is PayloadFormat.BLOCKSDK and not blocksdk_given:
        problems.append((("blocksdk",), "format blocksdk needs blocksdk.api_token"))
    return problems


def format_options(keys: DeliveryKeys, blocksdk: FormatOptions | None = None) -> FormatOptions:
    """The labels of the subscription's payload format; ``blocksdk``'s come resolved."""
    if keys.format is PayloadFormat.BLOCKSDK and blocksdk is not None:
        return blocksdk
    if keys.format is PayloadFormat.BLOCKVISION and keys.blockvision is not None:
        return FormatOptions(
            blockvision_app=keys.blockvision.app, blockvision_network=keys.blockvision.network
        )
    if keys.format is PayloadFormat.BLOX and keys.blox is not None:
        return FormatOptions(blox_application=keys.blox.application)
    return FormatOptions()


def delivery_settings(
    keys: DeliveryKeys,
    defaults: DeliveryConfig,
    options: FormatOptions,
    previous_secret: bytes | None = None,
    previous_secret_until: float | None = None,
) -> DeliverySettings:
    """The settings of valid keys: each policy key the subscription's own, else the default."""

    def pick(name: str) -> Any:
        own = getattr(keys, name)
        return own if own is not None else getattr(defaults, name)

    signature = keys.signature
    return DeliverySettings(
        format=keys.format,
        format_options=options,
        signature=SignatureSettings(signature.scheme, signature.header, signature.encoding),
        previous_secret=previous_secret,
        previous_secret_until=previous_secret_until,
        policy=RetryPolicy(
            schedule_s=tuple(pick("retry_schedule_s")),
            retry_after_max_s=pick("retry_after_max_s"),
            slow_down_min_s=pick("slow_down_min_s"),
            disable_after_s=pick("disable_after_s"),
            disable_after_exhausted=pick("disable_after_exhausted"),
        ),
        connect_timeout_s=pick("connect_timeout_s"),
        timeout_s=pick("timeout_s"),
        endpoint_concurrency=pick("endpoint_concurrency"),
        rate_limit_per_s=keys.rate_limit_per_s,
        ordered=keys.ordered,
        delay_s=keys.delay_s,
    )


def _delivery_settings(
    sub: SubscriptionConfig,
    defaults: DeliveryConfig,
    loc: Loc,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> DeliverySettings | None:
    """The subscription's delivery policy: its own keys, else the ``delivery`` defaults."""
    before = len(issues)
    for where, message in delivery_key_problems(sub, blocksdk_given=sub.blocksdk is not None):
        issues.append(doc.issue((*loc, *where), message))
    blocksdk: FormatOptions | None = None
    if sub.blocksdk is not None:
        token = _env_only(sub.blocksdk.api_token, (*loc, "blocksdk", "api_token"), doc, issues)
        blocksdk = FormatOptions(
            blocksdk_webhook_id=sub.blocksdk.webhook_id,
            blocksdk_symbol=sub.blocksdk.symbol,
            blocksdk_api_token_md5=None if token is None else api_token_md5(token),
        )
    previous: bytes | None = None
    until: float | None = None
    if sub.previous_secret is not None or sub.previous_secret_file is not None:
        previous = _read_key(sub, "previous_secret", loc, base_dir, doc, issues)
        if sub.previous_secret_until is None:
            issues.append(
                doc.issue(
                    (*loc, "previous_secret_until"),
                    "is required with previous_secret: when the overlap ends",
                )
            )
        else:
            when = sub.previous_secret_until
            until = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    elif sub.previous_secret_until is not None:
        issues.append(
            doc.issue((*loc, "previous_secret_until"), "only makes sense with previous_secret")
        )
    if len(issues) > before:
        return None
    return delivery_settings(sub, defaults, format_options(sub, blocksdk), previous, until)
