"""Configuration of Bitcoin-family chains: credentials, coin and network, addresses per coin.

As for every configuration test, each bad file's issues are checked by path and YAML line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.test_config import WHSEC, issues, line_of, load, where, write
from watcher.btc_addresses import Network
from watcher.chain_config import BitcoinChainConfig
from watcher.config import load_config
from watcher.errors import ConfigIssue

ENV = {"HOOK_SECRET": WHSEC, "NODE_PASSWORD": "node-password"}
MAINNET_SEGWIT = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
MAINNET_P2PKH = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
REGTEST_CORE = "mvbu1Gdy8SUjTenqerxUaZyYjmveZvt33q"
REGTEST_BCOIN = "RRX9J7pxztmszqGKoWk6wE42xZ1LeGGJwg"

BITCOIN = """\
chains:
  - name: btc
    kind: bitcoin
    rpc_url: http://127.0.0.1:8332
    rpc_user: watcher
    rpc_password: ${NODE_PASSWORD}
    network: mainnet
subscriptions:
  - id: deposits
    chain: btc
    addresses:
      - BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4
      - 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    url: https://hooks.example.com/deposits
    secret: ${HOOK_SECRET}
"""


def edit(old: str, new: str, text: str = BITCOIN) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def bad(folder: Path, text: str, environ: Mapping[str, str] = ENV) -> list[ConfigIssue]:
    return issues(folder, text, environ)


def test_a_bitcoin_chain_loads_with_its_own_defaults_and_canonical_addresses(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, BITCOIN, ENV)
    (chain,) = config.chains
    assert isinstance(chain, BitcoinChainConfig)
    assert (chain.coin, chain.network, chain.confirmations, chain.batch_size) == (
        "bitcoin",
        Network.MAINNET,
        6,
        5,
    )
    assert chain.rpc_password is not None
    assert chain.rpc_password.get_secret_value() == "node-password"
    (sub,) = config.subscriptions
    assert sub.addresses == {MAINNET_SEGWIT, MAINNET_P2PKH}
    assert sub.confirmations == 6
    assert config.networks == {"btc": frozenset({Network.MAINNET})}


@pytest.mark.parametrize(
    ("addresses", "networks"),
    [
        ([MAINNET_SEGWIT, MAINNET_P2PKH], {Network.MAINNET}),
        ([REGTEST_CORE], {Network.TESTNET, Network.REGTEST}),
        ([REGTEST_CORE, REGTEST_BCOIN], {Network.REGTEST}),
    ],
)
def test_without_a_network_it_is_inferred_from_the_addresses(
    tmp_path: Path, addresses: list[str], networks: set[Network]
) -> None:
    text = edit("    network: mainnet\n", "").replace(
        f"      - BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4\n      - {MAINNET_P2PKH}\n",
        "".join(f"      - {a}\n" for a in addresses),
    )
    assert load(tmp_path, text, ENV).networks == {"btc": frozenset(networks)}


def test_addresses_of_two_networks_without_a_network_are_refused_at_the_second(
    tmp_path: Path,
) -> None:
    text = edit("    network: mainnet\n", "").replace(MAINNET_P2PKH, REGTEST_CORE)
    found = bad(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses[1]", line_of(text, REGTEST_CORE))]
    assert "is not a bitcoin mainnet address" in found[0].message


def test_an_address_of_another_network_or_coin_is_refused_with_its_line(tmp_path: Path) -> None:
    litecoin = "LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9"
    text = edit(MAINNET_P2PKH, litecoin)
    found = bad(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses[1]", line_of(text, litecoin))]
    assert found[0].message.startswith(f"'{litecoin}' is not a bitcoin mainnet address")


def test_the_coin_decides_the_address_rules(tmp_path: Path) -> None:
    text = edit("    network: mainnet\n", "    network: mainnet\n    coin: bitcoincash\n").replace(
        "      - BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4\n", ""
    )
    (sub,) = load(tmp_path, text, ENV).subscriptions
    # A legacy address becomes the CashAddr form Bitcoin Cash nodes print.
    assert sub.addresses == {"bitcoincash:qp3wjpa3tjlj042z2wv7hahsldgwhwy0rq9sywjpyy"}


def test_bad_lines_of_a_bitcoin_addresses_file_are_named_by_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, f"# deposits\n{MAINNET_SEGWIT}\n\n{REGTEST_BCOIN}\n", "deposits.txt")
    text = edit(
        "    addresses:\n      - BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4\n"
        f"      - {MAINNET_P2PKH}\n",
        "    addresses_file: deposits.txt\n",
    )
    found = bad(tmp_path, text)
    assert where(found) == [("subscriptions[0].addresses_file", line_of(text, "addresses_file"))]
    assert "deposits.txt line 4:" in found[0].message


def test_a_bitcoin_chain_needs_exactly_one_way_to_authenticate(tmp_path: Path) -> None:
    none = edit("    rpc_user: watcher\n    rpc_password: ${NODE_PASSWORD}\n", "")
    both = edit("    rpc_user: watcher\n", "    rpc_user: watcher\n    rpc_cookie_file: .cookie\n")
    for text in (none, both):
        found = bad(tmp_path, text)
        assert where(found) == [("chains[0]", line_of(text, "- name: btc"))]
        assert "rpc_cookie_file" in found[0].message
    half = edit("    rpc_user: watcher\n", "")
    assert where(bad(tmp_path, half)) == [("chains[0].rpc_user", line_of(half, "- name: btc"))]


def test_the_rpc_password_must_come_from_the_environment(tmp_path: Path) -> None:
    text = edit("${NODE_PASSWORD}", "hunter2hunter2")
    found = bad(tmp_path, text)
    assert where(found) == [("chains[0].rpc_password", line_of(text, "rpc_password"))]
    assert "hunter2" not in found[0].message


def test_the_cookie_file_is_taken_relative_to_the_config_file(tmp_path: Path) -> None:
    text = edit(
        "    rpc_user: watcher\n    rpc_password: ${NODE_PASSWORD}\n",
        "    rpc_cookie_file: node/.cookie\n",
    )
    path = write(tmp_path / "etc", text)
    (chain,) = load_config(path, environ=ENV).chains
    assert isinstance(chain, BitcoinChainConfig)
    assert chain.rpc_cookie_file == tmp_path / "etc" / "node" / ".cookie"


def test_tokens_and_token_kinds_make_no_sense_on_bitcoin(tmp_path: Path) -> None:
    text = edit(
        "    url: https://hooks.example.com/deposits\n",
        "    tokens: [0x70997970C51812dc3A010C7d01b50e0d17dc79C8]\n    kinds: [erc20]\n"
        "    url: https://hooks.example.com/deposits\n",
    )
    assert where(bad(tmp_path, text)) == [
        ("subscriptions[0].tokens", line_of(text, "tokens:")),
        ("subscriptions[0].kinds", line_of(text, "kinds:")),
    ]


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment", "message"),
    [
        ("kind: bitcoin", "kind: solana", "chains[0].kind", "kind:", "must be one of"),
        ("    kind: bitcoin\n", "", "chains[0].kind", "- name: btc", "is required"),
        ("network: mainnet", "netwrk: mainnet", "chains[0].netwrk", "netwrk", "'network'"),
        ("network: mainnet", "network: signet", "chains[0].network", "network:", "mainnet"),
        ("network: mainnet", "chain_id: 1", "chains[0].chain_id", "chain_id", "unknown key"),
        ("    network: mainnet\n", "    coin: monero\n", "chains[0].coin", "coin:", "dogecoin"),
    ],
)
def test_one_chain_mistake_gives_one_issue_at_its_key(
    tmp_path: Path, old: str, new: str, path: str, fragment: str, message: str
) -> None:
    text = edit(old, new)
    found = bad(tmp_path, text)
    assert where(found) == [(path, line_of(text, fragment))]
    assert message in found[0].message
