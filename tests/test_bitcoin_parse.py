"""Parsing of Bitcoin Core's block and transaction JSON, written from Core's RPC help. Pure.

The fixtures under tests/data/ follow ``bitcoin-cli help getblock`` (verbosity 2 and 3, with
``prevout``) and ``help getrawtransaction`` for Bitcoin Core 22 and later (``address``, not
``addresses``). The real nodes' shapes are covered by the behaviour tests.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from watcher.btc_addresses import Network
from watcher.btc_matching import BtcAddressIndex
from watcher.chains.bitcoin import BitcoinDialect, core_version, describe_node
from watcher.chains.bitcoin_parse import (
    NULL_HASH,
    amount_to_sat,
    parse_block,
    parse_tx_status,
    script_address,
)
from watcher.chains.bitcoin_rpc import decode_reply
from watcher.errors import NodeError
from watcher.models import BtcTxIn, BtcTxOut, Direction, EventType, Subscription

DATA = Path(__file__).parent / "data"
P2WPKH = "bc1qeqj6rm8j56psc3qpvgxr59h3n9g90s4tesjwsx"
GENESIS_ADDRESS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def load(name: str) -> Any:
    return decode_reply((DATA / name).read_bytes())["result"]


@pytest.mark.parametrize(
    ("text", "sat"),
    [
        ("0.1", 10_000_000),
        ("0.10000000", 10_000_000),
        ("20999999.97690000", 2_099_999_997_690_000),
        ("1e-08", 1),
        ("1e-8", 1),  # how bcoin (JavaScript) writes one satoshi
        ("1E-8", 1),
        ("0.00000000", 0),
        ("50", 5_000_000_000),  # an integer number of coins (bcoin)
        ("84000000.00000001", 8_400_000_000_000_001),  # beyond what a float holds exactly
        ("10000000000.00000001", 1_000_000_000_000_000_001),
    ],
)
def test_amounts_in_node_json_become_exact_satoshis(text: str, sat: int) -> None:
    assert amount_to_sat(decode_reply(f'{{"value": {text}}}')["value"]) == sat


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("0.000000001"), "fraction of a satoshi"),
        (Decimal("1.000000000000000000000000000000001"), "fraction of a satoshi"),
        (Decimal("-0.1"), "negative"),
        (Decimal("NaN"), "not finite"),
        (Decimal("Infinity"), "not finite"),
        (0.1, "parsed as a float"),
        (True, "not a number"),
        ("0.1", "not an exact decimal"),
    ],
)
def test_amounts_that_are_not_exact_satoshis_are_refused(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        amount_to_sat(value)


def test_core_verbosity2_block_is_normalised() -> None:
    block = parse_block(load("core_getblock_verbosity2.json"), "btc")
    assert (block.number, block.timestamp) == (800000, 1690168629)
    assert block.hash == "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
    assert block.parent_hash.startswith("00000000000000000001b658")
    coinbase, payment, spend = block.transactions
    assert coinbase.coinbase
    assert coinbase.inputs == ()
    assert [(o.address, o.value_sat) for o in coinbase.outputs] == [(P2WPKH, 643090954), (None, 0)]
    assert not payment.coinbase
    assert payment.inputs == (
        BtcTxIn("f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16", 1),
    )
    assert [(o.n, o.address, o.value_sat) for o in payment.outputs] == [
        (0, GENESIS_ADDRESS, 2_099_999_997_690_000),
        (1, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", 10_000_000),
    ]
    # bare multisig and pay-to-pubkey outputs have no single address
    assert [(o.address, o.value_sat) for o in spend.outputs] == [(None, 1), (None, 9_997_749)]
    assert payment.raw["vout"][0]["value"] == Decimal("20999999.97690000")


def test_core_verbosity3_block_fills_inputs_from_prevout() -> None:
    block = parse_block(load("core_getblock_verbosity3.json"), "btc")
    _, tx = block.transactions
    assert tx.inputs == (
        BtcTxIn(
            "e3bf3d07d4b0375638d5f1db5255fe07ba2c4cb067cd81b84ee974b6585fb468",
            0,
            GENESIS_ADDRESS,
            2_099_999_997_690_000,
        ),
        BtcTxIn(
            "a1075db55d416d3ca199f55b6084e2115b9345e16c5cf302fc80e9d5fbf5d48d", 1, None, 9_997_749
        ),
    )
    watcher = Subscription(
        id="s", chain="btc", addresses=frozenset({GENESIS_ADDRESS, P2WPKH}),
        events=frozenset(EventType), confirmations=1, url="http://127.0.0.1/", secret=b"k",
    )  # fmt: skip
    found = BtcAddressIndex([watcher]).match_all(block.transactions)
    assert [(t.txid[:8], m.address, m.direction, m.amount_sat) for t, ms in found for m in ms] == [
        ("9f2c1a0b", P2WPKH, Direction.IN, 625_012_345),
        ("5e6f7a8b", P2WPKH, Direction.IN, 2_099_999_900_000_000),
        ("5e6f7a8b", GENESIS_ADDRESS, Direction.OUT, 2_099_999_997_690_000),
    ]


def test_a_block_missing_transactions_is_refused() -> None:
    """Bitcoin SV's ``getblock <hash> 3`` returns only the coinbase: nTx tells."""
    raw = load("core_getblock_verbosity2.json")
    raw["tx"] = raw["tx"][:1]
    with pytest.raises(NodeError, match="lists 1 of its 3 transactions"):
        parse_block(raw, "btc")
    raw = load("core_getblock_verbosity2.json")
    raw["tx"] = [tx["txid"] for tx in raw["tx"]]
    with pytest.raises(NodeError, match="not objects"):
        parse_block(raw, "btc")


def test_genesis_block_gets_the_null_parent_hash() -> None:
    raw = load("core_getblock_verbosity2.json")
    del raw["previousblockhash"]
    assert parse_block(raw, "btc").parent_hash == NULL_HASH


def test_mempool_transaction_has_no_block_and_no_confirmations() -> None:
    status = parse_tx_status(load("core_getrawtransaction_mempool.json"), "btc")
    assert (status.block_hash, status.confirmations) == (None, 0)
    assert status.tx.outputs == (BtcTxOut(0, P2WPKH, 9_990_000),)


@pytest.mark.parametrize(
    ("script", "address"),
    [
        ({"address": "1abc", "type": "pubkeyhash"}, "1abc"),
        ({"addresses": ["Rabc"], "type": "PUBKEYHASH"}, "Rabc"),  # bcoin
        ({"addresses": ["mabc"], "type": "pubkeyhash", "reqSigs": 1}, "mabc"),  # BSV, old Core
        ({"addresses": ["m1", "m2"], "type": "multisig"}, None),
        ({"addresses": ["m1"], "type": "multisig"}, None),
        ({"addresses": [], "type": "NULLDATA"}, None),
        ({"type": "nonstandard"}, None),
    ],
)
def test_script_address_reads_both_address_fields(
    script: dict[str, Any], address: str | None
) -> None:
    assert script_address(script) == address


@pytest.mark.parametrize(
    ("subversion", "version", "block_params", "tx_params"),
    [
        ("/Satoshi:27.0.0/", (27, 0), (3,), (2,)),
        ("/Satoshi:27.1.0/Knots:20240801/", (27, 1), (3,), (2,)),
        ("/Satoshi:24.2.0/", (24, 2), (3,), (True,)),
        ("/Satoshi:22.0.0/", (22, 0), (2,), (True,)),
        ("/Satoshi:0.21.1/", (0, 21), (2,), (True,)),
        ("/LitecoinCore:0.21.2.2/", None, (2,), (True,)),
        ("/Bitcoin SV:1.0.13/", None, (2,), (True,)),  # its verbosity 3 is "coinbase only"
    ],
)
def test_core_dialect_uses_prevout_verbosities_only_on_bitcoin_core_that_has_them(
    subversion: str,
    version: tuple[int, int] | None,
    block_params: tuple[object, ...],
    tx_params: tuple[object, ...],
) -> None:
    assert core_version(subversion) == version
    node = describe_node(BitcoinDialect.CORE, subversion, "main", "00" * 32)
    assert (node.block_params, node.tx_params, node.not_found_code) == (
        block_params,
        tx_params,
        -5,
    )
    assert node.prevouts_in_blocks == (block_params == (3,))
    assert node.network is Network.MAINNET


def test_bcoin_dialect_uses_its_own_getblock_form_and_not_found_code() -> None:
    node = describe_node(BitcoinDialect.BCOIN, "/bcoin:v1.0.2/", "test", "00" * 32)
    assert (node.block_params, node.tx_params, node.not_found_code) == ((True, True), (True,), -1)
    assert node.network is Network.TESTNET
