"""Slot accounting: global and per-endpoint caps, rate limits and ordering, as pure values."""

from __future__ import annotations

from tests.delivery_kit import subscription
from watcher.scheduling import AHEAD_ROUNDS, Quota, Slots, TokenBucket, endpoint_of

NOW = 1_000.0


def test_an_endpoint_is_scheme_host_and_port() -> None:
    assert endpoint_of("https://Hooks.Example.com/a?x=1") == "https://hooks.example.com:443"
    assert endpoint_of("http://hooks.example.com:8080/b") == "http://hooks.example.com:8080"
    assert endpoint_of("http://[::1]/c") == "http://::1:80"


def test_a_token_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, NOW)
    assert bucket.available(NOW) == 2
    bucket.take(NOW, 2)
    assert bucket.available(NOW) == 0
    assert bucket.next_token_at(NOW) == NOW + 0.5
    assert bucket.available(NOW + 0.5) == 1
    assert bucket.available(NOW + 100) == 2  # never more than one second's worth
    slow = TokenBucket(0.1, NOW)
    assert slow.available(NOW) == 1
    slow.take(NOW)
    assert slow.next_token_at(NOW) == NOW + 10


def test_quotas_respect_the_global_cap_and_a_shared_endpoint_cap() -> None:
    subs = [
        subscription("http://a.example/1", "a1", endpoint_concurrency=3),
        subscription("http://a.example/2", "a2", endpoint_concurrency=2),
        subscription("http://b.example/", "b", endpoint_concurrency=8),
    ]
    slots = Slots(subs, capacity=5, now=NOW)
    assert slots.quotas(NOW) == {
        "a1": Quota(2, False),  # the smallest cap of the subscriptions sharing the endpoint
        "a2": Quota(2, False),
        "b": Quota(5, False),
    }
    assert slots.try_start("a1", NOW)
    assert slots.try_start("a2", NOW)
    assert not slots.try_start("a1", NOW)  # the endpoint is full
    assert slots.quotas(NOW) == {"b": Quota(3, False)}
    for _ in range(3):
        assert slots.try_start("b", NOW)
    assert slots.free == 0
    assert slots.quotas(NOW) == {}
    slots.finish("a1")
    assert slots.quotas(NOW) == {
        "a1": Quota(1, False),
        "a2": Quota(1, False),
        "b": Quota(1, False),
    }


def test_an_ordered_subscription_has_at_most_one_request_in_flight() -> None:
    slots = Slots([subscription("http://a.example/", "o", ordered=True)], capacity=10, now=NOW)
    assert slots.quotas(NOW) == {"o": Quota(1, True)}
    assert slots.try_start("o", NOW)
    assert slots.quotas(NOW) == {}
    assert not slots.try_start("o", NOW)
    slots.finish("o")
    assert slots.quotas(NOW) == {"o": Quota(1, True)}


def test_a_rate_limited_subscription_gets_as_many_as_it_has_tokens() -> None:
    slots = Slots([subscription("http://a.example/", "r", rate_limit_per_s=3)], 10, NOW)
    assert slots.quotas(NOW) == {"r": Quota(3, False)}
    for _ in range(3):
        assert slots.try_start("r", NOW)
        slots.finish("r")
    assert not slots.try_start("r", NOW)
    assert slots.quotas(NOW) == {}
    assert slots.next_token_at(NOW) == NOW + 1 / 3
    assert slots.quotas(NOW + 1 / 3) == {"r": Quota(1, False)}


def test_claiming_ahead_lets_plain_subscriptions_queue_rounds_of_their_endpoint_cap() -> None:
    subs = [
        subscription("http://a.example/", "a", endpoint_concurrency=2),
        subscription("http://b.example/", "o", ordered=True),
        subscription("http://c.example/", "r", rate_limit_per_s=3),
    ]
    slots = Slots(subs, capacity=4, now=NOW)
    assert slots.claimable == (1 + AHEAD_ROUNDS) * 4
    assert slots.quotas(NOW, ahead=True) == {
        "a": Quota(2 + AHEAD_ROUNDS * 2, False),  # what may start, and rounds more to wait
        "o": Quota(1, True),  # ordered and rate-limited: only what may start now
        "r": Quota(3, False),
    }
    for _ in range(3):
        slots.reserve("a")
    assert slots.ready == 3
    assert slots.quotas(NOW, ahead=True)["a"] == Quota(2 + AHEAD_ROUNDS * 2 - 3, False)
    assert "a" not in slots.quotas(NOW)  # the waiting ones take what may start now
    assert slots.try_start("a", NOW)
    slots.unreserve("a")
    assert slots.try_start("a", NOW)
    slots.unreserve("a")
    assert not slots.try_start("a", NOW)  # the endpoint cap still holds for requests
    assert slots.ready == 1
    assert slots.claimable == (1 + AHEAD_ROUNDS) * 4 - 3


def test_nothing_more_is_claimed_ahead_once_the_global_budget_is_used() -> None:
    slots = Slots([subscription("http://a.example/", "a", endpoint_concurrency=64)], 2, NOW)
    for _ in range(slots.claimable):
        slots.reserve("a")
    assert slots.claimable == 0
    assert slots.quotas(NOW, ahead=True) == {}
