"""The whole transaction lifecycle on a real anvil: pending, mined, confirmed, dropped,
replaced, reorged, token transfers, block events and conditions, delivered to a real receiver.

Each scenario with a ``restart`` parameter also runs with the daemon stopped and started
again in its middle, and must produce the same events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pytest

from tests.chain_tools import GWEI, deploy, sign
from tests.conftest import Harness, wait_until
from tests.receiver import Receiver
from watcher.devchain import Anvil, transfer_call, transfer_emitter_code

ETHER = 10**18
ALL_TX_EVENTS = [
    "tx.pending", "tx.mined", "tx.confirmed", "tx.dropped", "tx.replaced", "tx.reorged",
]  # fmt: skip


def sub(receiver: Receiver, *addresses: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "w", "addresses": list(addresses), "url": receiver.url}
    return {"events": ALL_TX_EVENTS, "confirmations": 3, **base, **extra}


def history(receiver: Receiver, tx_hash: str) -> list[str]:
    return [r.type for r in receiver.received if r.tx_hash == tx_hash]


def has(receiver: Receiver, kind: str, tx_hash: str) -> bool:
    return any(r.type == kind and r.tx_hash == tx_hash for r in receiver.received)


def one(receiver: Receiver, kind: str, tx_hash: str) -> dict[str, Any]:
    (found,) = [r.payload for r in receiver.received if r.type == kind and r.tx_hash == tx_hash]
    return found


@pytest.mark.parametrize("restart", [False, True], ids=["steady", "restarted"])
async def test_pending_then_mined_then_confirmed_each_once_in_order(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any, restart: bool
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(anvil.rpc_url, [sub(receiver, accounts[1])])
    session = await session_factory(config)
    tx = await anvil.send(accounts[0], accounts[1], ETHER)
    await wait_until(lambda: has(receiver, "tx.pending", tx), what="tx.pending")
    if restart:
        await session.restart()
    await anvil.mine()
    await wait_until(lambda: has(receiver, "tx.mined", tx), what="tx.mined")
    if restart:
        await session.restart()
    await anvil.mine(2)
    await wait_until(lambda: has(receiver, "tx.confirmed", tx), what="tx.confirmed")
    await anvil.mine(3)
    await session.settle()
    assert history(receiver, tx) == ["tx.pending", "tx.mined", "tx.confirmed"]
    pending = one(receiver, "tx.pending", tx)["data"]
    assert pending["confirmations"] == 0
    assert pending["block_number"] is None
    assert pending["value"] == str(ETHER)


@pytest.mark.parametrize("restart", [False, True], ids=["steady", "restarted"])
async def test_a_pending_transaction_that_disappears_is_dropped_once_after_the_grace_period(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any, restart: bool
) -> None:
    accounts = await anvil.accounts()
    grace = 0.5
    config = harness.write_config(
        anvil.rpc_url, [sub(receiver, accounts[1])], chain={"dropped_after_s": grace}
    )
    session = await session_factory(config)
    tx = await anvil.send(accounts[0], accounts[1], ETHER)
    await wait_until(lambda: has(receiver, "tx.pending", tx), what="tx.pending")
    if restart:
        await session.restart()
    await anvil.rpc("anvil_dropTransaction", tx)
    await wait_until(lambda: has(receiver, "tx.dropped", tx), what="tx.dropped")
    await anvil.mine(2)
    await session.settle()
    assert history(receiver, tx) == ["tx.pending", "tx.dropped"]
    dropped = one(receiver, "tx.dropped", tx)
    announced = datetime.fromisoformat(dropped["timestamp"]).timestamp()
    assert announced - dropped["data"]["pending_since"] >= grace


@pytest.mark.parametrize("restart", [False, True], ids=["steady", "restarted"])
async def test_a_same_nonce_higher_fee_transaction_replaces_the_pending_one(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any, restart: bool
) -> None:
    accounts = await anvil.accounts()
    watched = accounts[1]
    config = harness.write_config(
        anvil.rpc_url, [sub(receiver, watched)], chain={"dropped_after_s": 0.3}
    )
    session = await session_factory(config)
    first = await anvil.send(watched, accounts[2], 1, gasPrice=hex(2 * GWEI), nonce="0x0")
    await wait_until(lambda: has(receiver, "tx.pending", first), what="first pending")
    if restart:
        await session.stop()
    second = await anvil.send(watched, accounts[2], 2, gasPrice=hex(4 * GWEI), nonce="0x0")
    if restart:
        await session.start()
    await wait_until(lambda: has(receiver, "tx.replaced", first), what="tx.replaced")
    await anvil.mine()
    await wait_until(lambda: has(receiver, "tx.mined", second), what="replacement mined")
    await anvil.mine(3)
    await session.settle()
    assert history(receiver, first) == ["tx.pending", "tx.replaced"]
    assert one(receiver, "tx.replaced", first)["data"]["replaced_by"] == second
    assert history(receiver, second) == ["tx.pending", "tx.mined", "tx.confirmed"]


@pytest.mark.parametrize(
    ("depth", "offset", "restart"),
    [(1, 0, False), (3, 1, False), (3, 1, True)],
    ids=["depth1", "depth3", "depth3-restarted"],
)
async def test_a_reorg_that_reincludes_the_transaction_reports_reorged_then_mined_again(
    anvil: Anvil,
    receiver: Receiver,
    harness: Harness,
    session_factory: Any,
    depth: int,
    offset: int,
    restart: bool,
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url, [sub(receiver, accounts[1], confirmations=5)], chain={"start": 0}
    )
    session = await session_factory(config)
    raw = await sign(anvil, accounts[0], accounts[1], ETHER)
    tx = await anvil.rpc("eth_sendRawTransaction", raw)
    await wait_until(lambda: has(receiver, "tx.pending", tx), what="tx.pending")
    await anvil.mine(depth)  # the transaction is in the first of these blocks
    await wait_until(lambda: has(receiver, "tx.mined", tx), what="first tx.mined")
    await session.settle()
    first_mined = one(receiver, "tx.mined", tx)
    if restart:
        await session.stop()
    await anvil.rpc("anvil_reorg", depth, [[raw, offset]])
    if restart:
        await session.start()
    await wait_until(lambda: has(receiver, "tx.reorged", tx), what="tx.reorged")
    await wait_until(lambda: len(history(receiver, tx)) >= 4, what="mined again")
    await anvil.mine(6)
    await wait_until(lambda: has(receiver, "tx.confirmed", tx), what="tx.confirmed")
    await session.settle()

    assert history(receiver, tx) == [
        "tx.pending",
        "tx.mined",
        "tx.reorged",
        "tx.mined",
        "tx.confirmed",
    ]
    reorged = one(receiver, "tx.reorged", tx)
    assert reorged["data"]["cancels"] == [first_mined["id"]]
    assert reorged["data"]["block_hash"] == first_mined["data"]["block_hash"]
    second_mined = [r.payload for r in receiver.received if r.type == "tx.mined"][1]
    assert second_mined["data"]["block_hash"] != first_mined["data"]["block_hash"]
    expected_block = first_mined["data"]["block_number"] + offset
    assert second_mined["data"]["block_number"] == expected_block
    confirmed = one(receiver, "tx.confirmed", tx)
    assert confirmed["data"]["block_hash"] == second_mined["data"]["block_hash"]
    assert confirmed["data"]["mined_event_id"] == second_mined["id"]


async def test_a_reorg_that_removes_the_transaction_for_good_confirms_nothing(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    accounts = await anvil.accounts()
    events = ["tx.mined", "tx.confirmed", "tx.reorged"]
    config = harness.write_config(
        anvil.rpc_url, [sub(receiver, accounts[1], events=events, confirmations=4)]
    )
    session = await session_factory(config)
    tx = await anvil.send(accounts[0], accounts[1], ETHER)
    await anvil.mine(2)
    await wait_until(lambda: has(receiver, "tx.mined", tx), what="tx.mined")
    await anvil.rpc("anvil_reorg", 2, [])
    await wait_until(lambda: has(receiver, "tx.reorged", tx), what="tx.reorged")
    await anvil.mine(6)
    await session.settle()
    assert history(receiver, tx) == ["tx.mined", "tx.reorged"]
    assert one(receiver, "tx.reorged", tx)["data"]["cancels"] == [
        one(receiver, "tx.mined", tx)["id"]
    ]


async def test_a_reorg_after_confirmation_cancels_both_events(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    accounts = await anvil.accounts()
    events = ["tx.mined", "tx.confirmed", "tx.reorged"]
    config = harness.write_config(
        anvil.rpc_url, [sub(receiver, accounts[1], events=events, confirmations=2)]
    )
    session = await session_factory(config)
    tx = await anvil.send(accounts[0], accounts[1], ETHER)
    await anvil.mine(3)
    await wait_until(lambda: has(receiver, "tx.confirmed", tx), what="tx.confirmed")
    await anvil.rpc("anvil_reorg", 3, [])
    await wait_until(lambda: has(receiver, "tx.reorged", tx), what="tx.reorged")
    await session.settle()
    cancels = one(receiver, "tx.reorged", tx)["data"]["cancels"]
    assert cancels == [one(receiver, "tx.mined", tx)["id"], one(receiver, "tx.confirmed", tx)["id"]]


@pytest.mark.parametrize("kind", ["erc20", "erc721"])
async def test_token_transfer_logs_to_a_watched_address_and_of_a_watched_token(
    anvil: Anvil,
    receiver: Receiver,
    harness: Harness,
    session_factory: Any,
    kind: Literal["erc20", "erc721"],
) -> None:
    accounts = await anvil.accounts()
    sender, watched = accounts[2], accounts[1]
    token = await deploy(anvil, accounts[0], transfer_emitter_code(kind))
    subs = [
        sub(receiver, watched, id="holder", events=["tx.mined", "tx.confirmed"]),
        {"id": "token", "tokens": [token], "url": receiver.url, "events": ["tx.mined"]},
    ]
    config = harness.write_config(anvil.rpc_url, subs)
    session = await session_factory(config)
    tx = await anvil.rpc(
        "eth_sendTransaction", {"from": sender, "to": token, "data": transfer_call(watched, 1234)}
    )
    await anvil.mine(3)
    await wait_until(lambda: has(receiver, "tx.confirmed", tx), what="transfer confirmed")
    await session.settle()

    by_sub = {(r.payload["subscription"], r.type): r.payload for r in receiver.received}
    assert set(by_sub) == {
        ("holder", "tx.mined"),
        ("holder", "tx.confirmed"),
        ("token", "tx.mined"),
    }
    data = by_sub[("holder", "tx.mined")]["data"]
    assert data["kind"] == kind
    assert data["token"].lower() == token
    assert data["from"].lower() == sender
    assert data["to"].lower() == watched
    assert data["direction"] == "in"
    assert data["address"].lower() == watched
    amount_key, other_key = ("amount", "token_id") if kind == "erc20" else ("token_id", "amount")
    assert data[amount_key] == "1234"
    assert data[other_key] is None
    token_event = by_sub[("token", "tx.mined")]["data"]
    assert token_event["direction"] is None
    assert token_event["address"].lower() == token


async def test_conditions_and_direction_select_which_transfers_are_reported(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    accounts = await anvil.accounts()
    watched = accounts[1]
    conditions = [
        {"key": "value", "condition": "gte", "value": "1 ether"},
        {
            "any": [
                {"key": "from", "condition": "eq", "value": accounts[0]},
                {"key": "value", "condition": "gt", "value": "5 ether"},
            ]
        },
    ]
    config = harness.write_config(
        anvil.rpc_url,
        [sub(receiver, watched, events=["tx.mined"], direction="in", conditions=conditions)],
    )
    session = await session_factory(config)
    small = await anvil.send(accounts[0], watched, ETHER // 2)
    big_from_0 = await anvil.send(accounts[0], watched, 2 * ETHER)
    mid_from_3 = await anvil.send(accounts[3], watched, 2 * ETHER)
    huge_from_3 = await anvil.send(accounts[3], watched, 6 * ETHER)
    outgoing = await anvil.send(watched, accounts[2], 3 * ETHER)
    await anvil.mine()
    await wait_until(lambda: len(receiver.received) >= 2, what="matching transfers")
    await session.settle()
    assert sorted(r.tx_hash for r in receiver.received) == sorted([big_from_0, huge_from_3])
    assert {small, mid_from_3, outgoing}.isdisjoint(r.tx_hash for r in receiver.received)


async def test_block_mined_subscribers_hear_of_every_block(
    anvil: Anvil, receiver: Receiver, harness: Harness, session_factory: Any
) -> None:
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "blocks", "events": ["block.mined"], "url": receiver.url}],
        chain={"start": 1},
    )
    session = await session_factory(config)
    await anvil.mine(3)
    await wait_until(lambda: len(receiver.received) >= 3, what="three block events")
    await session.settle()
    numbers = [r.payload["data"]["block_number"] for r in receiver.received]
    assert numbers == [1, 2, 3]
    assert all(r.type == "block.mined" for r in receiver.received)
