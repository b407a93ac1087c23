"""The Bitcoin adapter against real regtest nodes: bcoin, and Bitcoin SV's Core-derived bitcoind.

Each test starts its own node on loopback (under a second) and talks to it only through
:class:`~watcher.chains.bitcoin.BitcoinClient`, as the follower will.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.bitcoin_fixtures import client_for
from tests.conftest import wait_until
from watcher.btc_addresses import CoinFamily, Network, normalize_btc_address
from watcher.btc_matching import BtcAddressIndex
from watcher.chains.bitcoin import BitcoinClient, BitcoinDialect
from watcher.chains.bitcoin_rpc import BitcoinRpc, CookieAuth, PasswordAuth
from watcher.devchain_bitcoin import BcoinNode, BsvNode, RegtestNode
from watcher.errors import NodeError, NodeRpcError
from watcher.models import Direction, EventType, Subscription

REGTEST_GENESIS = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
UNKNOWN_TXID = "ab" * 32


def watching(*addresses: str) -> BtcAddressIndex:
    sub = Subscription(
        id="s", chain="btc", addresses=frozenset(addresses), events=frozenset(EventType),
        confirmations=1, url="http://127.0.0.1/", secret=b"k",
    )  # fmt: skip
    return BtcAddressIndex([sub])


async def in_mempool(client: BitcoinClient, txid: str) -> bool:
    return txid in await client.mempool_txids()


async def check_payment_lifecycle(node: RegtestNode, client: BitcoinClient) -> None:
    """A payment is listed and described while pending, then found in its block, exactly."""
    recipient = await node.new_address()
    normalize_btc_address(recipient, CoinFamily.BITCOIN, Network.REGTEST)  # a valid address
    txid = await node.send(recipient, Decimal("12.3456789"))
    await wait_until(lambda: in_mempool(client, txid), what="the payment in the mempool")

    pending = await client.transaction(txid)
    assert pending is not None
    assert (pending.block_hash, pending.confirmations) == (None, 0)
    paid = [o for o in pending.tx.outputs if o.address == recipient]
    assert [o.value_sat for o in paid] == [1_234_567_890]

    [block_hash] = await node.mine(1)
    mined = await client.transaction(txid)
    assert mined is not None
    assert (mined.block_hash, mined.confirmations) == (block_hash, 1)
    assert await client.mempool_txids() == []

    head = await client.head()
    assert head.hash == block_hash
    block = await client.block(block_hash)
    assert block.number == head.number
    assert [t.txid for t in block.transactions][1:] == [txid]

    # Outgoing: the input spends a coinbase of the funding wallet, resolved from the node.
    [resolved] = await client.resolve_inputs([mined.tx])
    [spent] = resolved.inputs
    assert spent.value_sat == 5_000_000_000
    assert spent.address is not None
    index = watching(recipient, spent.address)
    matches = {(m.address, m.direction, m.amount_sat) for m in index.match(resolved)}
    assert matches == {
        (recipient, Direction.IN, 1_234_567_890),
        (spent.address, Direction.OUT, 5_000_000_000),
    }


async def check_blocks_and_coinbase(node: RegtestNode, client: BitcoinClient) -> None:
    """Blocks by height carry the coinbase paying the miner and link to their parent."""
    miner = await node.new_address()
    hashes = await node.mine(2, miner)
    tip = await client.block_number()
    blocks = await client.blocks([tip - 1, tip, tip + 1])
    first, second, missing = blocks
    assert missing is None
    assert first is not None
    assert second is not None
    assert [first.hash, second.hash] == hashes
    assert second.parent_hash == first.hash
    assert await client.block_hash(tip) == second.hash
    assert await client.block_hash(tip + 1) is None
    [coinbase] = second.transactions
    assert coinbase.coinbase
    assert coinbase.inputs == ()
    assert [(o.address, o.value_sat) for o in coinbase.outputs if o.value_sat] == [
        (miner, 5_000_000_000)
    ]
    assert [o.address for o in coinbase.outputs if not o.value_sat] in ([], [None])


# --- bcoin --------------------------------------------------------------------------------------


async def test_bcoin_is_detected_as_the_bcoin_dialect(bcoin: BcoinNode) -> None:
    node = await client_for(bcoin).detect()
    assert node.dialect is BitcoinDialect.BCOIN
    assert (node.chain, node.network, node.genesis_hash) == (
        "regtest",
        Network.REGTEST,
        REGTEST_GENESIS,
    )
    assert node.subversion.startswith("/bcoin:")
    assert not node.prevouts_in_blocks


async def test_bcoin_blocks_are_parsed_with_coinbase_and_addresses_list(bcoin: BcoinNode) -> None:
    await check_blocks_and_coinbase(bcoin, client_for(bcoin))


async def test_bcoin_payment_from_mempool_to_block(funded_bcoin: BcoinNode) -> None:
    await check_payment_lifecycle(funded_bcoin, client_for(funded_bcoin))


async def test_bcoin_amounts_are_exact_satoshis(funded_bcoin: BcoinNode) -> None:
    client = client_for(funded_bcoin)
    amounts = {"0.1": 10_000_000, "0.00001": 1_000, "20.99999999": 2_099_999_999}
    sent = {}
    for text, sat in amounts.items():
        sent[await funded_bcoin.send(await funded_bcoin.new_address(), Decimal(text))] = sat
    await wait_until(lambda: _all_in_mempool(client, set(sent)), what="the payments in the mempool")
    for status, (txid, sat) in zip(
        await client.transactions(list(sent)), sent.items(), strict=True
    ):
        assert status is not None
        assert status.tx.txid == txid
        assert sat in [o.value_sat for o in status.tx.outputs]


async def _all_in_mempool(client: BitcoinClient, txids: set[str]) -> bool:
    return txids <= set(await client.mempool_txids())


async def test_bcoin_evicted_transaction_leaves_the_mempool_and_is_unknown(
    funded_bcoin: BcoinNode,
) -> None:
    client = client_for(funded_bcoin)
    txid = await funded_bcoin.send(await funded_bcoin.new_address(), Decimal("1"))
    await wait_until(lambda: in_mempool(client, txid), what="the payment in the mempool")
    await funded_bcoin.evict(txid)
    assert txid not in await client.mempool_txids()
    assert await client.transaction(txid) is None
    assert await client.transactions([UNKNOWN_TXID, txid]) == [None, None]


async def test_bcoin_rpc_errors_arrive_in_http_200_and_become_node_errors(
    bcoin: BcoinNode,
) -> None:
    client = client_for(bcoin)
    with pytest.raises(NodeRpcError) as refused:
        await client.rpc.call("getblock", ["00" * 32, True, True])
    assert (refused.value.http_status, refused.value.message) == (200, "Block not found")
    with pytest.raises(NodeRpcError) as unknown:
        await client.rpc.call("nosuchmethod")
    assert unknown.value.code == -32601


async def test_bcoin_wrong_credentials_are_a_401_node_error(bcoin: BcoinNode) -> None:
    rpc = BitcoinRpc("btc", bcoin.rpc_url, bcoin.session, PasswordAuth("watcher", "wrong"))
    with pytest.raises(NodeError, match="401"):
        await BitcoinClient(rpc).detect()


async def test_two_bcoin_nodes_connect_and_share_blocks() -> None:
    """The launcher's --listen lets a second node peer with the first (for reorg set-ups).

    As in a reorg test: blocks mined while apart, then the nodes connect and sync.
    """
    async with BcoinNode(listen=True) as first, BcoinNode() as second:
        [tip] = await first.mine(1)
        await second.connect(first)
        await wait_until(lambda: _tip_is(second, tip), what="the block to reach the peer")
        await second.disconnect(first)
        await wait_until(lambda: _peers(second, 0), what="the nodes to disconnect")
        await first.mine(1)
        assert await client_for(second).block_number() == 1


async def _peers(node: BcoinNode, count: int) -> bool:
    return len(await node.rpc.call("getpeerinfo")) == count


async def _tip_is(node: RegtestNode, block_hash: str) -> bool:
    return (await client_for(node).head()).hash == block_hash


# --- Bitcoin SV bitcoind (Bitcoin Core dialect) -------------------------------------------------


async def test_bsv_is_detected_as_the_core_dialect_without_prevouts(bsv: BsvNode) -> None:
    node = await client_for(bsv).detect()
    assert node.dialect is BitcoinDialect.CORE
    assert (node.chain, node.genesis_hash) == ("regtest", REGTEST_GENESIS)
    assert node.subversion.startswith("/Bitcoin SV:")
    # its getblock verbosity 3 means "coinbase only": never used outside Bitcoin Core
    assert node.block_params == (2,)
    assert not node.prevouts_in_blocks


async def test_bsv_blocks_are_parsed_with_coinbase(bsv: BsvNode) -> None:
    await check_blocks_and_coinbase(bsv, client_for(bsv))


async def test_bsv_payment_from_mempool_to_block(funded_bsv: BsvNode) -> None:
    await check_payment_lifecycle(funded_bsv, client_for(funded_bsv))


async def test_bsv_rpc_errors_arrive_with_http_error_statuses(bsv: BsvNode) -> None:
    client = client_for(bsv)
    with pytest.raises(NodeRpcError) as out_of_range:
        await client.rpc.call("getblockhash", [10_000])
    assert (out_of_range.value.code, out_of_range.value.http_status) == (-8, 500)
    with pytest.raises(NodeRpcError) as unknown:
        await client.rpc.call("nosuchmethod")
    assert (unknown.value.code, unknown.value.http_status) == (-32601, 404)
    assert await client.transaction(UNKNOWN_TXID) is None
    rpc = BitcoinRpc("btc", bsv.rpc_url, bsv.session, PasswordAuth("watcher", "wrong"))
    with pytest.raises(NodeError, match="401"):
        await BitcoinClient(rpc).head()


async def test_bsv_cookie_file_authenticates() -> None:
    async with BsvNode(cookie=True) as node:
        assert isinstance(node.auth, CookieAuth)
        client = client_for(node)
        assert (await client.detect()).dialect is BitcoinDialect.CORE
        assert (await client.head()).number == 0
