"""Subscriptions changing under a running daemon: the registry and the tracker, no network."""

from __future__ import annotations

from dataclasses import replace

from tests.test_tracker import ALICE, BOB, CAROL, CHAIN, block, of_type, subscription, tracker, tx
from watcher.models import EventType
from watcher.protocols import PoolSnapshot
from watcher.registry import Change, Entry, Source, SubscriptionRegistry, file_entries

# --- the registry ---------------------------------------------------------------------------


def test_the_registry_reports_what_changed_to_its_listeners() -> None:
    shop, gone = subscription("shop"), subscription("gone", addresses=[BOB])
    registry = SubscriptionRegistry(file_entries([shop, gone], [CHAIN]))
    changes: list[Change] = []
    registry.listen(changes.append)

    other_chain = subscription("far", chain="other")
    change = registry.replace_file(
        file_entries([replace(shop, addresses=frozenset({CAROL})), other_chain], [CHAIN])
    )
    assert change == Change(
        added=frozenset(), changed=frozenset({"shop"}), removed=frozenset({"gone"}),
        chains=frozenset({CHAIN}),
    )  # fmt: skip
    assert changes == [change]
    assert set(registry) == {"shop"}, "a subscription on a chain not followed does not run"
    far = registry.entry("far")
    assert far is not None
    assert far.problem == "chain 'other' is not followed yet: restart the daemon to start it"

    assert not registry.replace_file(registry.entries()[:2])
    assert len(changes) == 1, "nothing changed, nobody is told"


def test_api_entries_survive_a_file_reload_and_come_after_the_file_ones() -> None:
    registry = SubscriptionRegistry(file_entries([subscription("shop")], [CHAIN]))
    registry.put(Entry("api-1", Source.API, subscription("api-1"), spec={}))
    registry.replace_file(file_entries([subscription("new")], [CHAIN]))
    assert [(e.id, e.source) for e in registry.entries()] == [
        ("new", Source.FILE),
        ("api-1", Source.API),
    ]
    registry.remove("api-1")
    assert list(registry) == ["new"]


# --- the tracker keeps its state across a change ---------------------------------------------


def test_new_subscriptions_match_from_the_next_block_and_confirmations_stay_due() -> None:
    shop = subscription("shop", confirmations=3)
    t = tracker(shop)
    first = t.process(block(100, tx(1, CAROL, ALICE)))
    assert len(of_type(first, EventType.TX_MINED)) == 1

    t.replace_subscriptions([shop, subscription("new", addresses=[BOB])])
    second = t.process(block(101, tx(2, CAROL, BOB)))
    assert [e.subscription_id for e in of_type(second, EventType.TX_MINED)] == ["new"]
    third = t.process(block(102))
    (confirmed,) = of_type(third, EventType.TX_CONFIRMED)
    assert (confirmed.subscription_id, confirmed.tx_hash) == ("shop", f"0x{1:064x}")


def test_a_removed_subscription_gets_no_confirmation_and_its_activity_is_settled() -> None:
    t = tracker(subscription("shop", confirmations=2))
    t.process(block(100, tx(1, CAROL, ALICE)))
    assert t.awaiting_confirmation == 1
    t.replace_subscriptions([])
    outcome = t.process(block(101, tx(2, CAROL, ALICE)))
    assert outcome.events == ()
    (settled,) = outcome.activities
    assert settled.confirm_at is None
    assert t.awaiting_confirmation == 0


def test_a_subscription_that_starts_wanting_the_mempool_turns_the_pool_on() -> None:
    t = tracker(subscription("shop", events=[EventType.TX_MINED]))
    assert not t.pool.wanted
    t.replace_subscriptions([subscription("shop", events=[EventType.TX_PENDING])])
    assert t.pool.wanted
    pending = tx(1, CAROL, ALICE)
    outcome = t.observe_pool(PoolSnapshot(frozenset({pending.hash}), [pending]), {})
    assert [e.type for e in outcome.events] == [EventType.TX_PENDING]
