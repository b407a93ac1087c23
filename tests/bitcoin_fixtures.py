"""Fixtures with real Bitcoin regtest nodes: bcoin (Bitcoin dialect) and BSV's bitcoind (Core)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from watcher.chains.bitcoin import BitcoinClient
from watcher.chains.bitcoin_rpc import BitcoinRpc
from watcher.devchain_bitcoin import BcoinNode, BsvNode, RegtestNode

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
