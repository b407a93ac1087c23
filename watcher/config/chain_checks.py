"""Checks of the ``chains`` section that the models cannot make, and each chain's address rules.

Subscriptions are checked against their chain's rules. A chain that is itself invalid or
unknown still lends what it can of them, so that a subscription's own mistakes are
reported in the same pass as the chain's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from watcher import addresses
from watcher.btc_addresses import CoinFamily, Network
from watcher.chain_config import CHAIN_MODELS, BitcoinChainConfig, BtcAddressReader, ChainConfig
from watcher.config.credentials import _env_only
from watcher.config.models import _valid
from watcher.config.source import Loc, _YamlDocument
from watcher.errors import ConfigIssue


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


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
