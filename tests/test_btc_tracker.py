"""The Bitcoin lifecycle driven with hand-built blocks and pool snapshots: no node, no store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import orjson

from watcher.btc_tracker import BitcoinTracker
from watcher.conditions import parse_conditions
from watcher.events import envelope
from watcher.mempool import TxStatus
from watcher.models import (
    BlockOutcome,
    BlockRef,
    BtcBlock,
    BtcTx,
    BtcTxIn,
    BtcTxOut,
    Direction,
    Event,
    EventType,
    Subscription,
)
from watcher.protocols import PoolSnapshot

CHAIN = "btc"
WATCHED = "bcrt1qwatched"
OTHER = "bcrt1qother"
STRANGER = "mstranger"
ALL = frozenset(EventType) - {EventType.BLOCK_MINED}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def subscription(
    events: Iterable[EventType] = ALL,
    confirmations: int = 3,
    direction: Direction | None = None,
    conditions: list[object] | None = None,
) -> Subscription:
    return Subscription(
        id="s",
        chain=CHAIN,
        addresses=frozenset({WATCHED}),
        events=frozenset(events),
        confirmations=confirmations,
        url="https://hooks.example.com/s",
        secret=b"0123456789abcdef",
        direction=direction,
        condition=parse_conditions(conditions),
    )


def txid(n: int) -> str:
    return f"{n:064x}"


def tx(n: int, spends: Sequence[BtcTxIn], pays: Sequence[tuple[str | None, int]]) -> BtcTx:
    outputs = tuple(BtcTxOut(i, address, sat) for i, (address, sat) in enumerate(pays))
    raw = {
        "txid": txid(n),
        "vin": [{"txid": i.prev_txid, "vout": i.prev_vout} for i in spends],
        "vout": [{"n": o.n, "value": Decimal(o.value_sat).scaleb(-8)} for o in outputs],
    }
    return BtcTx(txid(n), tuple(spends), outputs, coinbase=not spends, raw=raw)


def spend(n: int, vout: int = 0) -> BtcTxIn:
    """An input without prevout: whose output it is must come from elsewhere."""
    return BtcTxIn(txid(n), vout)


def block(number: int, *txs: BtcTx, fork: str = "a") -> BtcBlock:
    parent = _hash(number - 1, "a" if fork == "a" or number == 1 else fork)
    return BtcBlock(number, _hash(number, fork), parent, 1_700_000_000 + number, txs)


def _hash(number: int, fork: str) -> str:
    return fork * 4 + f"{number:060x}"


def tracker(*subs: Subscription, clock: Clock | None = None) -> BitcoinTracker:
    return BitcoinTracker(
        CHAIN, subs or (subscription(),), clock=clock or Clock(), dropped_grace_s=5
    )


def of_type(events: Iterable[Event], kind: EventType) -> list[Event]:
    return [e for e in events if e.type is kind]


def run(t: BitcoinTracker, *blocks: BtcBlock) -> list[BlockOutcome]:
    return [t.process(b, {}) for b in blocks]


# --- mined and confirmed --------------------------------------------------------------------


def test_a_payment_to_a_watched_address_is_mined_in_with_satoshis_and_outpoints() -> None:
    t = tracker()
    payment = tx(1, [BtcTxIn(txid(9), 0, STRANGER, 5_000)], [(WATCHED, 1_234), (STRANGER, 3_000)])
    outcome = t.process(block(1, payment), {})
    (event,) = of_type(outcome.events, EventType.TX_MINED)
    data = event.data
    assert (data["address"], data["direction"], data["value"]) == (WATCHED, "in", "1234")
    assert data["outpoints"] == [f"{txid(1)}:0"]
    assert data["outputs"][0] == {"n": 0, "address": WATCHED, "value": "1234"}
    assert data["inputs"] == [{"txid": txid(9), "vout": 0, "address": STRANGER, "value": "5000"}]
    assert data["transaction"]["vout"][0]["value"] == "0.00001234"
    body = orjson.loads(envelope(event))  # the payload is plain JSON, amounts exact
    assert body["data"]["transaction"]["vout"][1]["value"] == "0.00003000"
    assert [(o.txid, o.n, o.address, o.value_sat) for o in outcome.outputs_created] == [
        (txid(1), 0, WATCHED, 1_234)
    ]


def test_a_later_spend_of_a_remembered_output_is_mined_out_without_a_prevout() -> None:
    t = tracker()
    run(t, block(1, tx(1, [spend(9)], [(WATCHED, 700)])))
    outcome = t.process(block(2, tx(2, [spend(1, 0)], [(OTHER, 650)])), {})
    (event,) = of_type(outcome.events, EventType.TX_MINED)
    assert (event.data["direction"], event.data["value"]) == ("out", "700")
    assert event.data["inputs"][0]["address"] == WATCHED
    assert outcome.outputs_spent == ((txid(1), 0),)
    assert t.watched_outputs == 0


def test_a_spend_the_node_gives_a_prevout_for_needs_no_remembered_output() -> None:
    t = tracker()
    outcome = t.process(block(1, tx(1, [BtcTxIn(txid(5), 3, WATCHED, 900)], [(OTHER, 800)])), {})
    assert t.facts_needed([block(1, tx(1, [BtcTxIn(txid(5), 3, WATCHED, 900)], []))]) == set()
    (event,) = of_type(outcome.events, EventType.TX_MINED)
    assert (event.data["direction"], event.data["value"]) == ("out", "900")


def test_inputs_nothing_else_explains_are_looked_up_and_then_matched() -> None:
    t = tracker()
    older = txid(5)  # paid WATCHED before the daemon watched it
    b = block(1, tx(1, [spend(5, 1)], [(OTHER, 10)]), tx(2, [spend(1, 0)], [(OTHER, 5)]))
    assert t.facts_needed([b]) == {older}  # tx 2's parent is in the same batch
    facts = {older: (BtcTxOut(0, STRANGER, 1), BtcTxOut(1, WATCHED, 40))}
    outcome = t.process(b, facts)
    (event,) = of_type(outcome.events, EventType.TX_MINED)
    assert (event.tx_hash, event.data["direction"], event.data["value"]) == (txid(1), "out", "40")
    assert outcome.outputs_spent == ()  # not a remembered output: nothing to update


def test_an_output_created_and_spent_in_the_same_block_is_both_in_and_out() -> None:
    t = tracker()
    outcome = t.process(
        block(1, tx(1, [spend(9)], [(WATCHED, 50)]), tx(2, [spend(1, 0)], [(OTHER, 45)])), {}
    )
    kinds = [(e.tx_hash, e.data["direction"]) for e in of_type(outcome.events, EventType.TX_MINED)]
    assert kinds == [(txid(1), "in"), (txid(2), "out")]
    assert [o.outpoint for o in outcome.outputs_created] == [(txid(1), 0)]
    assert outcome.outputs_spent == ((txid(1), 0),)


def test_confirmed_once_at_the_subscription_depth() -> None:
    t = tracker(subscription(confirmations=3))
    outcomes = run(t, block(1, tx(1, [spend(9)], [(WATCHED, 5)])), block(2), block(3), block(4))
    confirmed = [e for o in outcomes for e in of_type(o.events, EventType.TX_CONFIRMED)]
    assert [(e.block_number, e.data["confirmations"]) for e in confirmed] == [(1, 3)]
    assert confirmed[0].data["mined_event_id"] == outcomes[0].events[0].id


def test_direction_and_conditions_on_value_in_btc_units_select_payments() -> None:
    sub = subscription(
        direction=Direction.IN, conditions=[{"key": "value", "condition": "gte", "value": "1 btc"}]
    )
    t = tracker(sub)
    small = tx(1, [spend(9)], [(WATCHED, 99_999_999)])
    big = tx(2, [spend(8)], [(WATCHED, 100_000_000)])
    outgoing = tx(3, [BtcTxIn(txid(7), 0, WATCHED, 500_000_000)], [(OTHER, 1)])
    outcome = t.process(block(1, small, big, outgoing), {})
    assert [e.tx_hash for e in outcome.events] == [txid(2)]


def test_block_mined_subscribers_hear_of_every_block() -> None:
    sub = subscription(events=[EventType.BLOCK_MINED])
    (outcome,) = run(tracker(sub), block(1, tx(1, [], [(STRANGER, 1)])))
    (event,) = outcome.events
    assert (event.type, event.data["transaction_count"]) == (EventType.BLOCK_MINED, 1)


def test_a_restarted_tracker_remembers_the_watched_outputs_it_recorded() -> None:
    first = tracker()
    (outcome,) = run(first, block(1, tx(1, [spend(9)], [(WATCHED, 70)])))
    restarted = BitcoinTracker(
        CHAIN, [subscription()], recent_blocks=[outcome.block], outputs=outcome.outputs_created
    )
    assert restarted.facts_needed([block(2, tx(2, [spend(1, 0)], []))]) == set()
    (later,) = run(restarted, block(2, tx(2, [spend(1, 0)], [(OTHER, 60)])))
    assert [e.data["direction"] for e in later.events] == ["out"]


# --- mempool ------------------------------------------------------------------------------


def look(*txs: BtcTx, also: Iterable[str] = ()) -> PoolSnapshot[BtcTx]:
    return PoolSnapshot(frozenset([t.txid for t in txs] + list(also)), txs)


def test_a_pool_payment_is_pending_once_then_mined_silently() -> None:
    t = tracker()
    payment = tx(1, [spend(9)], [(WATCHED, 5)])
    first = t.observe_pool(look(payment), {}, {})
    assert [(e.type, e.data["value"], e.data["confirmations"]) for e in first.events] == [
        (EventType.TX_PENDING, "5", 0)
    ]
    again = t.observe_pool(PoolSnapshot(frozenset({payment.txid}), []), {}, {})
    assert again.events == ()
    outcome = t.process(block(1, payment), {})
    assert [e.type for e in outcome.events] == [EventType.TX_MINED]
    assert outcome.pool_removed == (payment.txid,)


def test_a_pool_spend_of_a_remembered_output_is_pending_out() -> None:
    t = tracker()
    run(t, block(1, tx(1, [spend(9)], [(WATCHED, 80)])))
    outcome = t.observe_pool(look(tx(2, [spend(1, 0)], [(OTHER, 70)])), {}, {})
    (event,) = outcome.events
    assert (event.type, event.data["direction"], event.data["value"]) == (
        EventType.TX_PENDING,
        "out",
        "80",
    )


def test_another_pool_transaction_spending_the_same_outpoint_replaces_it() -> None:
    t = tracker()
    ours = tx(1, [spend(9, 2)], [(WATCHED, 5)])
    theirs = tx(2, [spend(9, 2)], [(STRANGER, 5)])
    t.observe_pool(look(ours), {}, {})
    outcome = t.observe_pool(look(theirs), {ours.txid: TxStatus.UNKNOWN}, {})
    (event,) = outcome.events
    assert event.type is EventType.TX_REPLACED
    assert (event.data["replaced_by"], event.data["replacement_mined"]) == (theirs.txid, False)
    assert outcome.removed == (ours.txid,)
    assert t.pool.tracked() == []


def test_a_mined_double_spend_replaces_the_pending_payment() -> None:
    t = tracker()
    ours = tx(1, [spend(9, 2)], [(WATCHED, 5)])
    t.observe_pool(look(ours), {}, {})
    outcome = t.process(block(1, tx(2, [spend(9, 2)], [(STRANGER, 5)])), {})
    (event,) = outcome.events
    assert (event.type, event.data["replacement_mined"]) == (EventType.TX_REPLACED, True)


def test_a_payment_gone_from_the_pool_is_dropped_after_the_grace_period() -> None:
    clock = Clock()
    t = tracker(clock=clock)
    payment = tx(1, [spend(9)], [(WATCHED, 5)])
    t.observe_pool(look(payment), {}, {})
    gone = {payment.txid: TxStatus.UNKNOWN}
    assert t.observe_pool(look(), gone, {}).events == ()
    clock.now += 5
    (event,) = t.observe_pool(look(), gone, {}).events
    assert event.type is EventType.TX_DROPPED


def test_a_pool_child_of_a_pool_payment_is_recognised_as_a_spend() -> None:
    t = tracker()
    parent = tx(1, [spend(9)], [(WATCHED, 30)])
    child = tx(2, [spend(1, 0)], [(OTHER, 25)])
    assert t.pool_facts_needed(look(parent, child)) == {txid(9)}
    outcome = t.observe_pool(look(parent, child), {}, {})
    assert sorted((e.tx_hash, e.data["direction"]) for e in outcome.events) == [
        (txid(1), "in"),
        (txid(2), "out"),
    ]


def test_transactions_already_looked_at_are_not_looked_at_again() -> None:
    t = tracker()
    stranger = tx(1, [spend(9)], [(STRANGER, 5)])
    t.observe_pool(look(stranger), {}, {})
    assert stranger.txid in t.pool.examined()
    t.observe_pool(look(), {}, {})
    assert stranger.txid not in t.pool.examined()  # it left the pool


# --- reorgs -------------------------------------------------------------------------------


def test_a_reorg_reports_reorged_and_follows_the_payment_as_pending_again() -> None:
    t = tracker()
    ours = tx(1, [spend(9, 2)], [(WATCHED, 5)])
    t.observe_pool(look(ours), {}, {})
    (mined_outcome,) = run(t, block(1, ours))
    ancestor = t.find_ancestor({0: _hash(0, "a"), 1: _hash(1, "b")})
    assert ancestor is None  # block 0 was never processed here
    rewound = t.rewind(BlockRef(0, _hash(0, "a")))
    (reorged,) = rewound.events
    assert reorged.type is EventType.TX_REORGED
    assert reorged.data["cancels"] == [mined_outcome.events[0].id]
    assert [p.tx_hash for p in rewound.pool_upserted] == [ours.txid]
    assert rewound.pool_upserted[0].data["block_hash"] is None
    assert t.pool.tracked() == [ours.txid]
    winner = tx(2, [spend(9, 2)], [(STRANGER, 5)])
    outcome = t.process(block(1, winner, fork="b"), {})
    (replaced,) = outcome.events
    assert (replaced.type, replaced.data["replaced_by"]) == (EventType.TX_REPLACED, winner.txid)


def test_a_reorg_restores_the_watched_outputs_the_lost_blocks_spent_and_forgets_theirs() -> None:
    t = tracker()
    run(t, block(1, tx(1, [spend(9)], [(WATCHED, 10)])))
    run(t, block(2, tx(2, [spend(1, 0)], [(WATCHED, 8)])))
    assert set(t._outputs.unspent) == {(txid(2), 0)}
    t.rewind(BlockRef(1, _hash(1, "a")))
    assert set(t._outputs.unspent) == {(txid(1), 0)}
    (outcome,) = run(t, block(2, tx(3, [spend(1, 0)], [(OTHER, 9)]), fork="b"))
    mined = of_type(outcome.events, EventType.TX_MINED)
    assert [(e.tx_hash, e.data["direction"]) for e in mined] == [(txid(3), "out")]
    # tx 2, pending again after the reorg, spent the same output: replaced, on both sides
    replaced = of_type(outcome.events, EventType.TX_REPLACED)
    assert sorted((e.tx_hash, e.data["direction"]) for e in replaced) == [
        (txid(2), "in"),
        (txid(2), "out"),
    ]
