"""The lifecycle state machines without a node: mempool (pending/dropped/replaced) and reorgs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.matching import AddressIndex
from watcher.mempool import PoolTracker, TxStatus
from watcher.models import Block, BlockRef, Event, EventType, PoolOutcome, Subscription, Tx
from watcher.protocols import PoolSnapshot
from watcher.tracker import EthereumPoolRules, EthereumTracker

CHAIN = "dev"
WATCHED = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20
ALL = frozenset(EventType)


def subscription(events: frozenset[EventType] = ALL, confirmations: int = 2) -> Subscription:
    return Subscription(
        id="s",
        chain=CHAIN,
        addresses=frozenset({WATCHED}),
        events=events,
        confirmations=confirmations,
        url="https://example.com/hook",
        secret=b"0123456789abcdef",
    )


def tx(n: int, sender: str = OTHER, to: str = WATCHED, nonce: int | None = None) -> Tx:
    h = f"0x{n:064x}"
    return Tx(h, sender, to, 10, n if nonce is None else nonce, {"hash": h})


def block(number: int, txs: tuple[Tx, ...] = (), fork: str = "a") -> Block:
    return Block(number, _hash(number, fork), _hash(number - 1, "a"), 1000 + number, txs)


def _hash(number: int, fork: str) -> str:
    return "0x" + fork * 2 + f"{number:062x}"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Pool:
    """The mempool tracker with Ethereum's rules, shown only the pool's newcomers."""

    def __init__(self, grace: float) -> None:
        sub = subscription()
        self.tracker: PoolTracker[Tx] = PoolTracker(CHAIN, {sub.id: sub}, grace_s=grace)
        self.rules = EthereumPoolRules(CHAIN, AddressIndex([sub]))

    def observe(self, seen: list[Tx], statuses: dict[str, TxStatus], now: float) -> PoolOutcome:
        return self.tracker.observe(None, seen, self.rules, statuses, now)

    def on_block(self, block: Block, now: float) -> tuple[list[Event], list[str]]:
        return self.tracker.on_block(block.transactions, self.rules, now)

    def tracked(self) -> list[str]:
        return self.tracker.tracked()


def pool(grace: float = 10.0) -> Pool:
    return Pool(grace)


def kinds(events: Iterable[Event]) -> list[str]:
    return [e.type.value for e in events]


def test_a_watched_transaction_in_the_pool_is_pending_once() -> None:
    p = pool()
    first = p.observe([tx(1)], {}, 100.0)
    again = p.observe([tx(1)], {}, 101.0)
    assert kinds(first.events) == ["tx.pending"]
    assert [u.tx_hash for u in first.upserted] == [tx(1).hash]
    assert again.events == ()
    assert again.upserted == ()


def test_unwatched_pool_transactions_are_not_tracked() -> None:
    p = pool()
    outcome = p.observe([tx(1, to=OTHER)], {}, 100.0)
    assert outcome.events == ()
    assert p.tracked() == []


def test_gone_transactions_are_dropped_only_after_the_grace_period_and_only_once() -> None:
    p = pool(grace=10.0)
    p.observe([tx(1)], {}, 100.0)
    missing = {tx(1).hash: TxStatus.UNKNOWN}
    noticed = p.observe([], missing, 101.0)
    assert noticed.events == ()
    assert noticed.upserted[0].gone_since == 101.0
    assert p.observe([], missing, 110.0).events == ()
    dropped = p.observe([], missing, 111.0)
    assert kinds(dropped.events) == ["tx.dropped"]
    assert dropped.removed == (tx(1).hash,)
    assert p.observe([], missing, 200.0).events == ()


def test_a_transaction_that_comes_back_within_the_grace_period_is_not_dropped() -> None:
    p = pool(grace=10.0)
    p.observe([tx(1)], {}, 100.0)
    p.observe([], {tx(1).hash: TxStatus.UNKNOWN}, 101.0)
    back = p.observe([tx(1)], {}, 105.0)
    assert back.upserted[0].gone_since is None
    assert p.observe([], {tx(1).hash: TxStatus.UNKNOWN}, 112.0).events == ()


def test_a_mined_transaction_leaves_the_pool_silently() -> None:
    p = pool()
    p.observe([tx(1)], {}, 100.0)
    outcome = p.observe([], {tx(1).hash: TxStatus.MINED}, 101.0)
    assert outcome.events == ()
    assert outcome.removed == (tx(1).hash,)
    assert p.tracked() == []


def test_same_sender_and_nonce_in_the_pool_is_a_replacement_not_a_drop() -> None:
    p = pool(grace=1.0)
    original = tx(1, sender=WATCHED, to=OTHER, nonce=7)
    replacement = tx(2, sender=WATCHED, to=OTHER, nonce=7)
    p.observe([original], {}, 100.0)
    outcome = p.observe([replacement], {original.hash: TxStatus.UNKNOWN}, 101.0)
    replaced = [e for e in outcome.events if e.type is EventType.TX_REPLACED]
    assert len(replaced) == 1
    assert replaced[0].data["replaced_by"] == replacement.hash
    assert replaced[0].tx_hash == original.hash
    assert not any(e.type is EventType.TX_DROPPED for e in outcome.events)
    later = p.observe([], {original.hash: TxStatus.UNKNOWN}, 500.0)
    assert later.events == ()


def test_a_mined_transaction_with_a_tracked_nonce_replaces_the_pending_one() -> None:
    p = pool()
    original = tx(1, sender=WATCHED, to=OTHER, nonce=3)
    p.observe([original], {}, 100.0)
    events, removed = p.on_block(block(5, (tx(9, sender=WATCHED, to=OTHER, nonce=3),)), 101.0)
    assert kinds(events) == ["tx.replaced"]
    assert events[0].data["replacement_mined"] is True
    assert removed == [original.hash]


def test_a_reorg_cancels_mined_and_confirmed_events_and_stops_the_confirmation() -> None:
    clock = Clock()
    t = EthereumTracker(CHAIN, [subscription(confirmations=3)], clock=clock)
    t.process(block(1))
    mined = t.process(block(2, (tx(1),)))
    t.process(block(3))
    confirmed = t.process(block(4))
    (mined_event,) = [e for e in mined.events if e.type is EventType.TX_MINED]
    (confirmed_event,) = [e for e in confirmed.events if e.type is EventType.TX_CONFIRMED]
    ancestor = t.find_ancestor({1: _hash(1, "a"), 2: _hash(2, "b"), 3: _hash(3, "b")})
    assert ancestor == BlockRef(1, _hash(1, "a"))
    outcome = t.rewind(ancestor)
    (reorged,) = outcome.events
    assert reorged.type is EventType.TX_REORGED
    assert reorged.data["cancels"] == [mined_event.id, confirmed_event.id]
    assert [b.number for b in t.recent_blocks()] == [1]


def test_a_reorg_before_the_depth_means_no_confirmation_for_the_lost_block() -> None:
    t = EthereumTracker(CHAIN, [subscription(confirmations=3)], clock=Clock())
    t.process(block(1))
    t.process(block(2, (tx(1),)))
    t.rewind(BlockRef(1, _hash(1, "a")))
    replay = [t.process(block(n, fork="a")) for n in (2, 3, 4, 5)]
    assert not any(e.type is EventType.TX_CONFIRMED for o in replay for e in o.events)


def test_no_common_ancestor_in_the_window_is_reported_as_none() -> None:
    t = EthereumTracker(CHAIN, [subscription()], clock=Clock())
    for n in range(1, 5):
        t.process(block(n))
    assert t.find_ancestor({n: _hash(n, "c") for n in range(1, 5)}) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["seen", "gone", "back", "mined", "tick"]), max_size=25))
def test_a_tracked_transaction_ends_in_at_most_one_final_event(steps: list[str]) -> None:
    """Whatever the pool does, a transaction's final events all carry one id.

    A transaction seen again after it was dropped is tracked again and may be dropped again;
    that event has the same id, which the outbox's unique key turns into a no-op.
    """
    p = pool(grace=3.0)
    item = tx(1)
    now = 100.0
    finals: set[str] = set()
    p.observe([item], {}, now)
    for step in steps:
        now += 1.0
        if step == "seen":
            outcome = p.observe([item], {}, now)
        elif step == "mined":
            outcome = p.observe([], {item.hash: TxStatus.MINED}, now)
        elif step == "back":
            outcome = p.observe([], {item.hash: TxStatus.PENDING}, now)
        else:
            outcome = p.observe([], {item.hash: TxStatus.UNKNOWN}, now)
        finals |= {e.id for e in outcome.events if e.type is not EventType.TX_PENDING}
    assert len(finals) <= 1


def test_the_senders_of_followed_pending_transactions_stay_relevant_until_settled() -> None:
    """A block may be fetched with only the relevant transactions (the adapter filters).

    A pending payment to the watched address comes from an unwatched sender; that sender's
    replacement (same nonce, paying someone else) must still reach the tracker.
    """
    t = EthereumTracker(CHAIN, [subscription()], clock=Clock())
    assert t.relevant_addresses() == {WATCHED}
    original = tx(1, sender=OTHER, to=WATCHED, nonce=4)
    t.observe_pool(PoolSnapshot(None, [original]), {}, {})
    assert t.relevant_addresses() == {WATCHED, OTHER}
    replacement = tx(2, sender=OTHER, to="0x" + "cc" * 20, nonce=4)
    unrelated = tx(3, sender="0x" + "dd" * 20, to="0x" + "cc" * 20)
    relevant = t.relevant_addresses()
    kept = tuple(x for x in (unrelated, replacement) if {x.sender, x.recipient} & relevant)
    fetched = replace(block(1, kept), left_out=2 - len(kept))
    outcome = t.process(fetched, {})
    assert kinds(outcome.events) == ["tx.replaced", "block.mined"]
    assert outcome.events[0].data["replaced_by"] == replacement.hash
    assert outcome.events[1].data["transaction_count"] == 2
    assert t.relevant_addresses() == {WATCHED}
