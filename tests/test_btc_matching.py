"""The Bitcoin watched-address matcher: incoming outputs, outgoing inputs, amounts. Pure."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.btc_matching import ACCELERATED, PREFILTER_FROM, BtcAddressIndex, BtcMatch
from watcher.models import BtcTx, BtcTxIn, BtcTxOut, Direction, EventType, Subscription


def _can_build() -> bool:
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(compiler) is not None and headers.exists()


def test_the_accelerator_is_built_wherever_a_c_compiler_and_python_headers_are() -> None:
    """It is optional only for machines that cannot build it, never silently missing."""
    assert ACCELERATED or not _can_build()


ALICE = "bcrt1qalice"
BOB = "bcrt1qbob"
CAROL = "mcarol"
STRANGER = "mstranger"


def sub(sub_id: str, *addresses: str) -> Subscription:
    return Subscription(
        id=sub_id,
        chain="btc",
        addresses=frozenset(addresses),
        events=frozenset(EventType),
        confirmations=1,
        url="http://127.0.0.1/hook",
        secret=b"s",
    )


def tx(txid: str, inputs: list[BtcTxIn], outputs: list[tuple[str | None, int]]) -> BtcTx:
    outs = tuple(BtcTxOut(n, address, value) for n, (address, value) in enumerate(outputs))
    return BtcTx(txid, tuple(inputs), outs, coinbase=not inputs, raw={})


def summary(matches: list[BtcMatch]) -> set[tuple[str, str, Direction, int]]:
    return {(m.subscription.id, m.address, m.direction, m.amount_sat) for m in matches}


def test_outputs_to_a_watched_address_are_summed_into_one_incoming_match() -> None:
    index = BtcAddressIndex([sub("s1", ALICE)])
    payment = tx("t1", [BtcTxIn("p", 0, STRANGER, 10)], [(ALICE, 3), (STRANGER, 5), (ALICE, 1)])
    [match] = index.match(payment)
    assert (match.address, match.direction, match.amount_sat) == (ALICE, Direction.IN, 4)
    assert match.outpoints == (("t1", 0), ("t1", 2))


def test_an_input_whose_prevout_pays_a_watched_address_is_outgoing() -> None:
    index = BtcAddressIndex([sub("s1", ALICE)])
    spend = tx("t2", [BtcTxIn("p", 1, ALICE, 7), BtcTxIn("q", 0, ALICE, 2)], [(BOB, 8), (ALICE, 1)])
    assert summary(index.match(spend)) == {
        ("s1", ALICE, Direction.OUT, 9),
        ("s1", ALICE, Direction.IN, 1),
    }


def test_an_input_without_prevout_is_recognised_from_the_known_watched_outputs() -> None:
    index = BtcAddressIndex([sub("s1", ALICE)])
    spend = tx("t3", [BtcTxIn("deposit", 4)], [(BOB, 5)])
    assert index.match(spend) == []
    known = {("deposit", 4): BtcTxOut(4, ALICE, 6)}
    [match] = index.match(spend, known)
    assert (match.direction, match.amount_sat, match.outpoints) == (
        Direction.OUT,
        6,
        (("deposit", 4),),
    )


def test_a_prevout_address_that_is_not_watched_is_not_looked_up_in_known() -> None:
    index = BtcAddressIndex([sub("s1", ALICE)])
    spend = tx("t4", [BtcTxIn("deposit", 0, STRANGER, 6)], [(BOB, 5)])
    assert index.match(spend, {("deposit", 0): BtcTxOut(0, ALICE, 6)}) == []


def test_every_subscription_watching_an_address_gets_its_own_match() -> None:
    index = BtcAddressIndex([sub("s1", ALICE, BOB), sub("s2", ALICE), sub("s3", CAROL)])
    assert len(index) == 3
    assert ALICE in index
    assert STRANGER not in index
    payment = tx("t5", [BtcTxIn("p", 0, CAROL, 10)], [(ALICE, 3), (BOB, 2), (None, 0)])
    assert summary(index.match(payment)) == {
        ("s1", ALICE, Direction.IN, 3),
        ("s2", ALICE, Direction.IN, 3),
        ("s1", BOB, Direction.IN, 2),
        ("s3", CAROL, Direction.OUT, 10),
    }


def test_coinbase_and_unrelated_transactions_match_nothing() -> None:
    index = BtcAddressIndex([sub("s1", ALICE)])
    assert index.match(tx("cb", [], [(STRANGER, 50), (None, 0)])) == []
    assert index.match(tx("t6", [BtcTxIn("p", 0)], [(STRANGER, 1)])) == []


BOTH_MATCHERS = pytest.mark.parametrize(
    "accelerated",
    [
        pytest.param(True, marks=pytest.mark.skipif(not ACCELERATED, reason="not built")),
        False,
    ],
    ids=["accelerated", "pure"],
)


@BOTH_MATCHERS
def test_match_all_follows_a_watched_output_spent_later_in_the_same_block(
    accelerated: bool,
) -> None:
    index = BtcAddressIndex([sub("s1", ALICE)], accelerated=accelerated)
    deposit = tx("d", [BtcTxIn("p", 0)], [(ALICE, 5)])
    sweep = tx("s", [BtcTxIn("d", 0)], [(BOB, 4)])
    unrelated = tx("u", [BtcTxIn("x", 0)], [(STRANGER, 1)])
    found = index.match_all([deposit, unrelated, sweep])
    assert [(t.txid, summary(m)) for t, m in found] == [
        ("d", {("s1", ALICE, Direction.IN, 5)}),
        ("s", {("s1", ALICE, Direction.OUT, 5)}),
    ]


@BOTH_MATCHERS
def test_a_large_watch_list_matches_exactly_like_a_small_one(accelerated: bool) -> None:
    """A filter answers first for a large watch list: never a false match."""
    many = [f"bc1qdeposit{n:08d}" for n in range(PREFILTER_FROM)]
    large = BtcAddressIndex([sub("big", *many, ALICE)], accelerated=accelerated)
    assert large.accelerated is accelerated
    small = BtcAddressIndex([sub("big", ALICE, many[-1])])
    payments = [
        tx("t1", [BtcTxIn("p", 0, ALICE, 10)], [(many[-1], 3), (BOB, 5)]),
        tx("t2", [BtcTxIn("q", 0, STRANGER, 10)], [(CAROL, 9)]),
    ]
    strangers = [f"bc1qstranger{n:08d}" for n in range(20_000)]
    assert not any(s in large for s in strangers)  # false positives stop at the set
    assert all(a in large for a in many[:: PREFILTER_FROM // 100])
    for payment in payments:
        assert summary(large.match(payment)) == summary(small.match(payment))
    assert [t.txid for t, _ in large.match_all(payments)] == ["t1"]


def test_subscriptions_sharing_addresses_with_the_largest_match_in_configuration_order() -> None:
    """Only addresses some smaller subscription watches are stored apart from the largest's."""
    small_first = sub("a-small", ALICE, CAROL)
    largest = sub("b-largest", ALICE, BOB, "bcrt1qdave", "bcrt1qerin")
    empty = sub("c-empty")
    small_last = sub("d-small", BOB, ALICE)
    index = BtcAddressIndex([small_first, largest, empty, small_last])
    assert len(index) == 5
    payment = tx(
        "t7",
        [BtcTxIn("p", 0, "bcrt1qerin", 20)],
        [(ALICE, 3), (BOB, 2), (CAROL, 1), ("bcrt1qdave", 4), (STRANGER, 9)],
    )
    found = [(m.address, m.direction, m.subscription.id) for m in index.match(payment)]
    assert found == [
        (ALICE, Direction.IN, "a-small"),
        (ALICE, Direction.IN, "b-largest"),
        (ALICE, Direction.IN, "d-small"),
        (BOB, Direction.IN, "b-largest"),
        (BOB, Direction.IN, "d-small"),
        (CAROL, Direction.IN, "a-small"),
        ("bcrt1qdave", Direction.IN, "b-largest"),
        ("bcrt1qerin", Direction.OUT, "b-largest"),
    ]


def test_an_index_without_subscriptions_matches_nothing() -> None:
    index = BtcAddressIndex([])
    assert len(index) == 0
    assert ALICE not in index
    assert index.match(tx("t8", [BtcTxIn("p", 0, ALICE, 1)], [(ALICE, 1)])) == []


ADDRESSES = [ALICE, BOB, CAROL, STRANGER, "bc1qfrank", "1grace"]
address_or_none = st.one_of(st.none(), st.sampled_from(ADDRESSES))


@st.composite
def blocks(draw: st.DrawFn) -> tuple[list[BtcTx], dict[tuple[str, int], BtcTxOut]]:
    """Blocks whose inputs may or may not name their address, some spending earlier outputs
    of the same block, with a few outpoints known to pay a watched address."""
    txs: list[BtcTx] = []
    for i in range(draw(st.integers(0, 40))):
        inputs = []
        for _ in range(draw(st.integers(0, 20))):
            spend_earlier = bool(txs) and draw(st.booleans())
            prev_txid = txs[draw(st.integers(0, len(txs) - 1))].txid if spend_earlier else "old"
            address = draw(address_or_none)
            value = None if address is None else draw(st.integers(0, 10))
            inputs.append(BtcTxIn(prev_txid, draw(st.integers(0, 3)), address, value))
        outputs = [(draw(address_or_none), draw(st.integers(0, 10))) for _ in range(4)]
        txs.append(tx(f"t{i}", inputs, outputs))
    known = {("old", n): BtcTxOut(n, draw(st.sampled_from(ADDRESSES)), 7) for n in range(2)}
    return txs, known


@pytest.mark.skipif(not ACCELERATED, reason="the C accelerator was not built")
@settings(max_examples=300, deadline=None)
@given(block=blocks(), watched=st.sets(st.sampled_from(ADDRESSES)))
def test_the_accelerated_matcher_finds_what_the_pure_one_finds(
    block: tuple[list[BtcTx], dict[tuple[str, int], BtcTxOut]], watched: set[str]
) -> None:
    """Same transactions, same matches, same order, whichever inputs name their address."""
    txs, known = block
    subscriptions = [sub("s1", *watched), sub("s2", *sorted(watched)[:1], CAROL)]
    accelerated = BtcAddressIndex(subscriptions).match_all(txs, known)
    pure = BtcAddressIndex(subscriptions, accelerated=False).match_all(txs, known)
    assert accelerated == pure
