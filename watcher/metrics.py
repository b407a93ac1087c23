"""Prometheus metrics: what the followers and the delivery worker count, on one registry.

Each daemon owns a :class:`Metrics` with its own ``CollectorRegistry`` (no process-wide
singleton), which the health listener renders at ``GET /metrics``. The block path counts
once per batch of blocks, never per transaction, and holds pre-bound label children, so
metrics cost a few dictionary operations per batch.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watcher.models import BlockOutcome, Event

# Seconds: from a fraction of a second (a local receiver) to a day of retries.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
ATTEMPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REORG_DEPTH_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 64, 128, 255)


class Metrics:
    """Every metric the daemon exports, registered on :attr:`registry`."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.head_height = Gauge(
            "watcher_chain_head_height",
            "Height of the newest block the node reported.",
            ["chain"],
            registry=registry,
        )
        self.processed_height = Gauge(
            "watcher_chain_processed_height",
            "Height of the last block recorded in the store.",
            ["chain"],
            registry=registry,
        )
        self.lag = Gauge(
            "watcher_chain_lag_blocks",
            "Blocks between the node's head and the last recorded block.",
            ["chain"],
            registry=registry,
        )
        self.last_poll = Gauge(
            "watcher_chain_last_poll_timestamp_seconds",
            "Unix time of the last successful poll of the node.",
            ["chain"],
            registry=registry,
        )
        self.blocks = Counter(
            "watcher_blocks_processed",
            "Blocks recorded in the store.",
            ["chain"],
            registry=registry,
        )
        self.transactions = Counter(
            "watcher_transactions_processed",
            "Transactions in the recorded blocks.",
            ["chain"],
            registry=registry,
        )
        self.events = Counter(
            "watcher_events",
            "Events written to the outbox, by type.",
            ["chain", "type"],
            registry=registry,
        )
        self.reorgs = Counter(
            "watcher_reorgs",
            "Chain reorganisations followed.",
            ["chain"],
            registry=registry,
        )
        self.reorg_depth = Histogram(
            "watcher_reorg_depth_blocks",
            "Blocks rolled back per reorganisation.",
            ["chain"],
            buckets=REORG_DEPTH_BUCKETS,
            registry=registry,
        )
        self.rpc_errors = Counter(
            "watcher_rpc_errors",
            "Failed polls of a node, by the JSON-RPC method that failed.",
            ["chain", "method"],
            registry=registry,
        )
        self.deliveries = Counter(
            "watcher_deliveries",
            "Delivery attempts, by outcome (succeeded, failed).",
            ["subscription", "outcome"],
            registry=registry,
        )
        self.attempt_duration = Histogram(
            "watcher_delivery_attempt_duration_seconds",
            "Duration of one webhook request.",
            ["subscription"],
            buckets=ATTEMPT_BUCKETS_S,
            registry=registry,
        )
        self.ack_latency = Histogram(
            "watcher_delivery_latency_seconds",
            "From recording the block (or mempool change) that made an event to the "
            "subscriber's 2xx, retries included.",
            ["subscription"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        # Label children looked up once: ``labels()`` costs more than the update itself.
        self._attempt_children: dict[tuple[str, str], tuple[Counter, Histogram, Histogram]] = {}
        self.queue = Gauge(
            "watcher_delivery_queue",
            "Deliveries not yet acknowledged, by state (due, waiting, in_flight).",
            ["subscription", "state"],
            registry=registry,
        )

    def chain(self, name: str) -> ChainMetrics:
        """The metrics of one chain, with their label children bound once."""
        return ChainMetrics(self, name)

    def set_queue(self, depths: Iterable[tuple[str, str, int]]) -> None:
        """Replace the queue gauges with ``(subscription, state, count)`` rows."""
        self.queue.clear()
        for subscription, state, count in depths:
            self.queue.labels(subscription, state).set(count)

    def delivery_attempt(
        self, subscription: str, outcome: str, duration_s: float, latency_s: float | None
    ) -> None:
        """Count one attempt; ``latency_s`` is given when it was acknowledged."""
        children = self._attempt_children.get((subscription, outcome))
        if children is None:
            children = self._attempt_children[(subscription, outcome)] = (
                self.deliveries.labels(subscription, outcome),
                self.attempt_duration.labels(subscription),
                self.ack_latency.labels(subscription),
            )
        count, duration, latency = children
        count.inc()
        duration.observe(duration_s)
        if latency_s is not None:
            latency.observe(max(0.0, latency_s))


class ChainMetrics:
    """One chain's metrics, as the follower updates them."""

    def __init__(self, metrics: Metrics, chain: str) -> None:
        self._metrics = metrics
        self._chain = chain
        self._head = metrics.head_height.labels(chain)
        self._processed = metrics.processed_height.labels(chain)
        self._lag = metrics.lag.labels(chain)
        self._last_poll = metrics.last_poll.labels(chain)
        self._blocks = metrics.blocks.labels(chain)
        self._transactions = metrics.transactions.labels(chain)
        self._reorgs = metrics.reorgs.labels(chain)
        self._reorg_depth = metrics.reorg_depth.labels(chain)
        self._head_value: int | None = None
        self._processed_value: int | None = None

    def head(self, number: int) -> None:
        self._head_value = number
        self._head.set(number)
        self._update_lag()

    def processed(self, number: int) -> None:
        self._processed_value = number
        self._processed.set(number)
        self._update_lag()

    def _update_lag(self) -> None:
        if self._head_value is not None and self._processed_value is not None:
            self._lag.set(max(0, self._head_value - self._processed_value))

    def polled(self, at: float) -> None:
        self._last_poll.set(at)

    def batch(self, outcomes: Sequence[BlockOutcome], transactions: int) -> None:
        """Count a batch of recorded blocks and the events they produced."""
        self._blocks.inc(len(outcomes))
        self._transactions.inc(transactions)
        self.events(e for o in outcomes for e in o.events)

    def events(self, events: Iterable[Event]) -> None:
        for kind, count in Tally(e.type.value for e in events).items():
            self._metrics.events.labels(self._chain, kind).inc(count)

    def reorg(self, depth: int) -> None:
        self._reorgs.inc()
        self._reorg_depth.observe(depth)

    def rpc_error(self, method: str) -> None:
        self._metrics.rpc_errors.labels(self._chain, method).inc()
