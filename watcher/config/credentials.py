"""Secrets in the configuration: signing keys and tokens, from the environment or a file.

A secret written inline ends up in backups and version control, so the file may only name
it: a ``${VAR}`` reference or, where a ``*_file`` key exists, a file that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from watcher.config.models import SubscriptionConfig
from watcher.config.source import (
    _ENV_REFERENCE,
    Loc,
    _read_error,
    _read_text,
    _resolve,
    _YamlDocument,
)
from watcher.errors import ConfigIssue
from watcher.signing import SecretFormatError, parse_secret


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
