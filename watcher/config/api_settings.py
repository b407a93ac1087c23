"""The admin API settings: the listener and its resolved, checked token.

The API is off unless its section is present. When it is on, it needs a token from the
environment or a file, long enough not to be guessed, and a listener of its own, apart
from the metrics one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.config.credentials import _env_only
from watcher.config.models import ApiConfig, ApiSettings, MetricsConfig, _FileModel, _valid
from watcher.config.source import Loc, _read_error, _read_text, _resolve, _YamlDocument
from watcher.errors import ConfigIssue

MIN_API_TOKEN_CHARS = 16


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
