"""A webhook's delivery keys in the API: payload format, signature, retry policy, pacing. Pure.

They are the per-subscription keys of the configuration file (see ``config.example.yaml``)
under the same names, checked by the same cross-field rules and resolved into the same
:class:`~watcher.models.DeliverySettings`; a policy key left null takes the daemon's
``delivery`` default. Two differences from the file: the API bounds durations and rates
(no request can make a delivery wait for years, or time out after a nanosecond), and
BlockSDK's ``api_token`` is given in the request itself and never shown again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, ValidationError

from watcher.api.errors import FieldError
from watcher.config import (
    BlockVisionConfig,
    BloxConfig,
    DeliveryConfig,
    SignatureConfig,
    delivery_key_problems,
    delivery_settings,
    format_loc,
    format_options,
)
from watcher.formats import api_token_md5
from watcher.models import DeliverySettings, FormatOptions, PayloadFormat, SignatureScheme

DAY_S = 86400.0
# Numbers are strict: JSON's true and "5" are not numbers, whatever Python thinks.
Timeout = Annotated[float, Strict(), Field(ge=0.1, le=3600)]
Wait = Annotated[float, Strict(), Field(ge=0, le=30 * DAY_S)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Rate = Annotated[float, Strict(), Field(ge=0.001, le=10_000)]
Step = Annotated[float, Strict(), Field(gt=0, le=30 * DAY_S)]
Schedule = Annotated[tuple[Step, ...], Field(min_length=1, max_length=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockSDKLabels(_Model):
    """Labels of the ``blocksdk`` format; the token is sent as its MD5 and never shown."""

    webhook_id: StrictInt | Label | None = None
    symbol: Label = "eth"
    api_token: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        json_schema_extra={"writeOnly": True}
    )


class DeliveryFields(_Model):
    """How the webhook's deliveries are made; null policy keys take the daemon's defaults."""

    format: PayloadFormat = PayloadFormat.NATIVE
    blocksdk: BlockSDKLabels | None = None
    blockvision: BlockVisionConfig | None = None
    blox: BloxConfig | None = None
    signature: SignatureConfig = Field(default_factory=SignatureConfig)
    ordered: StrictBool = Field(
        default=False, description="One delivery at a time: the next waits for this one's 2xx."
    )
    delay_s: Wait = Field(default=0.0, description="A delivery becomes due this long after.")
    rate_limit_per_s: Rate | None = None
    endpoint_concurrency: Annotated[int, Strict(), Field(ge=1, le=1024)] | None = None
    connect_timeout_s: Timeout | None = None
    timeout_s: Timeout | None = None
    retry_schedule_s: Schedule | None = Field(
        default=None, description="The waits after the 1st, 2nd, ... failure."
    )
    retry_after_max_s: Wait | None = None
    slow_down_min_s: Annotated[float, Strict(), Field(ge=0, le=DAY_S)] | None = None
    disable_after_s: Annotated[float, Strict(), Field(ge=0, le=365 * DAY_S)] | None = None
    disable_after_exhausted: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None


DELIVERY_KEYS = frozenset(DeliveryFields.model_fields)


class BlockSDKView(BaseModel):
    """The ``blocksdk`` labels as shown (never the token)."""

    webhook_id: int | str | None
    symbol: str


class SignatureView(BaseModel):
    """The compatibility signature as shown."""

    scheme: SignatureScheme
    header: str | None
    encoding: str


class DeliveryPolicyView(BaseModel):
    """How the webhook's deliveries are made, with the daemon's defaults filled in."""

    format: PayloadFormat
    blocksdk: BlockSDKView | None
    blockvision: BlockVisionConfig | None
    blox: BloxConfig | None
    signature: SignatureView
    ordered: bool
    delay_s: float
    rate_limit_per_s: float | None
    endpoint_concurrency: int
    connect_timeout_s: float
    timeout_s: float
    retry_schedule_s: list[float]
    retry_after_max_s: float
    slow_down_min_s: float
    disable_after_s: float
    disable_after_exhausted: int
    previous_secret_until: datetime | None = Field(
        description="Until then the secret a rotation replaced signs too (both are sent)."
    )


def delivery_problems(fields: DeliveryFields) -> list[FieldError]:
    """The cross-field rules the file applies, with the API's field names."""
    problems = delivery_key_problems(fields, blocksdk_given=fields.blocksdk is not None)
    return [FieldError(format_loc(loc), message) for loc, message in problems]


def settings_of(
    fields: DeliveryFields,
    defaults: DeliveryConfig,
    previous_secret: bytes | None = None,
    previous_secret_until: float | None = None,
) -> DeliverySettings:
    """The delivery settings of valid fields."""
    blocksdk = None
    if fields.blocksdk is not None:
        blocksdk = FormatOptions(
            blocksdk_webhook_id=fields.blocksdk.webhook_id,
            blocksdk_symbol=fields.blocksdk.symbol,
            blocksdk_api_token_md5=api_token_md5(fields.blocksdk.api_token),
        )
    options = format_options(fields, blocksdk)
    return delivery_settings(fields, defaults, options, previous_secret, previous_secret_until)


def spec_settings(spec: Mapping[str, Any], defaults: DeliveryConfig) -> DeliverySettings:
    """The settings a stored definition asks for; the defaults where its keys do not parse.

    Only for showing a definition that cannot run (its ``problem`` says why).
    """
    try:
        fields = DeliveryFields.model_validate(
            {k: v for k, v in spec.items() if k in DELIVERY_KEYS}
        )
    except ValidationError:
        fields = DeliveryFields()
    return settings_of(fields, defaults)


def delivery_view(settings: DeliverySettings) -> DeliveryPolicyView:
    """How the API shows delivery settings."""
    fmt, options, policy = settings.format, settings.format_options, settings.policy
    blocksdk = blockvision = blox = None
    if fmt is PayloadFormat.BLOCKSDK:
        blocksdk = BlockSDKView(
            webhook_id=options.blocksdk_webhook_id, symbol=options.blocksdk_symbol
        )
    elif fmt is PayloadFormat.BLOCKVISION:
        blockvision = BlockVisionConfig(
            app=options.blockvision_app, network=options.blockvision_network
        )
    elif fmt is PayloadFormat.BLOX:
        blox = BloxConfig(application=options.blox_application)
    signature = settings.signature
    until = settings.previous_secret_until if settings.previous_secret is not None else None
    return DeliveryPolicyView(
        format=fmt,
        blocksdk=blocksdk,
        blockvision=blockvision,
        blox=blox,
        signature=SignatureView(
            scheme=signature.scheme, header=signature.header, encoding=signature.encoding
        ),
        ordered=settings.ordered,
        delay_s=settings.delay_s,
        rate_limit_per_s=settings.rate_limit_per_s,
        endpoint_concurrency=settings.endpoint_concurrency,
        connect_timeout_s=settings.connect_timeout_s,
        timeout_s=settings.timeout_s,
        retry_schedule_s=list(policy.schedule_s),
        retry_after_max_s=policy.retry_after_max_s,
        slow_down_min_s=policy.slow_down_min_s,
        disable_after_s=policy.disable_after_s,
        disable_after_exhausted=policy.disable_after_exhausted,
        previous_secret_until=datetime.fromtimestamp(until, UTC) if until is not None else None,
    )
