"""Helpers that make chain situations on anvil: raw transactions and token transfer logs."""

from __future__ import annotations

from typing import Any

from watcher.chains.ethereum import TRANSFER_TOPIC
from watcher.devchain import Anvil

GWEI = 10**9


def transfer_emitter_code(kind: str) -> str:
    """Init code of a contract that logs ``Transfer(caller, to, x)`` for calldata ``to ++ x``.

    ``erc20`` logs x as data (LOG3); ``erc721`` logs x as the indexed token id (LOG4). Written
    as raw bytecode so the tests need no Solidity compiler.
    """
    topic = TRANSFER_TOPIC[2:]
    if kind == "erc20":
        # amount = calldata[32:64] -> memory[0:32]; LOG3(0, 32, topic, caller, to)
        runtime = "602035600052600035337f" + topic + "60206000a300"
    else:
        # LOG4(0, 0, topic, caller, to, token_id) with token_id = calldata[32:64]
        runtime = "602035600035337f" + topic + "60006000a400"
    size = len(runtime) // 2
    init = f"60{size:02x}80600b6000396000f3"
    assert len(init) // 2 == 0x0B
    return "0x" + init + runtime


async def deploy(anvil: Anvil, sender: str, code: str) -> str:
    """Deploy init ``code`` from ``sender`` (mining a block); returns the contract address."""
    tx_hash = await anvil.rpc("eth_sendTransaction", {"from": sender, "data": code})
    await anvil.mine()
    receipt = await anvil.rpc("eth_getTransactionReceipt", tx_hash)
    return str(receipt["contractAddress"]).lower()


def transfer_call(to: str, amount_or_id: int) -> str:
    """Calldata for the emitter: the recipient and the amount (or token id), 32 bytes each."""
    return "0x" + to[2:].rjust(64, "0") + hex(amount_or_id)[2:].rjust(64, "0")


async def sign(anvil: Anvil, sender: str, to: str, value: int, **extra: Any) -> str:
    """A raw signed legacy transaction from an unlocked dev account (for anvil_reorg)."""
    nonce = extra.pop("nonce", None)
    if nonce is None:
        nonce = int(await anvil.rpc("eth_getTransactionCount", sender, "pending"), 16)
    tx = {
        "from": sender,
        "to": to,
        "value": hex(value),
        "gas": hex(21000),
        "gasPrice": hex(2 * GWEI),
        "nonce": hex(nonce),
        **extra,
    }
    return str(await anvil.rpc("eth_signTransaction", tx))
