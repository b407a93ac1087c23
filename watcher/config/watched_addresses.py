"""A subscription's watched addresses, listed inline or in an address file.

A watch list may hold a million addresses: the file is read a line at a time, and its bad
lines are reported up to a limit, not one issue each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from watcher.config.models import SubscriptionConfig
from watcher.config.source import Loc, _read_error, _resolve, _YamlDocument
from watcher.errors import ConfigIssue
from watcher.models import EventType

_MAX_ISSUES_PER_FILE = 20


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
