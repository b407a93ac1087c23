"""Configuration: YAML in, frozen validated values out.

Loading happens once, before anything starts. Every problem is collected - YAML syntax,
unknown keys, wrong types, dangling chain references, bad addresses, missing environment
variables - and raised together as one :class:`~watcher.errors.ConfigError` whose issues
name the dotted path and the YAML line, so an operator fixes the file in one pass.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from watcher import addresses, netguard
from watcher.errors import ConfigError, ConfigIssue
from watcher.formats import api_token_md5
from watcher.models import (
    STANDARD_RETRY_SCHEDULE_S,
    DeliverySettings,
    EventType,
    FormatOptions,
    PayloadFormat,
    RetryPolicy,
    SignatureScheme,
    SignatureSettings,
    Subscription,
)
from watcher.signing import SecretFormatError, parse_secret

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PositiveSeconds = Annotated[float, Field(gt=0)]
Seconds = Annotated[float, Field(ge=0)]
Schedule = Annotated[tuple[PositiveSeconds, ...], Field(min_length=1, max_length=100)]
Concurrency = Annotated[int, Field(ge=1, le=1024)]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")]
Label = Annotated[str, Field(min_length=1, max_length=200)]

# The Standard Webhooks retry schedule, in seconds.
DEFAULT_RETRY_SCHEDULE_S = STANDARD_RETRY_SCHEDULE_S
# Headers watcher sets itself; a compatibility signature may not take their place.
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "x-request-id"}
)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_ISSUES_PER_FILE = 20


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


class ChainConfig(_Model):
    """One node to follow."""

    name: Name
    kind: Literal["ethereum"]
    rpc_url: str
    chain_id: Annotated[int, Field(ge=0)] | None = None
    poll_interval_s: PositiveSeconds = 2.0
    start: Literal["latest"] | Annotated[int, Field(ge=0)] = "latest"
    confirmations: Annotated[int, Field(ge=1, le=10_000)] = 12
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    request_timeout_s: PositiveSeconds = 30.0


class SubscriptionConfig(_Model):
    """One subscriber: which addresses and events, and where to send them."""

    id: Name
    chain: str
    addresses: tuple[str, ...] = ()
    addresses_file: Path | None = None
    events: Annotated[tuple[EventType, ...], Field(min_length=1)] = (
        EventType.TX_MINED,
        EventType.TX_CONFIRMED,
    )
    confirmations: Annotated[int, Field(ge=1, le=10_000)] | None = None
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


class _FileModel(_Model):
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    chains: Annotated[tuple[ChainConfig, ...], Field(min_length=1)]
    subscriptions: tuple[SubscriptionConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    """The validated configuration the daemon runs on."""

    source: Path
    store: StoreConfig
    log: LogConfig
    delivery: DeliveryConfig
    chains: tuple[ChainConfig, ...]
    subscriptions: tuple[Subscription, ...]

    def chain(self, name: str) -> ChainConfig:
        """The chain called ``name``; it exists, since subscriptions were checked against it."""
        return next(c for c in self.chains if c.name == name)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> WatcherConfig:
    """Read, interpolate and validate the YAML file at ``path``.

    Raises ConfigError with every issue found; relative paths inside the file are taken
    relative to the file's own folder.
    """
    env = os.environ if environ is None else environ
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read file: {exc.strerror}")]) from exc
    return parse_config(text, base_dir=path.resolve().parent, source=path, environ=env)


def parse_config(
    text: str, *, base_dir: Path, source: Path, environ: Mapping[str, str]
) -> WatcherConfig:
    """Validate configuration ``text``; see :func:`load_config`."""
    doc = _YamlDocument.parse(text, str(source))
    issues = list(doc.issues)
    data = _interpolate(doc.data, (), environ, doc, issues)
    if not isinstance(data, dict):
        raise ConfigError(str(source), [*issues, ConfigIssue("", "must be a mapping of keys")])
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, doc))
        raise ConfigError(str(source), issues) from None
    subscriptions = _build_subscriptions(model, base_dir, doc, issues)
    if issues:
        raise ConfigError(str(source), issues)
    return WatcherConfig(
        source=source,
        store=model.store.model_copy(update={"path": _resolve(base_dir, model.store.path)}),
        log=model.log,
        delivery=model.delivery,
        chains=model.chains,
        subscriptions=subscriptions,
    )


def _resolve(base_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


# --- YAML with line numbers -------------------------------------------------------------

Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loading, except that ``0x...`` stays a string.

    Plain YAML reads an unquoted ``0x70997970...`` as a hexadecimal integer, which silently
    turns an Ethereum address into a number; addresses and hashes are far more common here
    than hexadecimal numbers.
    """


_Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.yaml_implicit_resolvers["0"].insert(
    0, ("tag:yaml.org,2002:str", re.compile(r"^0x[0-9a-fA-F_]+$"))
)


class _YamlDocument:
    """Parsed YAML plus the line of every value, keyed by its path."""

    def __init__(self, data: Any, lines: dict[Loc, int], issues: list[ConfigIssue]) -> None:
        self.data = data
        self.lines = lines
        self.issues = issues

    @classmethod
    def parse(cls, text: str, source: str) -> _YamlDocument:
        try:
            node = yaml.compose(text, Loader=_Loader)
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(source, [ConfigIssue("", f"invalid YAML: {problem}", line)]) from None
        lines: dict[Loc, int] = {}
        issues: list[ConfigIssue] = []
        if node is not None:
            _index_lines(node, (), lines, issues)
        return cls(data, lines, issues)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor present in the file."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return ConfigIssue(format_loc(loc), message, self.line(loc))


def _index_lines(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], issues: list[ConfigIssue]
) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                issues.append(
                    ConfigIssue(
                        format_loc((*loc, key)), "duplicate key", key_node.start_mark.line + 1
                    )
                )
            seen.add(key)
            _index_lines(value_node, (*loc, key), lines, issues)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*loc, index), lines, issues)


def format_loc(loc: Iterable[str | int]) -> str:
    """``("subscriptions", 2, "url")`` -> ``subscriptions[2].url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _interpolate(
    value: Any, loc: Loc, environ: Mapping[str, str], doc: _YamlDocument, issues: list[ConfigIssue]
) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable's value."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, str(k)), environ, doc, issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), environ, doc, issues) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            issues.append(doc.issue(loc, f"environment variable {name} is not set"))
            return ""
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)


# --- pydantic errors -> issues ----------------------------------------------------------


def _pydantic_issues(exc: ValidationError, doc: _YamlDocument) -> Iterator[ConfigIssue]:
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif error["type"] == "missing":
            message = "is required"
        yield doc.issue(loc, message)


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    """Drop pydantic's union-branch and function markers, keeping keys and list indexes."""
    fields = _all_field_names()
    return tuple(p for p in loc if isinstance(p, int) or p in fields)


def _all_field_names() -> set[str]:
    models: list[type[BaseModel]] = [
        _FileModel,
        StoreConfig,
        LogConfig,
        DeliveryConfig,
        ChainConfig,
        SubscriptionConfig,
        SignatureConfig,
        BlockSDKConfig,
        BlockVisionConfig,
        BloxConfig,
    ]
    return {name for model in models for name in model.model_fields}


def _unknown_key_message(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    key = str(loc[-1]) if loc else ""
    if model is None:
        return "unknown key"
    allowed = sorted(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {', '.join(allowed)}"
    return f"unknown key{hint}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] = _FileModel
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = [field.annotation, *get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


# --- cross-field checks and runtime subscriptions ---------------------------------------


def _build_subscriptions(
    model: _FileModel,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> tuple[Subscription, ...]:
    chains = {c.name: c for c in model.chains}
    for dup in _duplicates(c.name for c in model.chains):
        issues.append(doc.issue(("chains",), f"chain name '{dup}' is used more than once"))
    for dup in _duplicates(s.id for s in model.subscriptions):
        issues.append(
            doc.issue(("subscriptions",), f"subscription id '{dup}' is used more than once")
        )
    for index, chain in enumerate(model.chains):
        if not _is_http_url(chain.rpc_url):
            issues.append(doc.issue(("chains", index, "rpc_url"), "must be an http(s) URL"))

    built: list[Subscription] = []
    for index, sub in enumerate(model.subscriptions):
        loc: Loc = ("subscriptions", index)
        before = len(issues)
        found = chains.get(sub.chain)
        if found is None:
            known = ", ".join(sorted(chains))
            issues.append(
                doc.issue((*loc, "chain"), f"no chain named '{sub.chain}' (known: {known})")
            )
        watched = _subscription_addresses(sub, loc, base_dir, doc, issues)
        _check_url(sub.url, model.delivery, (*loc, "url"), doc, issues)
        secret = _subscription_secret(sub, loc, base_dir, doc, issues)
        delivery = _delivery_settings(sub, model.delivery, loc, base_dir, doc, issues)
        if found is None or secret is None or delivery is None or len(issues) > before:
            continue
        built.append(
            Subscription(
                id=sub.id,
                chain=sub.chain,
                addresses=frozenset(watched),
                events=frozenset(sub.events),
                confirmations=sub.confirmations or found.confirmations,
                url=sub.url,
                secret=secret,
                delivery=delivery,
            )
        )
    return tuple(built)


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
    _check_signature(sub, loc, doc, issues)
    options = _format_options(sub, loc, doc, issues)
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
    if len(issues) > before or options is None:
        return None

    def pick(name: str) -> Any:
        own = getattr(sub, name)
        return own if own is not None else getattr(defaults, name)

    return DeliverySettings(
        format=sub.format,
        format_options=options,
        signature=SignatureSettings(
            sub.signature.scheme, sub.signature.header, sub.signature.encoding
        ),
        previous_secret=previous,
        previous_secret_until=until,
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
        rate_limit_per_s=sub.rate_limit_per_s,
        ordered=sub.ordered,
        delay_s=sub.delay_s,
    )


def _check_signature(
    sub: SubscriptionConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> None:
    signature = sub.signature
    sig_loc = (*loc, "signature")
    if signature.scheme is SignatureScheme.HMAC_SHA256:
        if signature.header is None:
            issues.append(
                doc.issue((*sig_loc, "scheme"), "hmac-sha256 needs a header, e.g. X-Hook-Signature")
            )
        elif signature.header.lower() in _RESERVED_HEADERS or signature.header.lower().startswith(
            "webhook-"
        ):
            issues.append(doc.issue((*sig_loc, "header"), "is a header watcher sets itself"))
    elif signature.header is not None:
        issues.append(doc.issue((*sig_loc, "header"), "is only used with scheme hmac-sha256"))
    if signature.scheme is SignatureScheme.BLOCKVISION and sub.format not in (
        PayloadFormat.NATIVE,
        PayloadFormat.BLOCKVISION,
    ):
        issues.append(
            doc.issue(
                (*sig_loc, "scheme"),
                "blockvision signs the body's timestamp: use format blockvision or native",
            )
        )


def _format_options(
    sub: SubscriptionConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> FormatOptions | None:
    before = len(issues)
    for fmt in (PayloadFormat.BLOCKSDK, PayloadFormat.BLOCKVISION, PayloadFormat.BLOX):
        if getattr(sub, fmt.value) is not None and sub.format is not fmt:
            issues.append(doc.issue((*loc, fmt.value), f"is only used with format {fmt.value}"))
    options = FormatOptions()
    if sub.blocksdk is not None:
        token = _env_only(sub.blocksdk.api_token, (*loc, "blocksdk", "api_token"), doc, issues)
        options = FormatOptions(
            blocksdk_webhook_id=sub.blocksdk.webhook_id,
            blocksdk_symbol=sub.blocksdk.symbol,
            blocksdk_api_token_md5=None if token is None else api_token_md5(token),
        )
    elif sub.format is PayloadFormat.BLOCKSDK:
        issues.append(doc.issue((*loc, "blocksdk"), "format blocksdk needs blocksdk.api_token"))
    if sub.blockvision is not None:
        options = FormatOptions(
            blockvision_app=sub.blockvision.app, blockvision_network=sub.blockvision.network
        )
    if sub.blox is not None:
        options = FormatOptions(blox_application=sub.blox.application)
    return None if len(issues) > before else options


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for name in names:
        if name in seen and name not in dups:
            dups.append(name)
        seen.add(name)
    return dups


def _subscription_addresses(
    sub: SubscriptionConfig, loc: Loc, base_dir: Path, doc: _YamlDocument, issues: list[ConfigIssue]
) -> set[str]:
    watched: set[str] = set()
    for i, text in enumerate(sub.addresses):
        try:
            watched.add(addresses.normalize_ethereum(text))
        except ValueError as exc:
            issues.append(doc.issue((*loc, "addresses", i), str(exc)))
    if sub.addresses_file is not None:
        file_loc = (*loc, "addresses_file")
        path = _resolve(base_dir, sub.addresses_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            issues.append(doc.issue(file_loc, f"cannot read {path}: {exc.strerror}"))
            lines = []
        bad = 0
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                watched.add(addresses.normalize_ethereum(text))
            except ValueError as exc:
                bad += 1
                if bad <= _MAX_ISSUES_PER_FILE:
                    issues.append(doc.issue(file_loc, f"{path} line {number}: {exc}"))
        if bad > _MAX_ISSUES_PER_FILE:
            issues.append(
                doc.issue(file_loc, f"{path}: {bad - _MAX_ISSUES_PER_FILE} more bad lines")
            )
    if not sub.addresses and sub.addresses_file is None:
        issues.append(doc.issue((*loc, "addresses"), "give addresses, addresses_file or both"))
    return watched


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_url(
    url: str, delivery: DeliveryConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> None:
    if not _is_http_url(url):
        issues.append(doc.issue(loc, "must be an http(s) URL with a host"))
        return
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: checked after resolution, at delivery time
    reason = netguard.refusal(literal, delivery.allow_networks)
    if reason is not None:
        issues.append(
            doc.issue(loc, f"{host} is {reason}; list it in delivery.allow_networks to allow it")
        )


def _subscription_secret(
    sub: SubscriptionConfig,
    loc: Loc,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> bytes | None:
    return _read_key(sub, "secret", loc, base_dir, doc, issues)


def _read_key(
    sub: SubscriptionConfig,
    name: Literal["secret", "previous_secret"],
    loc: Loc,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> bytes | None:
    """A signing key given as ``name`` (an environment reference) or ``{name}_file``."""
    inline: SecretStr | None = getattr(sub, name)
    file: Path | None = getattr(sub, f"{name}_file")
    if (inline is None) == (file is None):
        issues.append(doc.issue((*loc, name), f"give exactly one of {name} or {name}_file"))
        return None
    if inline is not None:
        key_loc: Loc = (*loc, name)
        text = _env_only(inline, key_loc, doc, issues, f"or use {name}_file")
        if text is None:
            return None
    else:
        assert file is not None
        key_loc = (*loc, f"{name}_file")
        path = _resolve(base_dir, file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            issues.append(doc.issue(key_loc, f"cannot read {path}: {exc.strerror}"))
            return None
    try:
        return parse_secret(text)
    except SecretFormatError as exc:
        issues.append(doc.issue(key_loc, str(exc)))
        return None


def _env_only(
    value: SecretStr, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue], alt: str = ""
) -> str | None:
    """The value of a secret that the file must give as a ``${VAR}`` reference, never inline."""
    original: Any = doc.data
    for part in loc:
        if isinstance(original, dict):
            original = original.get(part)
        elif isinstance(original, list) and isinstance(part, int) and part < len(original):
            original = original[part]
        else:
            original = None
    if not (isinstance(original, str) and _ENV_REFERENCE.fullmatch(original.strip())):
        hint = f" ({alt})" if alt else ""
        issues.append(doc.issue(loc, f"must be an environment reference like ${{MY_SECRET}}{hint}"))
        return None
    return value.get_secret_value()
