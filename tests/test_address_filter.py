"""The C accelerator for Bitcoin matching: its filter's answers and its scan of a block."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.btc_matching import ACCELERATED
from watcher.models import BtcTx, BtcTxIn, BtcTxOut

pytestmark = pytest.mark.skipif(not ACCELERATED, reason="the C accelerator was not built")

if ACCELERATED:
    from watcher._address_filter import AddressFilter

WATCHED = "bc1qwatched"


def tx(txid: str, inputs: list[str | None], outputs: list[str | None]) -> BtcTx:
    return BtcTx(
        txid,
        tuple(
            BtcTxIn("prev", n, address, None if address is None else 1)
            for n, address in enumerate(inputs)
        ),
        tuple(BtcTxOut(n, address, 1) for n, address in enumerate(outputs)),
        coinbase=not inputs,
        raw={},
    )


@given(st.sets(st.text(), max_size=300), st.lists(st.text(), max_size=50))
def test_a_watched_address_is_never_turned_away(watched: set[str], others: list[str]) -> None:
    """An equal string has the same hash, so every member passes, also as a new object."""
    f = AddressFilter(watched | set(others))
    assert len(f) == len(watched | set(others))
    assert all(a in f for a in watched)
    assert all("".join(list(a)) in f for a in others)


def test_few_strangers_pass_a_large_filter() -> None:
    """About 0.1 % by design; the exact set answers for them afterwards."""
    f = AddressFilter(f"bc1qdeposit{n:08d}" for n in range(200_000))
    strangers = [f"bc1qstranger{n:08d}" for n in range(200_000)]
    passed = sum(s in f for s in strangers)
    assert passed < len(strangers) * 0.005


def test_an_empty_filter_lets_nothing_through() -> None:
    f = AddressFilter([])
    assert len(f) == 0
    assert not any(f"x{n}" in f for n in range(10_000))


def test_unhashable_keys_are_a_type_error_as_in_a_set() -> None:
    with pytest.raises(TypeError):
        AddressFilter([["not", "hashable"]])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _ = [] in AddressFilter([WATCHED])


def test_the_scan_picks_out_transactions_paying_or_spending_a_watched_address() -> None:
    f = AddressFilter([WATCHED])
    block = [
        tx("coinbase", [], ["1miner", None]),
        tx("pays", ["1a"], [None, "1b", WATCHED]),
        tx("unrelated", ["1c", "1d"], ["1e"]),
        tx("spends", ["1f", WATCHED], ["1g"]),
        *(tx(f"filler{n}", ["1h"], ["1i"]) for n in range(40)),
        tx("late", ["1j"], [WATCHED]),
    ]
    hits, stop = f.candidates(block)
    assert [block[i].txid for i in hits] == ["pays", "spends", "late"]
    assert stop == len(block)
    assert f.candidates(tuple(block)) == (hits, stop)
    assert f.candidates([]) == ([], 0)


def test_the_scan_stops_at_the_first_input_without_an_address() -> None:
    """From there on outpoints decide, which only the Python matcher can look up."""
    f = AddressFilter([WATCHED])
    block = [
        tx("pays", ["1a"], [WATCHED]),
        tx("unknown-input", ["1b", None], [WATCHED]),
        tx("after", [WATCHED], []),
    ]
    assert f.candidates(block) == ([0], 1)


def test_a_transaction_at_the_stop_is_not_reported_even_after_many_inputs() -> None:
    """Addresses are answered some way behind the walk; the stopping one is taken back."""
    f = AddressFilter([WATCHED])
    many_inputs = [WATCHED, *(f"1in{n}" for n in range(40)), None]
    block = [tx("before", ["1a"], [WATCHED]), tx("stopping", many_inputs, [])]
    assert f.candidates(block) == ([0], 1)


def test_a_malformed_block_is_an_error_not_a_crash() -> None:
    f = AddressFilter([WATCHED])
    with pytest.raises(AttributeError):
        f.candidates([object()])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        f.candidates(42)  # type: ignore[arg-type]
    bad = BtcTx("t", [BtcTxIn("p", 0, WATCHED, 1)], (), coinbase=False, raw={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tuples"):
        f.candidates([bad])
