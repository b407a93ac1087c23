"""Subscriptions as the daemon runs them, built after the checks the models cannot make.

Chain references, duplicate names, URLs, secrets and delivery keys are checked on every
subscription valid on its own, even when other parts of the file are not, so that one pass
reports every mistake.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watcher import netguard
from watcher.btc_addresses import Network
from watcher.chain_config import BtcAddressReader, address_reader
from watcher.conditions import ALWAYS, Condition, ConditionError, parse_conditions
from watcher.config.chain_checks import (
    _chain_item,
    _check_chain,
    _fallback_reader,
    _is_http_url,
    _valid_chains,
)
from watcher.config.credentials import _subscription_secret
from watcher.config.delivery_keys import _delivery_settings
from watcher.config.models import DeliveryConfig, SubscriptionConfig, _valid, _valid_items
from watcher.config.source import Loc, _YamlDocument
from watcher.config.watched_addresses import _addresses_at, _subscription_addresses
from watcher.errors import ConfigIssue
from watcher.models import Direction, Kind, Subscription


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


def _check_bitcoin_subscription(
    sub: SubscriptionConfig, loc: Loc, doc: _YamlDocument, issues: list[ConfigIssue]
) -> None:
    """Bitcoin-family chains move one thing, the coin itself: no tokens, kind native."""
    if sub.tokens:
        issues.append(doc.issue((*loc, "tokens"), "Bitcoin-family chains have no tokens"))
    if Kind.NATIVE not in sub.kinds:
        issues.append(doc.issue((*loc, "kinds"), "Bitcoin-family chains only have native payments"))


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
