"""The Bitcoin lifecycle end to end: real regtest nodes, the daemon, a receiver that verifies.

bcoin (the Bitcoin dialect, no prevouts in blocks) carries the payment, drop, double-spend
and reorg scenarios; Bitcoin SV's bitcoind (the Core dialect) the mined, confirmed and
``invalidateblock`` ones. Reorgs are made as on a real network: two bcoin nodes mine
competing branches apart, then reconnect, and the longer branch wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from tests.bitcoin_fixtures import (
    FEE,
    broadcast,
    chain_settings,
    fund,
    in_mempool,
    output_to,
    signed_spend,
)
from tests.conftest import Harness, wait_until
from tests.receiver import Receiver
from watcher.devchain_bitcoin import BcoinNode, BsvNode, RegtestNode

TX_EVENTS = [
    "tx.pending", "tx.mined", "tx.confirmed", "tx.dropped", "tx.replaced", "tx.reorged",
]  # fmt: skip


def sub(receiver: Receiver, *addresses: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "w",
        "addresses": list(addresses),
        "url": receiver.url,
        "events": TX_EVENTS,
        **extra,
    }


def history(receiver: Receiver, txid: str, direction: str | None = None) -> list[str]:
    return [
        r.type
        for r in receiver.received
        if r.tx_hash == txid and direction in (None, r.payload["data"]["direction"])
    ]


def has(receiver: Receiver, kind: str, txid: str) -> bool:
    return any(r.type == kind and r.tx_hash == txid for r in receiver.received)


def one(receiver: Receiver, kind: str, txid: str, direction: str | None = None) -> dict[str, Any]:
    (found,) = [
        r.payload
        for r in receiver.received
        if r.type == kind
        and r.tx_hash == txid
        and direction in (None, r.payload["data"]["direction"])
    ]
    return found


async def tip_is(node: RegtestNode, block_hash: str) -> bool:
    return str(await node.rpc.call("getbestblockhash")) == block_hash


# --- bcoin: payments in and out ------------------------------------------------------------


async def test_a_payment_to_and_one_from_a_watched_address_go_pending_mined_confirmed(
    funded_bcoin: BcoinNode, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    """In: pending, mined, confirmed, with daemon restarts in between. Out: the same, the
    input recognised from the watched output the daemon saw created (bcoin blocks carry no
    prevouts)."""
    node = funded_bcoin
    watched = await node.new_address()
    config = harness.write_config(
        node.rpc_url, [sub(receiver, watched)], chain=chain_settings(harness, node)
    )
    session = await session_factory(config)

    paid = await node.send(watched, Decimal("12.3456789"))
    await wait_until(lambda: has(receiver, "tx.pending", paid), what="incoming tx.pending")
    await session.restart()
    await node.mine(1)
    await wait_until(lambda: has(receiver, "tx.mined", paid), what="incoming tx.mined")
    await session.restart()
    await node.mine(2)
    await wait_until(lambda: has(receiver, "tx.confirmed", paid), what="incoming tx.confirmed")

    (coin, amount), other = await output_to(node, paid, watched), await node.new_address()
    spent = await broadcast(node, await signed_spend(node, coin, watched, {other: amount - FEE}))
    await wait_until(lambda: has(receiver, "tx.pending", spent), what="outgoing tx.pending")
    await node.mine(3)
    await wait_until(lambda: has(receiver, "tx.confirmed", spent), what="outgoing tx.confirmed")
    await session.settle()

    assert history(receiver, paid) == ["tx.pending", "tx.mined", "tx.confirmed"]
    assert history(receiver, spent) == ["tx.pending", "tx.mined", "tx.confirmed"]
    incoming = one(receiver, "tx.mined", paid)["data"]
    assert (incoming["address"], incoming["direction"]) == (watched, "in")
    assert incoming["value"] == "1234567890"
    assert incoming["outpoints"] == [f"{coin[0]}:{coin[1]}"]
    assert incoming["transaction"]["txid"] == paid
    pending = one(receiver, "tx.pending", paid)["data"]
    assert (pending["confirmations"], pending["block_number"]) == (0, None)
    confirmed = one(receiver, "tx.confirmed", paid)["data"]
    assert confirmed["confirmations"] == 3
    assert confirmed["mined_event_id"] == one(receiver, "tx.mined", paid)["id"]
    outgoing = one(receiver, "tx.mined", spent)["data"]
    assert (outgoing["address"], outgoing["direction"], outgoing["value"]) == (
        watched,
        "out",
        "1234567890",
    )
    assert outgoing["inputs"] == [
        {"txid": coin[0], "vout": coin[1], "address": watched, "value": "1234567890"}
    ]


async def test_a_payment_evicted_from_the_mempool_is_dropped_after_the_grace_period(
    funded_bcoin: BcoinNode, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    node = funded_bcoin
    watched = await node.new_address()
    config = harness.write_config(
        node.rpc_url, [sub(receiver, watched)], chain=chain_settings(harness, node)
    )
    session = await session_factory(config)
    paid = await node.send(watched, Decimal("1"))
    await wait_until(lambda: has(receiver, "tx.pending", paid), what="tx.pending")
    await node.evict(paid)
    await wait_until(lambda: has(receiver, "tx.dropped", paid), what="tx.dropped")
    await node.mine(1)
    await session.settle()
    assert history(receiver, paid) == ["tx.pending", "tx.dropped"]
    dropped = one(receiver, "tx.dropped", paid)["data"]
    assert (dropped["address"], dropped["value"]) == (watched, "100000000")


# --- bcoin: reorgs with two nodes ----------------------------------------------------------


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[BcoinNode, BcoinNode]]:
    """Our funded node and a peer, both listening: bcoin only syncs from peers it dialled."""
    async with BcoinNode(listen=True) as node, BcoinNode(listen=True) as peer:
        await fund(node)
        yield node, peer


async def linked(node: BcoinNode, peer: BcoinNode) -> None:
    """Let ``peer`` sync ``node``'s chain, then part them."""
    await peer.connect(node)
    tip = str(await node.rpc.call("getbestblockhash"))
    await wait_until(lambda: tip_is(peer, tip), what="the peer to sync")
    await peer.disconnect(node)

    async def apart() -> bool:
        return not await node.rpc.call("getpeerinfo")

    await wait_until(apart, what="the nodes to part")


async def rejoin(node: BcoinNode, peer: BcoinNode, tip: str) -> None:
    """Reconnect; ``node`` adopts ``peer``'s longer branch ending at ``tip``."""
    await node.connect(peer)
    await wait_until(lambda: tip_is(node, tip), what="the reorg to the longer branch")


async def coin_for(node: BcoinNode, address: str, amount: str) -> tuple[tuple[str, int], Decimal]:
    """A confirmed coin paid to ``address`` (not a coinbase: reorgs evict coinbase spends)."""
    txid = await node.send(address, Decimal(amount))
    await wait_until(lambda: in_mempool(node, txid), what="the funding payment")
    await node.mine(1)
    return await output_to(node, txid, address)


async def test_a_double_spend_mined_on_a_longer_branch_reorgs_and_replaces_ours(
    receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    """Ours is mined on our node's branch; the other node mines a spend of the same coin on a
    longer one. When the branches meet: ``tx.reorged`` then ``tx.replaced`` (naming the
    winner) for ours, and the winner's own ``tx.mined`` and ``tx.confirmed``."""
    async with two_nodes() as (node, peer):
        watched, ours_to, theirs_to = [await node.new_address() for _ in range(3)]
        coin, amount = await coin_for(node, watched, "5")
        await linked(node, peer)
        config = harness.write_config(
            node.rpc_url,
            [sub(receiver, watched, direction="out")],
            chain=chain_settings(harness, node, start=0),
        )
        session = await session_factory(config)
        theirs_raw = await signed_spend(node, coin, watched, {theirs_to: amount - 2 * FEE})
        ours = await broadcast(
            node, await signed_spend(node, coin, watched, {ours_to: amount - FEE})
        )
        await wait_until(lambda: has(receiver, "tx.pending", ours), what="ours pending")
        await node.mine(1)
        await wait_until(lambda: has(receiver, "tx.mined", ours), what="ours mined")
        theirs = await broadcast(peer, theirs_raw)
        longer = await peer.mine(2)
        await rejoin(node, peer, longer[-1])
        await wait_until(lambda: has(receiver, "tx.replaced", ours), what="ours replaced")
        await node.mine(1)
        await wait_until(lambda: has(receiver, "tx.confirmed", theirs), what="theirs confirmed")
        await session.settle()

    assert history(receiver, ours) == ["tx.pending", "tx.mined", "tx.reorged", "tx.replaced"]
    reorged = one(receiver, "tx.reorged", ours)["data"]
    assert reorged["cancels"] == [one(receiver, "tx.mined", ours)["id"]]
    replaced = one(receiver, "tx.replaced", ours)["data"]
    assert (replaced["replaced_by"], replaced["replacement_mined"]) == (theirs, True)
    assert history(receiver, theirs) == ["tx.mined", "tx.confirmed"]
    mined = one(receiver, "tx.mined", theirs)["data"]
    assert (mined["direction"], mined["address"], mined["block_hash"]) == (
        "out",
        watched,
        longer[0],
    )


async def test_a_reorg_returns_our_payment_to_the_mempool_and_it_is_mined_again(
    receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    """The daemon is stopped while the reorg happens and catches up after it restarts."""
    async with two_nodes() as (node, peer):
        watched, funding = await node.new_address(), await node.new_address()
        coin, amount = await coin_for(node, funding, "3")
        await linked(node, peer)
        config = harness.write_config(
            node.rpc_url,
            [sub(receiver, watched, confirmations=2)],
            chain=chain_settings(harness, node, start=0),
        )
        session = await session_factory(config)
        paid = await broadcast(
            node, await signed_spend(node, coin, funding, {watched: amount - FEE})
        )
        await wait_until(lambda: has(receiver, "tx.pending", paid), what="tx.pending")
        [first_block] = await node.mine(1)
        await wait_until(lambda: has(receiver, "tx.mined", paid), what="first tx.mined")
        await session.stop()
        longer = await peer.mine(2)
        await rejoin(node, peer, longer[-1])
        await wait_until(lambda: in_mempool(node, paid), what="the payment back in the mempool")
        await session.start()
        await wait_until(lambda: has(receiver, "tx.reorged", paid), what="tx.reorged")
        await node.mine(2)
        await wait_until(lambda: has(receiver, "tx.confirmed", paid), what="tx.confirmed")
        await session.settle()

    assert history(receiver, paid) == [
        "tx.pending", "tx.mined", "tx.reorged", "tx.mined", "tx.confirmed",
    ]  # fmt: skip
    first, second = [r.payload for r in receiver.received if r.type == "tx.mined"]
    assert first["data"]["block_hash"] == first_block
    assert second["data"]["block_hash"] != first_block
    assert one(receiver, "tx.reorged", paid)["data"]["cancels"] == [first["id"]]
    assert one(receiver, "tx.confirmed", paid)["data"]["mined_event_id"] == second["id"]


# --- Bitcoin SV's bitcoind: the Core dialect -----------------------------------------------


async def test_core_dialect_mined_confirmed_and_invalidateblock_reorged(
    funded_bsv: BsvNode, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    node = funded_bsv
    watched = await node.new_address()
    config = harness.write_config(
        node.rpc_url,
        [sub(receiver, watched, events=["tx.mined", "tx.confirmed", "tx.reorged"])],
        chain=chain_settings(harness, node, network=None),
    )
    session = await session_factory(config)
    paid = await node.send(watched, Decimal("2.5"))
    [lost] = await node.mine(1)
    await wait_until(lambda: has(receiver, "tx.mined", paid), what="tx.mined")
    await node.rpc.call("invalidateblock", [lost])
    # A node behind the cursor may only be lagging: the reorg shows once it has a new block
    # at that height (mined to a fresh address, so not the invalidated one again).
    await node.mine(3)
    await wait_until(lambda: has(receiver, "tx.reorged", paid), what="tx.reorged")
    await wait_until(lambda: has(receiver, "tx.confirmed", paid), what="tx.confirmed")
    await session.settle()

    assert history(receiver, paid) == ["tx.mined", "tx.reorged", "tx.mined", "tx.confirmed"]
    first, second = [r.payload for r in receiver.received if r.type == "tx.mined"]
    assert first["data"]["block_hash"] == lost
    assert (second["data"]["value"], second["data"]["address"]) == ("250000000", watched)
    assert one(receiver, "tx.reorged", paid)["data"]["cancels"] == [first["id"]]
