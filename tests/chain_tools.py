"""Helpers that make chain situations on anvil: raw transactions and token contracts.

The token contract itself (a ``Transfer`` emitter in raw bytecode) is built by
:func:`watcher.devchain.transfer_emitter_code`, which the benchmarks use too.
"""

from __future__ import annotations

from typing import Any

from watcher.devchain import Anvil

GWEI = 10**9


async def deploy(anvil: Anvil, sender: str, code: str) -> str:
    """Deploy init ``code`` from ``sender`` (mining a block); returns the contract address."""
    tx_hash = await anvil.rpc("eth_sendTransaction", {"from": sender, "data": code})
    await anvil.mine()
    receipt = await anvil.rpc("eth_getTransactionReceipt", tx_hash)
    return str(receipt["contractAddress"]).lower()


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
