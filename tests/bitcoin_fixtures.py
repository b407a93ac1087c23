"""Fixtures with real Bitcoin regtest nodes: bcoin (Bitcoin dialect) and BSV's bitcoind (Core)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from watcher.chains.bitcoin import BitcoinClient
from watcher.chains.bitcoin_rpc import BitcoinRpc
from watcher.devchain_bitcoin import BcoinNode, BsvNode, RegtestNode
from watcher.models import Outpoint

if TYPE_CHECKING:
    from tests.conftest import Harness

COINBASE_MATURITY = 100


async def fund(node: RegtestNode) -> RegtestNode:
    """Mine past coinbase maturity and wait until the wallet can spend."""
    from tests.conftest import wait_until  # conftest imports this module's fixtures

    await node.mine(COINBASE_MATURITY + 1)
    await wait_until(lambda: _can_spend(node), timeout=30, what="a mature coinbase in the wallet")
    return node


async def _can_spend(node: RegtestNode) -> bool:
    """Whether the wallet (which follows blocks asynchronously on bcoin) has a mature coin."""
    unspent = await node.wallet_call("listunspent")
    return any(int(u["confirmations"]) > COINBASE_MATURITY for u in unspent)


def client_for(node: RegtestNode, chain: str = "btc") -> BitcoinClient:
    """The adapter under test, on the node's RPC port and credentials."""
    return BitcoinClient(BitcoinRpc(chain, node.rpc_url, node.session, node.auth))


@pytest.fixture
async def bcoin() -> AsyncIterator[BcoinNode]:
    """A fresh bcoin regtest node (chain, mempool and wallet in memory)."""
    async with BcoinNode() as node:
        yield node


@pytest.fixture
async def funded_bcoin(bcoin: BcoinNode) -> BcoinNode:
    """A bcoin node whose wallet holds spendable coins."""
    await fund(bcoin)
    return bcoin


@pytest.fixture
async def bsv() -> AsyncIterator[BsvNode]:
    """A fresh Bitcoin SV bitcoind in regtest (the Bitcoin Core dialect)."""
    async with BsvNode() as node:
        yield node


@pytest.fixture
async def funded_bsv(bsv: BsvNode) -> BsvNode:
    """A BSV node whose wallet holds spendable coins."""
    await fund(bsv)
    return bsv


# --- building transactions by hand --------------------------------------------------------

FEE = Decimal("0.0001")


def chain_settings(harness: Harness, node: RegtestNode, **extra: Any) -> dict[str, Any]:
    """The ``chains[0]`` keys of a daemon following ``node`` (its password via ``${ENV}``)."""
    harness.environ["WATCHER_TEST_NODE_PASSWORD"] = node.password
    return {
        "kind": "bitcoin",
        "rpc_user": "watcher",
        "rpc_password": "${WATCHER_TEST_NODE_PASSWORD}",
        "network": "regtest",
        "confirmations": 3,
        "dropped_after_s": 0.3,
        **extra,
    }


async def output_to(node: RegtestNode, txid: str, address: str) -> tuple[Outpoint, Decimal]:
    """The output of ``txid`` that pays ``address``, and its amount in coins."""
    raw = await node.rpc.call("getrawtransaction", [txid, True])
    for out in raw["vout"]:
        spk = out["scriptPubKey"]
        if address in (spk.get("address"), *(spk.get("addresses") or ())):
            return (txid, int(out["n"])), Decimal(out["value"])
    raise AssertionError(f"{txid} pays nothing to {address}")


async def signed_spend(
    node: RegtestNode, outpoint: Outpoint, owner: str, outputs: dict[str, Decimal]
) -> str:
    """A signed, unsent transaction spending ``outpoint`` (paid to ``owner``) to ``outputs``."""
    key = await node.wallet_call("dumpprivkey", owner)
    inputs = [{"txid": outpoint[0], "vout": outpoint[1]}]
    unsigned = await node.rpc.call("createrawtransaction", [inputs, outputs])
    signed = await node.rpc.call("signrawtransaction", [unsigned, [], [key]])
    assert signed["complete"], signed
    return str(signed["hex"])


async def broadcast(node: RegtestNode, raw: str) -> str:
    """Send a signed transaction to ``node``; its txid."""
    return str(await node.rpc.call("sendrawtransaction", [raw]))


async def in_mempool(node: RegtestNode, txid: str) -> bool:
    """Whether ``txid`` waits in ``node``'s mempool."""
    return txid in await node.rpc.call("getrawmempool")
