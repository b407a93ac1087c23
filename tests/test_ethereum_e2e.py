"""End to end on Ethereum: a real anvil, the real daemon, a real receiver, a real SQLite file."""

from __future__ import annotations

from collections import Counter

from tests.conftest import Harness, wait_until
from tests.receiver import Receiver
from watcher.daemon import Daemon
from watcher.devchain import Anvil, find_anvil, free_port
from watcher.store import SQLiteStore

ONE_ETHER = 10**18


async def settled(daemon: Daemon, anvil: Anvil, store: SQLiteStore) -> bool:
    """The daemon has processed the node's head and nothing is left to deliver."""
    head = await anvil.block_number()
    cursor = daemon.followers[0].cursor
    if cursor is None or cursor.number < head:
        return False
    return not await store.deliveries("pending")


def subscription(receiver: Receiver, *addresses: str, **extra: object) -> dict[str, object]:
    base = {"id": "treasury", "addresses": list(addresses), "url": receiver.url}
    return {"events": ["tx.mined", "tx.confirmed"], **base, **extra}


async def test_transfers_to_and_from_a_watched_address_are_mined_then_confirmed_once(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    watched = accounts[1]
    config = harness.write_config(anvil.rpc_url, [subscription(receiver, watched, confirmations=3)])
    async with harness.running(config) as daemon, harness.store() as store:
        tx_in = await anvil.send(accounts[0], watched, ONE_ETHER)
        tx_out = await anvil.send(watched, accounts[2], 5)
        tx_other = await anvil.send(accounts[3], accounts[4], 7)
        await anvil.mine()
        await wait_until(lambda: settled(daemon, anvil, store), what="block 1 delivered")
        assert sorted(r.type for r in receiver.received) == ["tx.mined", "tx.mined"]

        await anvil.mine(2)  # the block of the transfers plus two: three confirmations
        await wait_until(lambda: settled(daemon, anvil, store), what="block 3 delivered")
        await anvil.mine(4)
        await wait_until(lambda: settled(daemon, anvil, store), what="block 7 delivered")

    kinds = Counter((r.type, r.tx_hash) for r in receiver.received)
    assert kinds == {
        ("tx.mined", tx_in): 1,
        ("tx.mined", tx_out): 1,
        ("tx.confirmed", tx_in): 1,
        ("tx.confirmed", tx_out): 1,
    }
    assert all(r.tx_hash != tx_other for r in receiver.received)
    assert len(set(receiver.ids())) == 4
    by_key = {(r.type, r.tx_hash): r.payload for r in receiver.received}
    mined_in = by_key[("tx.mined", tx_in)]
    assert mined_in["subscription"] == "treasury"
    assert mined_in["chain"] == "dev"
    assert mined_in["data"]["direction"] == "in"
    assert mined_in["data"]["value"] == str(ONE_ETHER)
    assert mined_in["data"]["address"].lower() == watched
    assert mined_in["data"]["block_number"] == 1
    assert mined_in["data"]["confirmations"] == 1
    assert mined_in["data"]["transaction"]["hash"] == tx_in
    assert by_key[("tx.mined", tx_out)]["data"]["direction"] == "out"
    confirmed_in = by_key[("tx.confirmed", tx_in)]
    assert confirmed_in["data"]["confirmations"] == 3
    assert confirmed_in["data"]["block_hash"] == mined_in["data"]["block_hash"]
    assert confirmed_in["data"]["mined_event_id"] == mined_in["id"]
    mined_at = receiver.received.index(next(r for r in receiver.received if r.payload == mined_in))
    confirmed_at = receiver.received.index(
        next(r for r in receiver.received if r.payload == confirmed_in)
    )
    assert mined_at < confirmed_at


async def test_restart_delivers_every_missed_event_exactly_once(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    watched = accounts[1]
    config = harness.write_config(anvil.rpc_url, [subscription(receiver, watched, confirmations=2)])
    async with harness.running(config) as daemon, harness.store() as store:
        first = await anvil.send(accounts[0], watched, 1)
        await anvil.mine()
        await wait_until(lambda: settled(daemon, anvil, store), what="first transfer delivered")
    assert [r.type for r in receiver.received] == ["tx.mined"]  # not yet confirmed at the stop

    missed = []
    for value in (2, 3, 4):
        missed.append(await anvil.send(accounts[0], watched, value))
        await anvil.mine()
    await anvil.mine(2)

    async with harness.running(config) as daemon, harness.store() as store:
        await wait_until(lambda: settled(daemon, anvil, store), what="catch-up delivered")

    ids = receiver.ids()
    assert len(ids) == len(set(ids)), "a webhook was delivered twice"
    kinds = Counter((r.type, r.tx_hash) for r in receiver.received)
    expected = {(kind, tx): 1 for tx in (first, *missed) for kind in ("tx.mined", "tx.confirmed")}
    assert kinds == expected


async def test_deliveries_wait_for_a_receiver_that_is_down_and_arrive_when_it_is_back(
    anvil: Anvil, receiver: Receiver, harness: Harness
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url, [subscription(receiver, accounts[1], events=["tx.mined"])]
    )
    await receiver.stop()
    async with harness.running(config) as daemon, harness.store() as store:
        tx = await anvil.send(accounts[0], accounts[1], 1)
        await anvil.mine()

        async def retried_twice() -> bool:
            rows = await store.deliveries("pending")
            return bool(rows) and rows[0].attempts >= 2

        await wait_until(retried_twice, what="two failed attempts recorded")
        (row,) = await store.deliveries("pending")
        assert row.last_error is not None
        assert row.last_error.startswith("connection")

        receiver.status = 500
        await receiver.start()
        await wait_until(lambda: receiver.requests >= 1, what="a request to the failing receiver")
        (row,) = await store.deliveries("pending")
        assert row.status == "pending"

        receiver.status = 200
        await wait_until(lambda: settled(daemon, anvil, store), what="delivery after recovery")
        (done,) = await store.deliveries("succeeded")
        assert done.last_status == 200
    assert [r.tx_hash for r in receiver.received] == [tx]


async def test_daemon_keeps_retrying_until_the_node_comes_up(
    receiver: Receiver, harness: Harness
) -> None:
    port = free_port()
    rpc_url = f"http://127.0.0.1:{port}"
    watched = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"  # anvil's second dev account
    config = harness.write_config(rpc_url, [subscription(receiver, watched, events=["tx.mined"])])
    async with harness.running(config) as daemon, harness.store() as store:
        follower = daemon.followers[0]
        assert follower.head_seen is None
        async with Anvil(find_anvil(), port=port) as anvil:
            accounts = await anvil.accounts()
            assert watched in accounts
            tx = await anvil.send(accounts[0], watched, 1)
            await anvil.mine()
            await wait_until(lambda: settled(daemon, anvil, store), timeout=40, what="recovery")
    assert [r.tx_hash for r in receiver.received] == [tx]
