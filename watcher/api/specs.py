"""The webhook resource: request and response models, and their validation. Pure.

A request body is first checked against the pydantic models (whose JSON Schema is also what
the OpenAPI document publishes), then against what a schema cannot say: the chain is one the
daemon follows, addresses carry valid EIP-55 checksums, conditions parse, the callback URL is
not refused by the SSRF guard, the delivery keys agree with each other (see
:mod:`watcher.api.delivery_fields`). Every problem names its field, as in the configuration
file.

``enabled`` is not part of the stored definition: it is the subscription's delivery state
(active or disabled), which the store keeps next to its error count, so that an automatic
disable and an operator's enable or disable all act on one status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from re import Pattern
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, ValidationError

from watcher import addresses, netguard
from watcher.api.delivery_fields import (
    DELIVERY_KEYS,
    DeliveryFields,
    DeliveryPolicyView,
    delivery_problems,
    delivery_view,
    settings_of,
    spec_settings,
)
from watcher.api.errors import FieldError, InvalidError
from watcher.chain_config import BitcoinChainConfig, ChainConfig, address_reader
from watcher.conditions import OPERATORS, AllOf, AnyOf, Condition, ConditionError, parse_conditions
from watcher.config import DeliveryConfig, format_loc
from watcher.models import Direction, EventType, JSONObject, Kind, Subscription
from watcher.policy import SubscriptionHealth
from watcher.registry import Entry, Source
from watcher.signing import parse_secret
from watcher.store import SubscriptionState

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Any chain's address form (0x hex, Base58, Bech32, CashAddr with its prefix); the chain's own
# rules are applied by normalise(). Token contracts are always Ethereum addresses.
ADDRESS_PATTERN = r"^[0-9A-Za-z:]{14,120}$"
CONTRACT_PATTERN = r"^0x[0-9a-fA-F]{40}$"
MAX_OVERLAP_S = 30 * 86400.0
DEFAULT_EVENTS: list[EventType] = [e for e in EventType if e is not EventType.BLOCK_MINED]

Address = Annotated[str, Field(pattern=ADDRESS_PATTERN, examples=[f"0x{'ab' * 20}"])]
TokenAddress = Annotated[str, Field(pattern=CONTRACT_PATTERN, examples=[f"0x{'cd' * 20}"])]
Operator = Literal[OPERATORS]  # type: ignore[valid-type]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionItem(_Model):
    """One condition (``key``, ``condition``, ``value``) or a group (``any:`` / ``all:``)."""

    key: Annotated[str, Field(min_length=1)] | None = None
    condition: Operator | None = None
    value: Any = Field(
        default=None,
        description="A string, number, boolean or list; amounts may carry a unit: '1.5 ether'.",
    )
    any: Annotated[list[ConditionItem], Field(min_length=1)] | None = None
    all: Annotated[list[ConditionItem], Field(min_length=1)] | None = None


class _Target(_Model):
    """What to watch and where to send it."""

    chain: Annotated[str, Field(pattern=NAME_PATTERN, description="A configured chain.")]
    url: Annotated[str, Field(min_length=1, max_length=2048, description="http(s) callback.")]
    events: Annotated[list[EventType], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS)
    )
    addresses: list[Address] = Field(default_factory=list)
    tokens: list[TokenAddress] = Field(default_factory=list)
    kinds: Annotated[list[Kind], Field(min_length=1)] = Field(default_factory=lambda: list(Kind))
    direction: Literal["in", "out", "any"] = "any"
    conditions: list[ConditionItem] | None = None
    confirmations: Annotated[int, Strict(), Field(ge=1, le=10_000)] | None = Field(
        default=None, description="Depth for tx.confirmed; null: the chain's default."
    )


class WebhookFields(DeliveryFields, _Target):
    """A subscription's definition: what to watch, where to send it and how."""

    enabled: StrictBool | None = Field(
        default=None,
        description="Whether deliveries are sent; null or absent: as it is (a new webhook: "
        "true). A disabled webhook keeps recording events and sends them once enabled.",
    )


class WebhookCreate(WebhookFields):
    """``POST /api/webhooks``: a definition, and optionally the id to give it."""

    id: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="Generated when absent."
    )


class AddressesBody(_Model):
    """``POST /api/webhooks/{id}/addresses``: addresses to add."""

    addresses: Annotated[list[Address], Field(min_length=1)]


class RotateBody(_Model):
    """``POST /api/webhooks/{id}/rotate-secret`` (optional body)."""

    overlap_s: Annotated[float, Strict(), Field(ge=0, le=MAX_OVERLAP_S)] | None = Field(
        default=None,
        description="How long the old secret keeps signing next to the new one; 0 retires "
        "it at once (a leaked secret). Default: the daemon's api.rotation_overlap_s.",
    )


Status = Literal["active", "disabled"]


class _TargetView(BaseModel):
    id: str
    source: Source
    chain: str
    url: str
    events: list[EventType]
    addresses: list[str]
    tokens: list[str]
    kinds: list[Kind]
    direction: Literal["in", "out", "any"]
    conditions: list[ConditionItem] | None
    confirmations: int | None


class WebhookView(DeliveryPolicyView, _TargetView):
    """A subscription as the API shows it (never its secret), with its delivery state."""

    enabled: bool
    status: Status = Field(description="disabled: by an operator, a 410 Gone, or auto-disable.")
    disabled_reason: str | None
    callback_error_count: int = Field(description="Failed attempts since it was created.")
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    failing_since: datetime | None = Field(description="The first failure since the last 2xx.")
    pending_deliveries: int
    failed_deliveries: int = Field(description="Gave up after the last retry; can be replayed.")
    created_at: datetime | None
    updated_at: datetime | None
    problem: str | None = Field(description="Why it is not running; null when it is.")


class CreatedWebhook(WebhookView):
    """A new subscription, with its signing secret: shown this once."""

    secret: str


class RotatedSecret(BaseModel):
    """A new signing secret: shown this once."""

    id: str
    secret: str
    previous_secret_until: datetime | None = Field(
        description="Until then the replaced secret signs too; null: it no longer does."
    )


@dataclass(frozen=True, slots=True)
class Context:
    """What validation checks a definition against: the running chains and URL policy."""

    chains: Mapping[str, ChainConfig]
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=tuple
    )
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)


_M = TypeVar("_M", bound=BaseModel)


def parse_model(model: type[_M], body: Any) -> _M:
    """``body`` validated as ``model``; InvalidError naming each bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidError("the request body is invalid", _pydantic_errors(exc, body)) from None


def normalise(fields: WebhookFields, ctx: Context) -> dict[str, Any]:
    """The stored form of a definition: checked beyond the schema, addresses lower-case.

    Raises InvalidError with every problem found.
    """
    errors: list[FieldError] = []
    chain = ctx.chains.get(fields.chain)
    if chain is None:
        known = ", ".join(sorted(ctx.chains)) or "none"
        errors.append(FieldError("chain", f"no chain named '{fields.chain}' (known: {known})"))
    read = address_reader(chain) if chain is not None else addresses.normalize_ethereum
    watched = _addresses(fields.addresses, "addresses", errors, read)
    tokens = _addresses(fields.tokens, "tokens", errors, addresses.normalize_ethereum)
    if isinstance(chain, BitcoinChainConfig):
        # Bitcoin-family chains move one thing, the coin itself (as in the config file).
        if tokens:
            errors.append(FieldError("tokens", "Bitcoin-family chains have no tokens"))
        if Kind.NATIVE not in fields.kinds:
            errors.append(FieldError("kinds", "Bitcoin-family chains only have native payments"))
    events = list(dict.fromkeys(fields.events))
    if set(events) != {EventType.BLOCK_MINED} and not watched and not tokens:
        errors.append(
            FieldError("addresses", "give addresses or tokens (only block.mined needs none)")
        )
    conditions = (
        None
        if fields.conditions is None
        else [c.model_dump(mode="json", exclude_unset=True) for c in fields.conditions]
    )
    try:
        parse_conditions(conditions)
    except ConditionError as exc:
        errors.append(FieldError(format_loc(("conditions", *exc.path)), exc.message))
    url_problem = callback_url_problem(fields.url, ctx.allow_networks)
    if url_problem is not None:
        errors.append(FieldError("url", url_problem))
    errors.extend(delivery_problems(fields))
    if errors:
        raise InvalidError("the webhook definition is invalid", errors)
    return {
        "chain": fields.chain,
        "url": fields.url,
        "events": [e.value for e in events],
        "addresses": sorted(watched),
        "tokens": sorted(tokens),
        "kinds": [k.value for k in dict.fromkeys(fields.kinds)],
        "direction": fields.direction,
        "conditions": conditions,
        "confirmations": fields.confirmations,
        **fields.model_dump(mode="json", include=set(DELIVERY_KEYS)),
    }


def build(
    subscription_id: str,
    spec: JSONObject,
    secret: str,
    ctx: Context,
    previous_secret: str | None = None,
    previous_secret_until: float | None = None,
) -> Subscription:
    """The runnable subscription of a stored (normalised) definition.

    ``previous_secret`` is the one a rotation replaced: it signs too until
    ``previous_secret_until``.
    """
    fields = parse_model(WebhookFields, spec)
    spec = normalise(fields, ctx)
    chain = ctx.chains[fields.chain]
    previous = None if previous_secret is None else parse_secret(previous_secret)
    return Subscription(
        id=subscription_id,
        chain=fields.chain,
        addresses=frozenset(spec["addresses"]),
        events=frozenset(EventType(e) for e in spec["events"]),
        confirmations=fields.confirmations or chain.confirmations,
        url=fields.url,
        secret=parse_secret(secret),
        tokens=frozenset(spec["tokens"]),
        kinds=frozenset(Kind(k) for k in spec["kinds"]),
        direction=None if fields.direction == "any" else Direction(fields.direction),
        condition=parse_conditions(spec["conditions"]),
        delivery=settings_of(fields, ctx.delivery, previous, previous_secret_until),
    )


def stored_entry(
    subscription_id: str,
    spec: JSONObject,
    secret: str,
    created_at: float,
    updated_at: float,
    ctx: Context,
    previous_secret: str | None = None,
    previous_secret_until: float | None = None,
) -> Entry:
    """The registry entry of a stored definition; not runnable, with the reason, if invalid."""
    try:
        sub: Subscription | None = build(
            subscription_id, spec, secret, ctx, previous_secret, previous_secret_until
        )
        problem = None
    except InvalidError as exc:
        sub = None
        problem = "; ".join(str(e) for e in exc.errors) or exc.message
    return Entry(subscription_id, Source.API, sub, spec, created_at, updated_at, problem)


def view(entry: Entry, state: SubscriptionState | None, defaults: DeliveryConfig) -> WebhookView:
    """How the API shows ``entry``; ``state`` None: the store has not seen it yet (active)."""
    sub = entry.subscription
    spec = dict(entry.spec) if entry.spec is not None else (describe(sub) if sub else {})
    settings = sub.delivery if sub is not None else spec_settings(spec, defaults)
    if state is None:
        state = SubscriptionState(
            SubscriptionHealth(entry.id, "active", 0, None, 0, None), None, None, 0, 0
        )
    health = state.health
    return WebhookView(
        id=entry.id,
        source=entry.source,
        chain=spec.get("chain", ""),
        url=spec.get("url", ""),
        events=spec.get("events", []),
        addresses=[addresses.checksum_ethereum(a) for a in spec.get("addresses", [])],
        tokens=[addresses.checksum_ethereum(a) for a in spec.get("tokens", [])],
        kinds=spec.get("kinds", []),
        direction=spec.get("direction", "any"),
        conditions=spec.get("conditions"),
        confirmations=sub.confirmations if sub is not None else spec.get("confirmations"),
        **delivery_view(settings).model_dump(),
        enabled=health.status != "disabled",
        status="disabled" if health.status == "disabled" else "active",
        disabled_reason=health.disabled_reason,
        callback_error_count=health.callback_error_count,
        last_success_at=_time(health.last_success_at),
        last_attempt_at=_time(state.last_attempt_at),
        failing_since=_time(health.failing_since),
        pending_deliveries=state.pending,
        failed_deliveries=state.failed,
        created_at=_time(entry.created_at),
        updated_at=_time(entry.updated_at),
        problem=entry.problem,
    )


def describe(sub: Subscription) -> dict[str, Any]:
    """The definition of a subscription from the file, in the API's terms."""
    return {
        "chain": sub.chain,
        "url": sub.url,
        "events": [e.value for e in EventType if e in sub.events],
        "addresses": sorted(sub.addresses),
        "tokens": sorted(sub.tokens),
        "kinds": [k.value for k in Kind if k in sub.kinds],
        "direction": sub.direction.value if sub.direction is not None else "any",
        "conditions": render_conditions(sub.condition),
        "confirmations": sub.confirmations,
    }


def render_conditions(condition: Condition) -> list[dict[str, Any]] | None:
    """A parsed condition tree back in its list form (amounts in base units)."""
    if isinstance(condition, AllOf):
        return [_render(c) for c in condition.members] or None
    return [_render(condition)]


def _render(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, AnyOf):
        return {"any": [_render(c) for c in condition.members]}
    if isinstance(condition, AllOf):
        return {"all": [_render(c) for c in condition.members]}
    item: dict[str, Any] = {"key": condition.key, "condition": condition.op}
    if condition.value is not None:
        item["value"] = _operand(condition.value)
    return item


def _operand(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_operand(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, Pattern):
        return value.pattern
    return value


def callback_url_problem(
    url: str, allow_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    """Why ``url`` cannot be a callback (not http(s), or a refused literal address)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "must be an http(s) URL with a host"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL with a host"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: checked after resolution, at delivery time
    reason = netguard.refusal(literal, tuple(allow_networks))
    if reason is not None:
        return f"{host} is {reason}; the daemon's delivery.allow_networks does not list it"
    return None


def normalise_addresses(
    texts: Iterable[str], read: Callable[[str], str], name: str = "addresses"
) -> list[str]:
    """Addresses in the canonical form ``read`` gives; InvalidError naming each bad one."""
    errors: list[FieldError] = []
    out = _addresses(texts, name, errors, read)
    if errors:
        raise InvalidError("the request body is invalid", errors)
    return out


def _addresses(
    texts: Iterable[str], name: str, errors: list[FieldError], read: Callable[[str], str]
) -> list[str]:
    out: dict[str, None] = {}
    for i, text in enumerate(texts):
        try:
            out[read(text)] = None
        except ValueError as exc:
            errors.append(FieldError(f"{name}[{i}]", f"'{text}' {exc}"))
    return list(out)


def _time(at: float | None) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at is not None else None


def _pydantic_errors(exc: ValidationError, body: Any) -> list[FieldError]:
    """One FieldError per field, located by the keys and indexes of ``body``."""
    by_field: dict[str, list[str]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        path: list[str | int] = []
        node = body
        for part in error["loc"]:
            if isinstance(node, dict) and part in node:
                node = node[part]
                path.append(str(part))
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                path.append(part)
            elif error["type"] in ("missing", "extra_forbidden") and isinstance(part, str):
                path.append(part)
                break
        message = error["msg"]
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        by_field.setdefault(format_loc(path), []).append(message)
    return [FieldError(f, " or ".join(dict.fromkeys(m))) for f, m in by_field.items()]
