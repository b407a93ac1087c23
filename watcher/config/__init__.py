"""Configuration: YAML in, frozen validated values out.

Loading happens once, before anything starts. Every problem is collected - YAML syntax,
unknown keys, wrong types, dangling chain references, bad addresses, missing environment
variables - and raised together as one :class:`~watcher.errors.ConfigError` whose issues
name the dotted path and the YAML line, so an operator fixes the file in one pass.

The rest of watcher imports from this package; each step lives in a module of its own:
``source`` (YAML, lines, ``${ENV}``), ``models``, ``issues`` (pydantic errors located in the
file), ``chain_checks``, ``subscriptions``, ``watched_addresses``, ``credentials``,
``delivery_keys``, ``api_settings`` and ``loading``, which runs them all.
"""

from watcher.config.api_settings import MIN_API_TOKEN_CHARS
from watcher.config.delivery_keys import (
    DeliveryKeys,
    delivery_key_problems,
    delivery_settings,
    format_options,
)
from watcher.config.loading import load_config, parse_config
from watcher.config.models import (
    DEFAULT_RETRY_SCHEDULE_S,
    DEFAULT_ROTATION_OVERLAP_S,
    LOOPBACK,
    ApiConfig,
    ApiSettings,
    BlockSDKConfig,
    BlockVisionConfig,
    BloxConfig,
    Concurrency,
    DeliveryConfig,
    HeaderName,
    Label,
    LogConfig,
    MetricsConfig,
    Port,
    Schedule,
    Seconds,
    SignatureConfig,
    StoreConfig,
    SubscriptionConfig,
    WatcherConfig,
)
from watcher.config.source import Loc, format_loc

__all__ = [
    "DEFAULT_RETRY_SCHEDULE_S",
    "DEFAULT_ROTATION_OVERLAP_S",
    "LOOPBACK",
    "MIN_API_TOKEN_CHARS",
    "ApiConfig",
    "ApiSettings",
    "BlockSDKConfig",
    "BlockVisionConfig",
    "BloxConfig",
    "Concurrency",
    "DeliveryConfig",
    "DeliveryKeys",
    "HeaderName",
    "Label",
    "Loc",
    "LogConfig",
    "MetricsConfig",
    "Port",
    "Schedule",
    "Seconds",
    "SignatureConfig",
    "StoreConfig",
    "SubscriptionConfig",
    "WatcherConfig",
    "delivery_key_problems",
    "delivery_settings",
    "format_loc",
    "format_options",
    "load_config",
    "parse_config",
]
