"""Backoff arithmetic for retries: pure functions, randomness injected.

Two kinds of retry exist. Calls to a node are retried in memory by the poll loops with an
exponential backoff (:class:`Backoff`). Webhook deliveries are retried through the store, on
the schedule :mod:`watcher.policy` decides; the outbox keeps when the next attempt is due.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from watcher.errors import NodeError

Random = Callable[[], float]

# Errors after which a node call is worth repeating; anything else is a bug and propagates.
RETRYABLE_NODE_ERRORS: tuple[type[Exception], ...] = (NodeError,)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with a cap and up to ``jitter`` (a fraction) added at random."""

    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: Random = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        raw = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 32))
        return raw * (1.0 + self.jitter * rand())
