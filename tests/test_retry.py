"""Backoff arithmetic, with the randomness injected so every delay is exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.errors import NodeError
from watcher.retry import RETRYABLE_NODE_ERRORS, Backoff


def no_jitter() -> float:
    return 0.0


def full_jitter() -> float:
    """The top of ``random.random``'s range (it never quite reaches 1.0)."""
    return 1.0


def test_backoff_doubles_from_its_base() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    assert [backoff.delay(n, no_jitter) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_stops_growing_at_its_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    assert [backoff.delay(n, no_jitter) for n in (6, 7, 50, 10_000)] == [30.0] * 4


def test_backoff_jitter_only_adds_up_to_its_fraction() -> None:
    backoff = Backoff(base_s=1.0, cap_s=30.0, jitter=0.2)
    assert backoff.delay(2, full_jitter) == pytest.approx(4.8)
    assert backoff.delay(2, lambda: 0.5) == pytest.approx(4.4)
    assert backoff.delay(100, full_jitter) == pytest.approx(36.0)


@given(attempt=st.integers(min_value=0, max_value=10**6), r=st.floats(0.0, 1.0))
def test_backoff_delay_is_positive_and_bounded(attempt: int, r: float) -> None:
    backoff = Backoff()
    delay = backoff.delay(attempt, lambda: r)
    assert backoff.base_s <= delay <= backoff.cap_s * (1 + backoff.jitter)


def test_node_errors_are_the_retryable_ones() -> None:
    assert isinstance(NodeError("dev", "eth_blockNumber", "timeout"), RETRYABLE_NODE_ERRORS)
    assert not isinstance(ValueError("bug"), RETRYABLE_NODE_ERRORS)
