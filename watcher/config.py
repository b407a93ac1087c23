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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from watcher import addresses, netguard
from watcher.btc_addresses import CoinFamily, Network
from watcher.chain_config import (
    CHAIN_MODELS,
    BitcoinChainConfig,
    BtcAddressReader,
    ChainConfig,
    Name,
    PositiveSeconds,
    TaggedChainConfig,
    address_reader,
)
from watcher.conditions import ALWAYS, Condition, ConditionError, parse_conditions
from watcher.errors import ConfigError, ConfigIssue
from watcher.formats import api_token_md5
from watcher.models import (
    STANDARD_RETRY_SCHEDULE_S,
    DeliverySettings,
    Direction,
    EventType,
    FormatOptions,
    Kind,
    PayloadFormat,
    RetryPolicy,
    SignatureScheme,
    SignatureSettings,
    Subscription,
)
from watcher.signing import SecretFormatError, parse_secret

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
MIN_API_TOKEN_CHARS = 16
Port = Annotated[int, Field(ge=0, le=65535)]
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
DEFAULT_ROTATION_OVERLAP_S = 86400.0
_MAX_ISSUES_PER_FILE = 20

# pydantic fails a union-typed field once per branch; one message says what the field takes.
_UNION_MESSAGES = {
    "start": "must be 'latest' or a block number >= 0",
    "allow_networks": "must be an IPv4 or IPv6 network, such as 10.0.0.0/8 or fd00::/8",
}


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


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> WatcherConfig:
    """Read, interpolate and validate the YAML file at ``path``.

    Raises ConfigError with every issue found; relative paths inside the file are taken
    relative to the file's own folder.
    """
    env = os.environ if environ is None else environ
    source = str(path)
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        issue = ConfigIssue("", f"cannot read file: {_read_error(exc)}")
        raise ConfigError(source, [issue]) from exc
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
    checks: list[ConfigIssue] = []
    model: _FileModel | None = None
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as exc:
        checks.extend(_pydantic_issues(exc, data, doc))
    subscriptions, networks = _build_subscriptions(data, base_dir, doc, checks)
    api = _build_api(data, model, base_dir, doc, checks)
    # A value whose variable is unset is already reported; what is left of it after
    # interpolation would only fail again, misleadingly ("at least 16 bytes").
    unset = {format_loc(loc) for loc in doc.unset}
    issues.extend(issue for issue in checks if issue.path not in unset)
    if issues or model is None:
        raise ConfigError(str(source), issues)
    return WatcherConfig(
        source=source,
        store=model.store.model_copy(update={"path": _resolve(base_dir, model.store.path)}),
        log=model.log,
        delivery=model.delivery,
        chains=tuple(_resolve_chain(base_dir, c) for c in model.chains),
        subscriptions=subscriptions,
        networks=networks,
        api=api,
        metrics=model.metrics,
    )


def _resolve(base_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def _resolve_chain(base_dir: Path, chain: ChainConfig) -> ChainConfig:
    if isinstance(chain, BitcoinChainConfig) and chain.rpc_cookie_file is not None:
        cookie = _resolve(base_dir, chain.rpc_cookie_file)
        return chain.model_copy(update={"rpc_cookie_file": cookie})
    return chain


def _read_text(path: Path) -> str:
    """The file at ``path`` decoded as UTF-8; OSError or UnicodeDecodeError otherwise."""
    return path.read_bytes().decode("utf-8")


def _read_error(exc: OSError | UnicodeDecodeError) -> str:
    """Why :func:`_read_text` failed, without quoting any of the file's content."""
    if isinstance(exc, UnicodeDecodeError):
        line = exc.object[: exc.start].count(b"\n") + 1
        return f"line {line} is not UTF-8 text"
    return exc.strerror or str(exc)


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
    """Parsed YAML plus the line of every value, keyed by its path.

    :func:`_interpolate` records which values took an environment variable (``from_env``,
    the text as written) and which name an unset one (``unset``).
    """

    def __init__(self, data: Any, lines: dict[Loc, int], issues: list[ConfigIssue]) -> None:
        self.data = data
        self.lines = lines
        self.issues = issues
        self.from_env: dict[Loc, str] = {}
        self.unset: set[Loc] = set()

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

    def shown(self, loc: Loc, value: object, *, quote: bool = True) -> str:
        """``value`` as a message may show it: never a value taken from the environment.

        A variable may hold a secret by mistake, so such a value is named by the text as
        written instead, e.g. ``the value of ${HOOK_URL}``.
        """
        written = self.from_env.get(loc)
        if written is not None:
            return f"the value of {written}"
        return f"'{value}'" if quote else str(value)


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
        doc.from_env[loc] = value
        if name not in environ:
            issues.append(doc.issue(loc, f"environment variable {name} is not set"))
            doc.unset.add(loc)
            return ""
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)


# --- pydantic errors -> issues ----------------------------------------------------------


def _pydantic_issues(exc: ValidationError, data: Any, doc: _YamlDocument) -> Iterator[ConfigIssue]:
    """One issue per path, so that one mistake reads as one issue.

    pydantic reports a union-typed field once per branch, and a list that must not be empty
    again when its only item failed.
    """
    by_loc: dict[Loc, list[ErrorDetails]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error, data)
        if error["type"] in _TAG_ERRORS:
            loc = (*loc, "kind")  # the chain's kind is missing or unknown
        by_loc.setdefault(loc, []).append(error)
    for loc, errors in by_loc.items():
        items_failed = any(len(other) > len(loc) and other[: len(loc)] == loc for other in by_loc)
        if errors[0]["type"] == "too_short" and items_failed:
            continue
        yield doc.issue(loc, _error_message(loc, errors, data))


# pydantic's errors for a discriminated union (the chain kinds) without a usable tag.
_TAG_ERRORS = {
    "union_tag_not_found": "is required",
    "union_tag_invalid": f"must be one of: {', '.join(CHAIN_MODELS)}",
}


def _error_message(loc: Loc, errors: list[ErrorDetails], data: Any) -> str:
    if len(errors) > 1:
        field = next((p for p in reversed(loc) if isinstance(p, str)), "")
        union = _UNION_MESSAGES.get(field)
        return union or " or ".join(dict.fromkeys(error["msg"] for error in errors))
    kind = errors[0]["type"]
    if kind in _TAG_ERRORS:
        return _TAG_ERRORS[kind]
    if kind == "extra_forbidden":
        return _unknown_key_message(loc, data)
    if kind == "missing":
        return "is required"
    return errors[0]["msg"]


def _clean_loc(error: ErrorDetails, data: Any) -> Loc:
    """The YAML path of a pydantic error: the keys and indexes of ``data`` it goes through.

    This drops pydantic's union-branch and function markers (``literal['latest']``,
    ``function-after[...]``) and keeps an unknown key, which no model field names. A missing
    key is absent from ``data`` by definition: it is kept as the last part.
    """
    loc = error["loc"]
    kept: list[str | int] = []
    node = data
    for position, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            kept.append(str(part))  # a key, even one YAML read as a number
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            kept.append(part)
        elif error["type"] == "missing" and position == len(loc) - 1:
            kept.append(part)
    return tuple(kept)


def _unknown_key_message(loc: Loc, data: Any) -> str:
    model = _model_at(loc[:-1], data)
    key = str(loc[-1]) if loc else ""
    if model is None:
        return "unknown key"
    allowed = sorted(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {', '.join(allowed)}"
    return f"unknown key{hint}"


def _model_at(loc: Loc, data: Any) -> type[BaseModel] | None:
    if len(loc) == 2 and loc[0] == "chains" and isinstance(loc[1], int):
        item = data["chains"][loc[1]]
        kind = item.get("kind") if isinstance(item, dict) else None
        return CHAIN_MODELS.get(kind) if isinstance(kind, str) else None
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
    data: Mapping[str, Any],
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> tuple[tuple[Subscription, ...], dict[str, frozenset[Network]]]:
    """Check what the models cannot, on every chain and subscription valid on its own.

    The checks run even when other parts of the file failed validation, so that one pass
    reports every mistake.
    """
    chain_names = _names(data, "chains", "name")
    for name_loc, name in _duplicates(chain_names):
        message = f"chain name {doc.shown(name_loc, name)} is used more than once"
        issues.append(doc.issue(name_loc, message))
    for id_loc, name in _duplicates(_names(data, "subscriptions", "id")):
        message = f"subscription id {doc.shown(id_loc, name)} is used more than once"
        issues.append(doc.issue(id_loc, message))
    valid_chains = _valid_chains(data)
    for index, chain in valid_chains:
        _check_chain(chain, ("chains", index), doc, issues)
    chains = {chain.name: chain for _, chain in valid_chains}
    readers = {chain.name: address_reader(chain) for _, chain in valid_chains}
    known = {name for _, name in chain_names}
    delivery = _valid(DeliveryConfig, data.get("delivery", {}))

    built: list[Subscription] = []
    for index, sub in _valid_items(data, "subscriptions", SubscriptionConfig):
        loc: Loc = ("subscriptions", index)
        before = len(issues)
        # When chains is not even a list, that is the issue to report, not each reference.
        if sub.chain not in known and isinstance(data.get("chains"), list):
            chain_loc = (*loc, "chain")
            listed = ", ".join(sorted(known)) or "none"
            message = f"no chain named {doc.shown(chain_loc, sub.chain)} (known: {listed})"
            issues.append(doc.issue(chain_loc, message))
        read = readers.get(sub.chain) or _fallback_reader(data, sub.chain)
        watched = _subscription_addresses(sub, loc, base_dir, doc, issues, read)
        tokens: set[str] = set()
        if _chain_item(data, sub.chain).get("kind") == "bitcoin":
            _check_bitcoin_subscription(sub, loc, doc, issues)
        else:
            tokens = _addresses_at(sub.tokens, (*loc, "tokens"), doc, issues, read)
        condition: Condition = ALWAYS
        try:
            condition = parse_conditions(sub.conditions)
        except ConditionError as exc:
            issues.append(doc.issue((*loc, "conditions", *exc.path), exc.message))
        _check_url(sub.url, delivery, (*loc, "url"), doc, issues)
        secret = _subscription_secret(sub, loc, base_dir, doc, issues)
        settings = _delivery_settings(sub, delivery or DeliveryConfig(), loc, base_dir, doc, issues)
        found = chains.get(sub.chain)
        if found is None or secret is None or settings is None or len(issues) > before:
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
                tokens=frozenset(tokens),
                kinds=frozenset(sub.kinds),
                direction=None if sub.direction == "any" else Direction(sub.direction),
                condition=condition,
                delivery=settings,
            )
        )
    networks = {
        name: frozenset(read.networks)
        for name, read in readers.items()
        if isinstance(read, BtcAddressReader)
    }
    return tuple(built), networks


def _valid_chains(data: Mapping[str, Any]) -> list[tuple[int, ChainConfig]]:
    """The chains valid on their own, each validated as the model its ``kind`` names."""
    items = data.get("chains")
    if not isinstance(items, list):
        return []
    out: list[tuple[int, ChainConfig]] = []
    for index, item in enumerate(items):
        kind = item.get("kind") if isinstance(item, dict) else None
        model = CHAIN_MODELS.get(kind) if isinstance(kind, str) else None
        chain = _valid(model, item) if model is not None else None
        if chain is not None:
            out.append((index, chain))
    return out


def _chain_item(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The first chain called ``name`` as written in the file; empty if there is none."""
    items = data.get("chains")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("name") == name:
                return item
    return {}


def _fallback_reader(data: Mapping[str, Any], name: str) -> Callable[[str], str] | None:
    """How to read the addresses of a subscription whose chain is invalid or unknown.

    An invalid chain's kind, coin and network are used where they are valid themselves; for
    an unknown chain, Ethereum's rules when every chain is an Ethereum one. Otherwise the
    addresses are left unchecked: the chain's own issue is what to fix first.
    """
    item = _chain_item(data, name)
    if not item:
        items = data.get("chains")
        chains = items if isinstance(items, list) else []
        kinds = {i.get("kind") for i in chains if isinstance(i, dict)}
        return addresses.normalize_ethereum if kinds == {"ethereum"} else None
    if item.get("kind") == "ethereum":
        return addresses.normalize_ethereum
    if item.get("kind") != "bitcoin":
        return None
    try:
        coin = CoinFamily(item.get("coin", CoinFamily.BITCOIN.value))
        network = Network(item["network"]) if "network" in item else None
    except (ValueError, TypeError):
        return None
    return BtcAddressReader(coin, network)


def _check_chain(
    chain: ChainConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> None:
    if not _is_http_url(chain.rpc_url):
        issues.append(doc.issue((*loc, "rpc_url"), "must be an http(s) URL"))
    if not isinstance(chain, BitcoinChainConfig):
        return
    with_password = chain.rpc_user is not None or chain.rpc_password is not None
    if with_password == (chain.rpc_cookie_file is not None):
        issues.append(
            doc.issue(loc, "give rpc_user and rpc_password, or rpc_cookie_file (exactly one)")
        )
    elif with_password and (chain.rpc_user is None or chain.rpc_password is None):
        missing = "rpc_user" if chain.rpc_user is None else "rpc_password"
        issues.append(doc.issue((*loc, missing), "is required with rpc_user and rpc_password"))
    elif chain.rpc_password is not None:
        _env_only(
            chain.rpc_password, (*loc, "rpc_password"), doc, issues, example="NODE_RPC_PASSWORD"
        )


def _check_bitcoin_subscription(
    sub: SubscriptionConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> None:
    """Bitcoin-family chains move one thing, the coin itself: no tokens, kind native."""
    if sub.tokens:
        issues.append(doc.issue((*loc, "tokens"), "Bitcoin-family chains have no tokens"))
    if Kind.NATIVE not in sub.kinds:
        issues.append(doc.issue((*loc, "kinds"), "Bitcoin-family chains only have native payments"))


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


# --- per-subscription delivery keys, shared with the admin API --------------------------


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


def _names(data: Mapping[str, Any], key: str, field: str) -> list[tuple[Loc, str]]:
    """The string ``field`` of each item of the list ``data[key]``, with its path."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [
        ((key, index, field), item[field])
        for index, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get(field), str)
    ]


def _duplicates(names: Iterable[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    """Each name that an earlier item already uses, with its path."""
    seen: set[str] = set()
    dups: list[tuple[Loc, str]] = []
    for loc, name in names:
        if name in seen:
            dups.append((loc, name))
        seen.add(name)
    return dups


def _subscription_addresses(
    sub: SubscriptionConfig,
    loc: Loc,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
    read: Callable[[str], str] | None,
) -> set[str]:
    watched = _addresses_at(sub.addresses, (*loc, "addresses"), doc, issues, read)
    if sub.addresses_file is not None:
        file_loc = (*loc, "addresses_file")
        path = _resolve(base_dir, sub.addresses_file)
        shown = doc.shown(file_loc, path, quote=False)
        try:
            bad = _read_address_file(path, read, watched, shown, file_loc, doc, issues)
        except OSError as exc:
            issues.append(doc.issue(file_loc, f"cannot read {shown}: {_read_error(exc)}"))
            bad = 0
        if bad > _MAX_ISSUES_PER_FILE:
            issues.append(
                doc.issue(file_loc, f"{shown}: {bad - _MAX_ISSUES_PER_FILE} more bad lines")
            )
    needs_addresses = set(sub.events) != {EventType.BLOCK_MINED} and not sub.tokens
    if needs_addresses and not sub.addresses and sub.addresses_file is None:
        issues.append(
            doc.issue(
                (*loc, "addresses"),
                "give addresses, addresses_file or tokens (only block.mined needs none)",
            )
        )
    return watched


def _read_address_file(
    path: Path,
    read: Callable[[str], str] | None,
    watched: set[str],
    shown: str,
    file_loc: Loc,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> int:
    """Add the addresses in the file at ``path`` to ``watched``; how many lines were bad.

    The file is read a line at a time, so that a watch list of a million addresses is never
    held twice in memory. Without ``read`` (the chain is unknown) it is only checked to be
    readable text.
    """
    bad = 0
    add = watched.add
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                issues.append(
                    doc.issue(file_loc, f"cannot read {shown}: line {number} is not UTF-8 text")
                )
                return bad
            text = line.split("#", 1)[0].strip() if "#" in line else line.strip()
            if not text or read is None:
                continue
            try:
                add(read(text))
            except ValueError as exc:
                bad += 1
                if bad <= _MAX_ISSUES_PER_FILE:
                    message = f"{shown} line {number}: '{text}' {exc}"
                    issues.append(doc.issue(file_loc, message))
    return bad


def _addresses_at(
    texts: Iterable[str],
    loc: Loc,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
    read: Callable[[str], str] | None,
) -> set[str]:
    out: set[str] = set()
    if read is None:
        return out
    for i, text in enumerate(texts):
        try:
            out.add(read(text))
        except ValueError as exc:
            item_loc = (*loc, i)
            issues.append(doc.issue(item_loc, f"{doc.shown(item_loc, text.strip())} {exc}"))
    return out


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_url(
    url: str,
    delivery: DeliveryConfig | None,
    loc: Loc,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> None:
    """Refuse a URL that is not http(s), or whose literal IP address is not allowed.

    Without a valid ``delivery`` section the allowed networks are unknown: that section's
    own issue is reported instead.
    """
    if not _is_http_url(url):
        issues.append(doc.issue(loc, "must be an http(s) URL with a host"))
        return
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: checked after resolution, at delivery time
    if delivery is None:
        return
    reason = netguard.refusal(literal, delivery.allow_networks)
    if reason is not None:
        shown = f"the host in {doc.shown(loc, url)}" if loc in doc.from_env else host
        issues.append(
            doc.issue(loc, f"{shown} is {reason}; list it in delivery.allow_networks to allow it")
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
            text = _read_text(path).strip()
        except (OSError, UnicodeDecodeError) as exc:
            shown = doc.shown(key_loc, path, quote=False)
            issues.append(doc.issue(key_loc, f"cannot read {shown}: {_read_error(exc)}"))
            return None
    try:
        return parse_secret(text)
    except SecretFormatError as exc:
        issues.append(doc.issue(key_loc, str(exc)))
        return None


def _env_only(
    value: SecretStr,
    loc: Loc,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
    alt: str = "",
    *,
    example: str = "MY_SECRET",
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
        issues.append(doc.issue(loc, f"must be an environment reference like ${{{example}}}{hint}"))
        return None
    return value.get_secret_value()


# --- the admin API and metrics listeners ------------------------------------------------


def _build_api(
    data: Mapping[str, Any],
    model: _FileModel | None,
    base_dir: Path,
    doc: _YamlDocument,
    issues: list[ConfigIssue],
) -> ApiSettings | None:
    """The API settings with the token resolved; None when the section is absent or bad."""
    api = _valid(ApiConfig, data.get("api")) if isinstance(data.get("api"), dict) else None
    metrics = _valid(MetricsConfig, data.get("metrics")) if model is None else model.metrics
    if api is None:
        return None
    if (
        metrics is not None
        and api.port != 0
        and (api.listen, api.port) == (metrics.listen, metrics.port)
    ):
        message = "the metrics listener uses the same address and port; give each its own"
        issues.append(doc.issue(("metrics", "port"), message))
    token = _api_token(api, base_dir, doc, issues)
    if token is None:
        return None
    return ApiSettings(str(api.listen), api.port, token, api.max_body_bytes, api.rotation_overlap_s)


def _api_token(
    api: ApiConfig, base_dir: Path, doc: _YamlDocument, issues: list[ConfigIssue]
) -> str | None:
    loc: Loc = ("api",)
    if (api.token is None) == (api.token_file is None):
        issues.append(doc.issue((*loc, "token"), "give exactly one of token or token_file"))
        return None
    if api.token is not None:
        token_loc: Loc = (*loc, "token")
        value = _env_only(
            api.token, token_loc, doc, issues, "or use token_file", example="WATCHER_API_TOKEN"
        )
        if value is None:
            return None
        token = value.strip()
    else:
        assert api.token_file is not None
        token_loc = (*loc, "token_file")
        path = _resolve(base_dir, api.token_file)
        try:
            token = _read_text(path).strip()
        except (OSError, UnicodeDecodeError) as exc:
            shown = doc.shown(token_loc, path, quote=False)
            issues.append(doc.issue(token_loc, f"cannot read {shown}: {_read_error(exc)}"))
            return None
    if len(token) < MIN_API_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        message = f"the token must be at least {MIN_API_TOKEN_CHARS} printable ASCII characters"
        issues.append(doc.issue(token_loc, message))
        return None
    return token
