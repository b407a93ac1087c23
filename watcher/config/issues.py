"""pydantic's validation errors as configuration issues located in the YAML file.

pydantic speaks of model locations and error types, and reports a union-typed field once
per branch; an operator needs the path as written, its line, one message per mistake and,
for an unknown key, the key that was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from watcher.chain_config import CHAIN_MODELS
from watcher.config.models import _FileModel
from watcher.config.source import Loc, _YamlDocument
from watcher.errors import ConfigIssue

# pydantic fails a union-typed field once per branch; one message says what the field takes.
_UNION_MESSAGES = {
    "start": "must be 'latest' or a block number >= 0",
    "allow_networks": "must be an IPv4 or IPv6 network, such as 10.0.0.0/8 or fd00::/8",
}


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
