"""Who may send now: concurrency caps, per-subscription rate limits and strict ordering. Pure.

The delivery worker asks :class:`Slots` how many due deliveries each subscription may start
(its *quota*) before it claims any from the store, and tells it when a request starts and when
its result has been recorded. Limits:

* a global cap on requests in flight;
* a cap per endpoint (scheme, host and port of the URL, shared by every subscription calling
  it), so one dead or slow endpoint can hold only its share of the global slots and fresh
  deliveries to healthy endpoints keep flowing;
* an optional token bucket per subscription (``rate_limit_per_s``): a delivery that finds no
  token simply stays due, without using up a retry;
* strict ordering: an ordered subscription has at most one delivery in flight.

Time is passed in, never read, so tests drive it directly.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from watcher.models import Subscription

DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint_of(url: str) -> str:
    """The endpoint a URL calls: ``scheme://host:port`` (lower-case host, explicit port)."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class TokenBucket:
    """``rate`` tokens per second, holding at most ``max(1, rate)``; starts full."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._at = now

    def available(self, now: float) -> int:
        """Whole tokens available at ``now``."""
        self._refill(now)
        return math.floor(self._tokens + 1e-9)

    def take(self, now: float, count: int = 1) -> None:
        """Spend ``count`` tokens."""
        self._refill(now)
        self._tokens -= count

    def next_token_at(self, now: float) -> float:
        """When the next whole token is available (``now`` if one is)."""
        self._refill(now)
        missing = 1.0 - self._tokens
        return now if missing <= 1e-9 else now + missing / self.rate

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now


@dataclass(frozen=True, slots=True)
class Quota:
    """How many due deliveries of one subscription may be claimed now, and whether in order."""

    limit: int
    ordered: bool


# How many rounds of requests the worker claims ahead: a claimed delivery waits for at most
# this many requests of its endpoint to end before its own starts.
AHEAD_ROUNDS = 3


class Slots:
    """In-flight accounting for the delivery worker."""

    def __init__(self, subscriptions: Iterable[Subscription], capacity: int, now: float) -> None:
        self.capacity = capacity
        self._subs: dict[str, Subscription] = {}
        self._endpoint: dict[str, str] = {}
        self._endpoint_cap: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._by_sub: Counter[str] = Counter()
        self._by_endpoint: Counter[str] = Counter()
        self._ready_by_sub: Counter[str] = Counter()  # claimed, waiting for a slot
        # The endpoint each running request of a subscription called, oldest first: its URL
        # may change while requests are in flight.
        self._started_on: dict[str, deque[str]] = {}
        self.update(subscriptions, now)

    def update(self, subscriptions: Iterable[Subscription], now: float) -> None:
        """Take a new set of subscriptions; requests in flight keep counting until they finish.

        A subscription whose rate limit is unchanged keeps its token bucket, so a change to
        something else does not hand it a fresh burst.
        """
        self._subs = {s.id: s for s in subscriptions}
        self._endpoint = {s.id: endpoint_of(s.url) for s in self._subs.values()}
        caps: dict[str, int] = {}
        for sub in self._subs.values():
            endpoint = self._endpoint[sub.id]
            cap = sub.delivery.endpoint_concurrency
            caps[endpoint] = min(cap, caps.get(endpoint, cap))
        self._endpoint_cap = caps
        buckets: dict[str, TokenBucket] = {}
        for sub in self._subs.values():
            rate = sub.delivery.rate_limit_per_s
            if rate is None:
                continue
            kept = self._buckets.get(sub.id)
            buckets[sub.id] = (
                kept if kept is not None and kept.rate == rate else TokenBucket(rate, now)
            )
        self._buckets = buckets

    @property
    def in_flight(self) -> int:
        """Requests started and not yet finished."""
        return self._by_sub.total()

    @property
    def free(self) -> int:
        """How many more requests the global cap allows now."""
        return max(0, self.capacity - self.in_flight)

    @property
    def ready(self) -> int:
        """Deliveries claimed and waiting for a slot."""
        return self._ready_by_sub.total()

    @property
    def claimable(self) -> int:
        """How many more deliveries may be claimed: the free slots, and more to wait for one.

        Deliveries claimed ahead start the moment a request ends, instead of one trip to the
        store later (a trip waits for the busy event loop, and now and then for a checkpoint).
        """
        return max(0, (1 + AHEAD_ROUNDS) * self.capacity - self.in_flight - self.ready)

    def quotas(self, now: float, *, ahead: bool = False) -> dict[str, Quota]:
        """The subscriptions that may start something now, with how many each.

        With ``ahead``, a subscription may also claim ``AHEAD_ROUNDS`` times its endpoint's
        cap more, to wait for a slot; not an ordered or rate-limited one, whose claims must be
        startable.
        Deliveries already waiting count against the quota either way.
        """
        out: dict[str, Quota] = {}
        room = self.claimable if ahead else self.free
        if room <= 0:
            return out
        for sub_id, sub in self._subs.items():
            endpoint = self._endpoint[sub_id]
            cap = self._endpoint_cap[endpoint]
            limit = min(self.free, cap - self._by_endpoint[endpoint])
            bucket = self._buckets.get(sub_id)
            if bucket is not None:
                limit = min(limit, bucket.available(now))
            ordered = sub.delivery.ordered
            if ordered:
                limit = min(limit, 0 if self._by_sub[sub_id] else 1)
            elif ahead and bucket is None:
                limit = max(limit, 0) + AHEAD_ROUNDS * cap
            limit = min(limit - self._ready_by_sub[sub_id], room)
            if limit > 0:
                out[sub_id] = Quota(limit, ordered)
        return out

    def reserve(self, sub_id: str) -> None:
        """Count a claimed delivery of ``sub_id`` that waits for a slot."""
        self._ready_by_sub[sub_id] += 1

    def unreserve(self, sub_id: str) -> None:
        """A waiting delivery of ``sub_id`` started, or was given back."""
        self._ready_by_sub[sub_id] -= 1
        if self._ready_by_sub[sub_id] <= 0:
            del self._ready_by_sub[sub_id]

    def try_start(self, sub_id: str, now: float) -> bool:
        """Count one request of ``sub_id`` starting; False if a cap forbids it or it is gone."""
        endpoint = self._endpoint.get(sub_id)
        if endpoint is None:
            return False
        if self.free <= 0 or self._by_endpoint[endpoint] >= self._endpoint_cap[endpoint]:
            return False
        if self._subs[sub_id].delivery.ordered and self._by_sub[sub_id]:
            return False
        bucket = self._buckets.get(sub_id)
        if bucket is not None:
            if bucket.available(now) < 1:
                return False
            bucket.take(now)
        self._by_sub[sub_id] += 1
        self._by_endpoint[endpoint] += 1
        self._started_on.setdefault(sub_id, deque()).append(endpoint)
        return True

    def finish(self, sub_id: str) -> None:
        """A request of ``sub_id`` ended (the subscription may be gone or changed since)."""
        started = self._started_on[sub_id]
        endpoint = started.popleft()
        if not started:
            del self._started_on[sub_id]
        self._by_sub[sub_id] -= 1
        self._by_endpoint[endpoint] -= 1

    def next_token_at(self, now: float) -> float | None:
        """The earliest time a rate-limited subscription without tokens gets one."""
        waits = [
            bucket.next_token_at(now)
            for bucket in self._buckets.values()
            if bucket.available(now) < 1
        ]
        return min(waits, default=None)
