"""Loading a configuration file: read it, validate every section, build the daemon's values.

Every check runs before anything is raised, and all the issues found go out together in
one :class:`~watcher.errors.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from watcher.chain_config import BitcoinChainConfig, ChainConfig
from watcher.config.api_settings import _build_api
from watcher.config.issues import _pydantic_issues
from watcher.config.models import WatcherConfig, _FileModel
from watcher.config.source import (
    _interpolate,
    _read_error,
    _read_text,
    _resolve,
    _YamlDocument,
    format_loc,
)
from watcher.config.subscriptions import _build_subscriptions
from watcher.errors import ConfigError, ConfigIssue


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


def _resolve_chain(base_dir: Path, chain: ChainConfig) -> ChainConfig:
    if isinstance(chain, BitcoinChainConfig) and chain.rpc_cookie_file is not None:
        cookie = _resolve(base_dir, chain.rpc_cookie_file)
        return chain.model_copy(update={"rpc_cookie_file": cookie})
    return chain
