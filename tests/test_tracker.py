"""The transaction lifecycle, driven block by block with hand-built values: no node, no store."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence

from hypothesis import given
from hypothesis import strategies as st

from watcher.addresses import checksum_ethereum
from watcher.events import envelope
from watcher.models import Block, BlockOutcome, Event, EventType, Subscription, Tx
from watcher.tracker import ChainTracker

CHAIN = "dev"
ALICE = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"  # watched
BOB = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"  # watched
CAROL = "0x90f79bf6eb2c4f870365e785982e1f101e93b906"  # not watched
DAVE = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"  # not watched
BOTH = frozenset({EventType.TX_MINED, EventType.TX_CONFIRMED})
NOW = 1_700_000_000.0
ONE_ETH = 10**18


def subscription(
    sub_id: str = "shop",
    addresses: Iterable[str] = (ALICE,),
    events: Iterable[EventType] = BOTH,
    confirmations: int = 3,
    chain: str = CHAIN,
) -> Subscription:
    return Subscription(
        id=sub_id,
        chain=chain,
        addresses=frozenset(addresses),
        events=frozenset(events),
        confirmations=confirmations,
        url=f"https://hooks.example.com/{sub_id}",
        secret=b"0123456789abcdef",
    )


def tx(n: int, sender: str, recipient: str | None, value_wei: int = ONE_ETH) -> Tx:
    tx_hash = f"0x{n:064x}"
    raw = {"hash": tx_hash, "from": sender, "to": recipient, "value": hex(value_wei)}
    return Tx(
        hash=tx_hash, sender=sender, recipient=recipient, value_wei=value_wei, nonce=n, raw=raw
    )


def block_hash(number: int, fork: int = 0) -> str:
    return f"0x{fork:02x}{number:062x}"


def block(number: int, *txs: Tx, fork: int = 0) -> Block:
    return Block(
        number=number,
        hash=block_hash(number, fork),
        parent_hash=block_hash(number - 1, fork),
        timestamp=1_700_000_000 + 12 * number,
        transactions=txs,
    )


def tracker(*subs: Subscription, clock_s: float = NOW) -> ChainTracker:
    return ChainTracker(CHAIN, subs, clock=lambda: clock_s)


def of_type(outcome: BlockOutcome, kind: EventType) -> list[Event]:
    return [e for e in outcome.events if e.type is kind]


def run(t: ChainTracker, blocks: Sequence[Block]) -> list[BlockOutcome]:
    return [t.process(b) for b in blocks]


# --- tx.mined ----------------------------------------------------------------------------


def test_incoming_transfer_to_a_watched_address_is_mined_in() -> None:
    outcome = tracker(subscription()).process(block(100, tx(1, CAROL, ALICE)))

    (event,) = of_type(outcome, EventType.TX_MINED)
    assert (event.chain, event.subscription_id, event.tx_hash) == (CHAIN, "shop", f"0x{1:064x}")
    assert (event.block_number, event.block_hash) == (100, block_hash(100))
    assert event.created_at == NOW
    assert event.data["direction"] == "in"
    assert event.data["address"] == checksum_ethereum(ALICE)
    assert event.data["from"] == checksum_ethereum(CAROL)
    assert event.data["to"] == checksum_ethereum(ALICE)
    assert event.data["value"] == str(ONE_ETH)
    assert event.data["confirmations"] == 1


def test_outgoing_transfer_from_a_watched_address_is_mined_out() -> None:
    outcome = tracker(subscription()).process(block(100, tx(1, ALICE, CAROL)))
    (event,) = of_type(outcome, EventType.TX_MINED)
    assert event.data["direction"] == "out"
    assert event.data["address"] == checksum_ethereum(ALICE)


def test_contract_creation_by_a_watched_address_is_mined_out_with_no_recipient() -> None:
    outcome = tracker(subscription()).process(block(100, tx(1, ALICE, None)))
    (event,) = of_type(outcome, EventType.TX_MINED)
    assert (event.data["direction"], event.data["to"]) == ("out", None)


def test_transfer_to_itself_is_reported_once_per_direction_with_distinct_ids() -> None:
    outcome = tracker(subscription()).process(block(100, tx(1, ALICE, ALICE)))
    mined = of_type(outcome, EventType.TX_MINED)
    assert sorted(e.data["direction"] for e in mined) == ["in", "out"]
    assert len({e.id for e in mined}) == 2


def test_transfer_between_two_watched_addresses_is_reported_for_each() -> None:
    outcome = tracker(subscription(addresses={ALICE, BOB})).process(block(100, tx(1, ALICE, BOB)))
    mined = of_type(outcome, EventType.TX_MINED)
    assert sorted((e.data["address"], e.data["direction"]) for e in mined) == sorted(
        [(checksum_ethereum(ALICE), "out"), (checksum_ethereum(BOB), "in")]
    )


def test_unwatched_transactions_produce_nothing() -> None:
    t = tracker(subscription())
    outcome = t.process(block(100, tx(1, CAROL, DAVE), tx(2, DAVE, None)))
    assert outcome.events == ()
    assert outcome.activities == ()
    assert t.awaiting_confirmation == 0


def test_subscriptions_of_other_chains_are_ignored() -> None:
    t = tracker(subscription(chain="mainnet"))
    assert t.watched_addresses == 0
    assert t.process(block(100, tx(1, CAROL, ALICE))).events == ()


def test_outcome_carries_the_block_identity_and_parent_hash() -> None:
    outcome = tracker(subscription()).process(block(100))
    assert (outcome.block.number, outcome.block.hash) == (100, block_hash(100))
    assert outcome.parent_hash == block_hash(99)


# --- tx.confirmed ------------------------------------------------------------------------


def test_confirmed_exactly_once_when_the_depth_is_reached() -> None:
    """Depth 3 for a tx mined in 100: blocks 100, 101, 102 make three confirmations."""
    t = tracker(subscription(confirmations=3))
    outcomes = run(t, [block(100, tx(1, CAROL, ALICE)), *(block(n) for n in range(101, 106))])

    confirmed = {o.block.number: of_type(o, EventType.TX_CONFIRMED) for o in outcomes}
    assert {n: len(events) for n, events in confirmed.items()} == {
        100: 0,
        101: 0,
        102: 1,
        103: 0,
        104: 0,
        105: 0,
    }
    (event,) = confirmed[102]
    (mined,) = of_type(outcomes[0], EventType.TX_MINED)
    assert event.data["confirmations"] == 3
    assert event.data["mined_event_id"] == mined.id
    assert (event.block_number, event.block_hash, event.tx_hash) == (
        100,
        block_hash(100),
        mined.tx_hash,
    )
    assert [(a.mined_event_id, a.confirmed_event_id) for a in outcomes[2].activities] == [
        (mined.id, event.id)
    ]
    assert t.awaiting_confirmation == 0


def test_depth_one_confirms_in_the_mined_block_itself() -> None:
    outcome = tracker(subscription(confirmations=1)).process(block(100, tx(1, CAROL, ALICE)))
    assert [e.type for e in outcome.events] == [EventType.TX_MINED, EventType.TX_CONFIRMED]
    assert outcome.events[1].data["confirmations"] == 1


def test_each_subscription_confirms_at_its_own_depth() -> None:
    fast = subscription("fast", confirmations=1)
    slow = subscription("slow", confirmations=4)
    outcomes = run(
        tracker(fast, slow), [block(100, tx(1, CAROL, ALICE)), block(101), block(102), block(103)]
    )

    confirmed_at = {
        (e.subscription_id, o.block.number)
        for o in outcomes
        for e in of_type(o, EventType.TX_CONFIRMED)
    }
    assert confirmed_at == {("fast", 100), ("slow", 103)}


def test_mined_only_subscription_waits_for_nothing() -> None:
    t = tracker(subscription(events={EventType.TX_MINED}, confirmations=1))
    outcome = t.process(block(100, tx(1, CAROL, ALICE)))
    assert [e.type for e in outcome.events] == [EventType.TX_MINED]
    assert outcome.activities == ()
    assert t.awaiting_confirmation == 0


def test_confirmed_only_subscription_gets_no_mined_event() -> None:
    t = tracker(subscription(events={EventType.TX_CONFIRMED}, confirmations=2))
    first, second = run(t, [block(100, tx(1, CAROL, ALICE)), block(101)])
    assert first.events == ()
    assert [e.type for e in second.events] == [EventType.TX_CONFIRMED]


def test_restored_pending_confirmations_still_confirm() -> None:
    """After a restart the tracker is rebuilt from the store's pending rows and carries on."""
    sub = subscription(confirmations=3)
    before = tracker(sub)
    mined_outcome = before.process(block(100, tx(1, CAROL, ALICE)))
    uninterrupted = run(before, [block(101), block(102)])

    restarted = ChainTracker(CHAIN, [sub], activities=mined_outcome.activities, clock=lambda: NOW)
    assert restarted.awaiting_confirmation == 1
    after = run(restarted, [block(101), block(102)])

    assert after[0].events == ()
    (event,) = after[1].events
    assert event == uninterrupted[1].events[0]
    assert event.data["mined_event_id"] == mined_outcome.events[0].id
    assert restarted.awaiting_confirmation == 0


# --- event ids ---------------------------------------------------------------------------


def test_event_ids_are_deterministic_for_the_same_chain_facts() -> None:
    blocks = [block(100, tx(1, CAROL, ALICE)), block(101)]
    sub = subscription(confirmations=2)
    first = run(tracker(sub, clock_s=NOW), blocks)
    again = run(tracker(sub, clock_s=NOW + 3600), blocks)
    assert [e.id for o in first for e in o.events] == [e.id for o in again for e in o.events]
    assert all(e.id.startswith("evt_") for o in first for e in o.events)


def test_same_transaction_in_a_different_block_gets_different_ids() -> None:
    """A reorg re-mines the tx in a block with another hash: receivers must see new events."""
    sub = subscription(confirmations=1)
    canonical = tracker(sub).process(block(100, tx(1, CAROL, ALICE)))
    reorged = tracker(sub).process(block(100, tx(1, CAROL, ALICE), fork=1))
    assert [e.type for e in canonical.events] == [e.type for e in reorged.events]
    assert not {e.id for e in canonical.events} & {e.id for e in reorged.events}


def test_mined_and_confirmed_events_have_different_ids() -> None:
    outcome = tracker(subscription(confirmations=1)).process(block(100, tx(1, CAROL, ALICE)))
    assert len({e.id for e in outcome.events}) == 2


# --- the envelope ------------------------------------------------------------------------


def test_envelope_is_json_with_the_documented_fields() -> None:
    big_value = 123_456_789 * 10**24  # beyond 2**64: only a string keeps it exact in JSON
    outcome = tracker(subscription()).process(block(100, tx(1, CAROL, ALICE, big_value)))
    (event,) = outcome.events

    doc = json.loads(envelope(event))

    assert set(doc) == {"id", "type", "timestamp", "subscription", "chain", "data"}
    assert doc["id"] == event.id
    assert doc["type"] == "tx.mined"
    assert doc["timestamp"] == "2023-11-14T22:13:20.000Z"
    assert (doc["subscription"], doc["chain"]) == ("shop", CHAIN)
    assert doc["data"]["value"] == "123456789000000000000000000000000"
    assert doc["data"]["block_number"] == 100
    assert doc["data"]["transaction"] == {
        "hash": event.tx_hash,
        "from": CAROL,
        "to": ALICE,
        "value": hex(big_value),
    }


def test_envelope_bytes_are_stable_for_the_same_event() -> None:
    outcome = tracker(subscription()).process(block(100, tx(1, CAROL, ALICE)))
    (event,) = outcome.events
    assert envelope(event) == envelope(event)


# --- property: every mined tx is confirmed exactly once, at its depth --------------------

WATCHED = (ALICE, BOB)
EVERYONE = (ALICE, BOB, CAROL, DAVE)
transfers = st.tuples(st.sampled_from(EVERYONE), st.none() | st.sampled_from(EVERYONE))


@given(
    depth=st.integers(min_value=1, max_value=6),
    first=st.integers(min_value=0, max_value=10**9),
    bodies=st.lists(st.lists(transfers, max_size=4), min_size=1, max_size=25),
)
def test_every_mined_tx_is_confirmed_exactly_once_never_before_its_depth(
    depth: int, first: int, bodies: list[list[tuple[str, str | None]]]
) -> None:
    numbers = itertools.count(1)
    blocks = [
        block(first + i, *(tx(next(numbers), s, r) for s, r in body))
        for i, body in enumerate(bodies)
    ]
    t = tracker(subscription(addresses=WATCHED, confirmations=depth))

    mined_at: dict[str, int] = {}
    confirmed_at: dict[str, int] = {}
    confirmations: Counter[str] = Counter()
    for b in blocks:
        for event in t.process(b).events:
            if event.type is EventType.TX_MINED:
                mined_at[event.id] = b.number
            else:
                mined_id = str(event.data["mined_event_id"])
                confirmations[mined_id] += 1
                confirmed_at[mined_id] = b.number
                assert event.data["confirmations"] == b.number - mined_at[mined_id] + 1

    watched_sides = sum((s in WATCHED) + (r in WATCHED) for body in bodies for s, r in body)
    assert len(mined_at) == watched_sides
    assert all(count == 1 for count in confirmations.values())
    last = blocks[-1].number
    due = {eid for eid, n in mined_at.items() if n + depth - 1 <= last}
    assert set(confirmed_at) == due
    for eid in due:
        assert confirmed_at[eid] - mined_at[eid] + 1 == depth
    assert t.awaiting_confirmation == len(mined_at) - len(due)
