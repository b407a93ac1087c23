"""The models of the configuration file and the validated configuration the daemon runs on.

Each section is a frozen pydantic model that forbids unknown keys, so that a misspelt key
is reported instead of silently leaving a default in place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, SecretStr, ValidationError

from watcher.btc_addresses import Network
from watcher.chain_config import ChainConfig, Name, PositiveSeconds, TaggedChainConfig
from watcher.models import (
    STANDARD_RETRY_SCHEDULE_S,
    EventType,
    Kind,
    PayloadFormat,
    SignatureScheme,
    Subscription,
)

Seconds = Annotated[float, Field(ge=0)]
Schedule = Annotated[tuple[PositiveSeconds, ...], Field(min_length=1, max_length=100)]
Concurrency = Annotated[int, Field(ge=1, le=1024)]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")]
Label = Annotated[str, Field(min_length=1, max_length=200)]

# The Standard Webhooks retry schedule, in seconds.
DEFAULT_RETRY_SCHEDULE_S = STANDARD_RETRY_SCHEDULE_S
Port = Annotated[int, Field(ge=0, le=65535)]
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
DEFAULT_ROTATION_OVERLAP_S = 86400.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Model):
    """Where the durable outbox and chain cursors live."""

    path: Path = Path("watcher.db")


class LogConfig(_Model):
    """Log verbosity and rendering."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class DeliveryConfig(_Model):
    """How webhooks leave the outbox; subscriptions may override the policy keys."""

    concurrency: Concurrency = 32
    endpoint_concurrency: Concurrency = 8
    connect_timeout_s: PositiveSeconds = 5.0
    timeout_s: PositiveSeconds = 15.0
    retry_schedule_s: Schedule = DEFAULT_RETRY_SCHEDULE_S
    retry_after_max_s: Seconds = 86400.0
    slow_down_min_s: Seconds = 60.0
    disable_after_s: Seconds = 5 * 86400.0
    disable_after_exhausted: Annotated[int, Field(ge=1)] = 3
    attempt_log_retention_days: Annotated[float, Field(gt=0)] = 30.0
    poll_interval_s: PositiveSeconds = 1.0
    drain_timeout_s: PositiveSeconds = 10.0
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


class SignatureConfig(_Model):
    """An extra signature header for receivers written for another service."""

    scheme: SignatureScheme = SignatureScheme.STANDARD
    header: HeaderName | None = None
    encoding: Literal["hex", "base64", "base64-hex"] = "hex"


class BlockSDKConfig(_Model):
    """Labels of the ``blocksdk`` payload format."""

    webhook_id: int | Label | None = None
    symbol: Label = "eth"
    api_token: SecretStr


class BlockVisionConfig(_Model):
    """Labels of the ``blockvision`` payload format."""

    app: Label | None = None
    network: Label = "Mainnet"


class BloxConfig(_Model):
    """Labels of the ``blox`` payload format."""

    application: Label = "watcher"


class SubscriptionConfig(_Model):
    """One subscriber: which addresses and events, and where to send them."""

    id: Name
    chain: str
    addresses: tuple[str, ...] = ()
    addresses_file: Path | None = None
    events: Annotated[tuple[EventType, ...], Field(min_length=1)] = tuple(
        e for e in EventType if e is not EventType.BLOCK_MINED
    )
    confirmations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    tokens: tuple[str, ...] = ()
    kinds: Annotated[tuple[Kind, ...], Field(min_length=1)] = tuple(Kind)
    direction: Literal["in", "out", "any"] = "any"
    conditions: list[Any] | None = None
    url: str
    secret: SecretStr | None = None
    secret_file: Path | None = None
    previous_secret: SecretStr | None = None
    previous_secret_file: Path | None = None
    previous_secret_until: datetime | None = None
    format: PayloadFormat = PayloadFormat.NATIVE
    blocksdk: BlockSDKConfig | None = None
    blockvision: BlockVisionConfig | None = None
    blox: BloxConfig | None = None
    signature: SignatureConfig = SignatureConfig()
    ordered: bool = False
    delay_s: Seconds = 0.0
    rate_limit_per_s: Annotated[float, Field(gt=0)] | None = None
    # Overrides of the delivery defaults.
    endpoint_concurrency: Concurrency | None = None
    connect_timeout_s: PositiveSeconds | None = None
    timeout_s: PositiveSeconds | None = None
    retry_schedule_s: Schedule | None = None
    retry_after_max_s: Seconds | None = None
    slow_down_min_s: Seconds | None = None
    disable_after_s: Seconds | None = None
    disable_after_exhausted: Annotated[int, Field(ge=1)] | None = None


class ApiConfig(_Model):
    """The admin HTTP API: off unless this section is present."""

    listen: IPvAnyAddress = LOOPBACK
    port: Port
    token: SecretStr | None = None
    token_file: Path | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    # How long a secret replaced through the API still signs (next to the new one).
    rotation_overlap_s: Seconds = DEFAULT_ROTATION_OVERLAP_S


class MetricsConfig(_Model):
    """Prometheus metrics and health checks: their own listener, no token."""

    listen: IPvAnyAddress = LOOPBACK
    port: Port
    ready_max_lag_blocks: Annotated[int, Field(ge=0)] = 20
    ready_max_poll_age_s: PositiveSeconds = 60.0


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The admin API as the daemon runs it: where it listens and the resolved token."""

    listen: str
    port: int
    token: str = field(repr=False)
    max_body_bytes: int = 4 * 1024 * 1024
    rotation_overlap_s: float = DEFAULT_ROTATION_OVERLAP_S


class _FileModel(_Model):
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    chains: Annotated[tuple[TaggedChainConfig, ...], Field(min_length=1)]
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    api: ApiConfig | None = None
    metrics: MetricsConfig | None = None


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    """The validated configuration the daemon runs on."""

    source: Path
    store: StoreConfig
    log: LogConfig
    delivery: DeliveryConfig
    chains: tuple[ChainConfig, ...]
    subscriptions: tuple[Subscription, ...]
    # For each Bitcoin-family chain, the networks its node may serve (configured or inferred
    # from the watched addresses; empty: any).
    networks: Mapping[str, frozenset[Network]] = field(default_factory=dict)
    api: ApiSettings | None = None
    metrics: MetricsConfig | None = None

    def chain(self, name: str) -> ChainConfig:
        """The chain called ``name``; it exists, since subscriptions were checked against it."""
        return next(c for c in self.chains if c.name == name)


_M = TypeVar("_M", bound=BaseModel)


def _valid(model: type[_M], value: Any) -> _M | None:
    """``value`` validated as ``model``, or None: the whole-file validation reports why."""
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _valid_items(data: Mapping[str, Any], key: str, model: type[_M]) -> list[tuple[int, _M]]:
    """The items of the list ``data[key]`` that are valid on their own, with their index."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    valid = ((index, _valid(model, item)) for index, item in enumerate(items))
    return [(index, item) for index, item in valid if item is not None]
