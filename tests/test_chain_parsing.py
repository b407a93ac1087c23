"""Ethereum node JSON -> Block and Tx, on replies written the way a real node writes them."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from watcher.chains.ethereum import parse_block, parse_tx
from watcher.errors import NodeError

# An eth_getBlockByNumber("0x1a", true) result with every field geth and anvil return:
# a value transfer with upper-case hex and a contract creation (to: null).
BLOCK_JSON = b"""
{
  "hash": "0x8B4F4E1D6E0B3A0E6B8A3F0B6B2B9C7F3E0D1C2B3A4F5E6D7C8B9A0F1E2D3C4B",
  "parentHash": "0x1c0bd2a9cd0b2b6a8f5b6c5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
  "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
  "miner": "0x0000000000000000000000000000000000000000",
  "stateRoot": "0x5d3fd2d3c2ca0f7e8a3fe3f4f1f6c0d3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7",
  "transactionsRoot": "0x2f0c47d6a6a2d0c1b8d6b5b3e3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4",
  "receiptsRoot": "0x7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b",
  "logsBloom": "EMPTY_BLOOM",
  "difficulty": "0x0",
  "number": "0x1A",
  "gasLimit": "0x1c9c380",
  "gasUsed": "0x3f8d4",
  "timestamp": "0x6553F100",
  "totalDifficulty": "0x0",
  "extraData": "0x",
  "mixHash": "0x0000000000000000000000000000000000000000000000000000000000000000",
  "nonce": "0x0000000000000000",
  "baseFeePerGas": "0x3b9aca00",
  "withdrawalsRoot": "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421",
  "size": "0x4a1",
  "uncles": [],
  "withdrawals": [],
  "transactions": [
    {
      "type": "0x2",
      "chainId": "0x7a69",
      "nonce": "0x0",
      "gas": "0x5208",
      "maxFeePerGas": "0x77359400",
      "maxPriorityFeePerGas": "0x3b9aca00",
      "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      "value": "0xDE0B6B3A7640000",
      "accessList": [],
      "input": "0x",
      "r": "0x9d5e2b3c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d",
      "s": "0x1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e",
      "yParity": "0x1",
      "v": "0x1",
      "hash": "0xAB1CDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF012345678",
      "blockHash": "0x8B4F4E1D6E0B3A0E6B8A3F0B6B2B9C7F3E0D1C2B3A4F5E6D7C8B9A0F1E2D3C4B",
      "blockNumber": "0x1A",
      "transactionIndex": "0x0",
      "from": "0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266",
      "gasPrice": "0x59682f00"
    },
    {
      "type": "0x2",
      "chainId": "0x7a69",
      "nonce": "0x1f",
      "gas": "0x3a7a0",
      "maxFeePerGas": "0x77359400",
      "maxPriorityFeePerGas": "0x3b9aca00",
      "to": null,
      "value": "0x0",
      "accessList": [],
      "input": "0x6080604052348015600f57600080fd5b50603f80601d6000396000f3fe",
      "r": "0x2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c",
      "s": "0x3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
      "yParity": "0x0",
      "v": "0x0",
      "hash": "0x5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b",
      "blockHash": "0x8B4F4E1D6E0B3A0E6B8A3F0B6B2B9C7F3E0D1C2B3A4F5E6D7C8B9A0F1E2D3C4B",
      "blockNumber": "0x1A",
      "transactionIndex": "0x1",
      "from": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
      "gasPrice": "0x59682f00"
    }
  ]
}
""".replace(b"EMPTY_BLOOM", b"0x" + b"0" * 512)


def node_block() -> dict[str, Any]:
    """A fresh copy of the reply, decoded the way the client decodes it."""
    decoded: dict[str, Any] = orjson.loads(BLOCK_JSON)
    return decoded


def test_block_fields_are_decoded_and_hashes_lower_cased() -> None:
    block = parse_block(node_block(), "dev")
    assert block.number == 26
    assert block.hash == "0x8b4f4e1d6e0b3a0e6b8a3f0b6b2b9c7f3e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b"
    assert block.parent_hash == "0x1c0bd2a9cd0b2b6a8f5b6c5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
    assert block.timestamp == 0x6553F100
    assert len(block.transactions) == 2


def test_value_transfer_is_normalised_to_lower_case_and_integers() -> None:
    transfer = parse_block(node_block(), "dev").transactions[0]
    assert transfer.hash == "0xab1cdef0123456789abcdef0123456789abcdef0123456789abcdef012345678"
    assert transfer.sender == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert transfer.recipient == "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    assert transfer.value_wei == 10**18
    assert transfer.nonce == 0


def test_contract_creation_has_no_recipient() -> None:
    creation = parse_block(node_block(), "dev").transactions[1]
    assert creation.recipient is None
    assert (creation.value_wei, creation.nonce) == (0, 31)


def test_raw_transaction_is_passed_on_exactly_as_the_node_sent_it() -> None:
    raw = node_block()["transactions"][0]
    snapshot = copy.deepcopy(raw)
    assert parse_tx(raw).raw == snapshot
    assert raw == snapshot, "parsing must not modify the node's object"


def test_block_without_transactions_parses() -> None:
    raw = node_block()
    raw["transactions"] = []
    assert parse_block(raw, "dev").transactions == ()


def without(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != key}


def tx_edited(**changes: Any) -> dict[str, Any]:
    raw = node_block()
    raw["transactions"][0] = {**raw["transactions"][0], **changes}
    return raw


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="not-an-object"),
        pytest.param(without(node_block(), "number"), id="no-number"),
        pytest.param(without(node_block(), "hash"), id="no-hash"),
        pytest.param(without(node_block(), "transactions"), id="no-transactions"),
        pytest.param({**node_block(), "number": "0xZZ"}, id="number-not-hex"),
        pytest.param({**node_block(), "number": 26}, id="number-not-a-string"),
        pytest.param({**node_block(), "hash": None}, id="pending-block-null-hash"),
        pytest.param({**node_block(), "timestamp": None}, id="null-timestamp"),
        pytest.param(
            {**node_block(), "transactions": [node_block()["transactions"][0]["hash"]]},
            id="hashes-instead-of-full-transactions",
        ),
        pytest.param(tx_edited(value="lots"), id="tx-value-not-hex"),
        pytest.param(tx_edited(**{"from": None}), id="tx-null-sender"),
        pytest.param(
            {**node_block(), "transactions": [without(node_block()["transactions"][0], "to")]},
            id="tx-without-to",
        ),
    ],
)
def test_malformed_block_raises_node_error_naming_chain_and_method(raw: Any) -> None:
    with pytest.raises(NodeError) as caught:
        parse_block(raw, "dev")
    assert (caught.value.chain, caught.value.method) == ("dev", "eth_getBlockByNumber")
    assert caught.value.reason.startswith("malformed block")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({**node_block(), "number": "26"}, id="number"),
        pytest.param({**node_block(), "timestamp": "6553F100"}, id="timestamp"),
        pytest.param(tx_edited(value="100"), id="tx-value"),
        pytest.param(tx_edited(nonce="0x_1f"), id="tx-nonce-with-underscore"),
    ],
)
def test_quantity_without_0x_prefix_is_malformed(raw: Any) -> None:
    """``int(x, 16)`` would read a decimal "26" as 38; a quantity must be 0x-prefixed hex."""
    with pytest.raises(NodeError):
        parse_block(raw, "dev")


SENDER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
RECIPIENT = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


@pytest.mark.parametrize(
    ("relevant", "kept"),
    [
        (frozenset({SENDER}), [0]),  # sender, written upper-case by the node
        (frozenset({RECIPIENT}), [0, 1]),  # recipient of one, sender of the creation
        (frozenset({"0x" + "ab" * 20}), []),
        (frozenset(), []),
    ],
)
def test_only_transactions_touching_relevant_addresses_are_kept(
    relevant: frozenset[str], kept: list[int]
) -> None:
    raw = node_block()
    block = parse_block(raw, "dev", relevant)
    assert [tx.hash for tx in block.transactions] == [
        raw["transactions"][i]["hash"].lower() for i in kept
    ]
    assert block.transaction_count == 2
    assert block.left_out == 2 - len(kept)


def test_a_left_out_transaction_is_not_validated_but_must_still_have_its_addresses() -> None:
    raw = node_block()
    raw["transactions"][0]["value"] = "not a quantity"
    assert parse_block(raw, "dev", frozenset({"0x" + "ab" * 20})).transaction_count == 2
    with pytest.raises(NodeError, match="malformed block"):
        parse_block(raw, "dev", frozenset({SENDER}))
    raw["transactions"][1] = without(raw["transactions"][1], "from")
    with pytest.raises(NodeError, match="malformed block"):
        parse_block(raw, "dev", frozenset({"0x" + "ab" * 20}))
