"""Subscription conditions: parsing, evaluation, units, and their configuration errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from watcher.conditions import (
    ALWAYS,
    AllOf,
    AnyOf,
    Compare,
    ConditionError,
    evaluate,
    parse_conditions,
    parse_number,
)
from watcher.config import load_config
from watcher.errors import ConfigError

ETHER = 10**18
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SECRET_ENV = {"S": "a-secret-of-enough-length"}


def holds(raw: list[Any], fields: dict[str, Any]) -> bool:
    return evaluate(parse_conditions(raw), fields)


def c(key: str, op: str, value: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "condition": op}
    if value is not None:
        item["value"] = value
    return item


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 ether", ETHER),
        ("1.5 ether", 3 * ETHER // 2),
        ("20 gwei", 20 * 10**9),
        ("0.000000000000000001 ether", 1),
        ("5000 sat", 5000),
        ("0.001 BTC", 100_000),
        ("12345678901234567890123", 12345678901234567890123),
        (7, 7),
    ],
)
def test_numbers_with_units_are_exact(text: Any, expected: int) -> None:
    assert parse_number(text) == Decimal(expected)


def test_a_wei_amount_keeps_every_digit_in_comparisons() -> None:
    big = str(10**30 + 1)
    assert holds([c("value", "gt", str(10**30))], {"value": big})
    assert not holds([c("value", "gt", big)], {"value": big})
    assert holds([c("value", "eq", big)], {"value": big})


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        (c("value", "gte", "1 ether"), {"value": str(ETHER)}, True),
        (c("value", "gt", "1 ether"), {"value": str(ETHER)}, False),
        (c("value", "lt", "1 ether"), {"value": "999"}, True),
        (c("value", "lte", 999), {"value": "999"}, True),
        (c("value", "between", ["1 gwei", "1 ether"]), {"value": str(10**9)}, True),
        (c("value", "not-between", ["1 gwei", "1 ether"]), {"value": "5"}, True),
        (c("to", "eq", ADDRESS), {"to": ADDRESS.lower()}, True),
        (c("to", "ne", ADDRESS), {"to": ADDRESS.lower()}, False),
        (c("to", "in", [ADDRESS, "0x" + "1" * 40]), {"to": "0x" + "1" * 40}, True),
        (c("to", "in", [ADDRESS]), {"to": "0x" + ADDRESS[2:].upper()}, True),
        (c("to", "not-in", [ADDRESS]), {"to": "0x" + "2" * 40}, True),
        (c("kind", "in", ["erc20", "erc721"]), {"kind": "erc20"}, True),
        (
            c("transaction.input", "contains", "a9059cbb"),
            {"transaction": {"input": "0xa9059cbb00"}},
            True,
        ),
        (c("transaction.input", "regexp", "^0x$"), {"transaction": {"input": "0x"}}, True),
        (c("value", "truthy"), {"value": "0"}, False),
        (c("value", "falsy"), {"value": "0"}, True),
        (c("to", "truthy"), {"to": None}, False),
        (c("to", "falsy"), {"to": None}, True),
        (c("missing", "eq", 1), {}, False),
        (c("missing", "ne", 1), {}, True),
        (c("block_number", "gte", 100), {"block_number": 150}, True),
        (c("direction", "eq", "in"), {"direction": "in"}, True),
    ],
)
def test_each_operator_on_event_fields(
    condition: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert holds([condition], fields) is expected


def test_all_conditions_must_hold_and_any_groups_need_one() -> None:
    raw = [
        c("value", "gte", "1 ether"),
        {"any": [c("from", "eq", ADDRESS), c("value", "gt", "10 ether")]},
    ]
    assert holds(raw, {"value": str(2 * ETHER), "from": ADDRESS})
    assert holds(raw, {"value": str(11 * ETHER), "from": "0x" + "3" * 40})
    assert not holds(raw, {"value": str(2 * ETHER), "from": "0x" + "3" * 40})
    assert not holds(raw, {"value": "1", "from": ADDRESS})


def test_no_conditions_always_hold() -> None:
    assert parse_conditions(None) is ALWAYS
    assert evaluate(ALWAYS, {})


@pytest.mark.parametrize(
    ("raw", "path", "needle"),
    [
        ([c("value", "bigger", 1)], (0, "condition"), "must be one of"),
        ([c("value", "gte")], (0, "value"), "needs a value"),
        ([c("value", "gte", "1 parsec")], (0, "value"), "unknown unit"),
        ([c("value", "gte", "1e999999999 ether")], (0, "value"), "out of range"),
        ([c("value", "between", [5, 1])], (0, "value"), "above high"),
        ([c("value", "regexp", "(")], (0, "value"), "regular expression"),
        ([c("value", "truthy", 1)], (0, "value"), "takes no value"),
        ([{"any": []}], (0, "any"), "non-empty"),
        ([{"any": [c("x", "eq", 1), {"key": "y"}]}], (0, "any", 1, "condition"), "one of"),
        ([{"key": "x", "condition": "eq", "value": 1, "extra": 2}], (0,), "unknown member"),
        (["value >= 1"], (0,), "mapping"),
    ],
)
def test_malformed_conditions_name_where_and_why(
    raw: list[Any], path: tuple[Any, ...], needle: str
) -> None:
    with pytest.raises(ConditionError) as info:
        parse_conditions(raw)
    assert info.value.path == path
    assert needle in info.value.message


def test_a_bad_condition_in_the_config_file_names_path_and_line(tmp_path: Path) -> None:
    doc = {
        "chains": [{"name": "dev", "kind": "ethereum", "rpc_url": "http://127.0.0.1:8545"}],
        "subscriptions": [
            {
                "id": "s",
                "chain": "dev",
                "addresses": [ADDRESS],
                "url": "https://example.com/hook",
                "secret": "${S}",
                "conditions": [
                    c("value", "gte", "1 ether"),
                    {"any": [c("to", "eq", ADDRESS), c("value", "gte", "1 furlong")]},
                ],
            }
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=SECRET_ENV)
    (issue,) = info.value.issues
    assert issue.path == "subscriptions[0].conditions[1].any[1].value"
    lines = path.read_text().splitlines()
    assert issue.line is not None
    assert "furlong" in lines[issue.line - 1]
    assert "unknown unit" in issue.message


# --- properties -----------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**30)


@given(amounts, amounts, amounts)
def test_between_and_not_between_are_complements(value: int, a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    fields = {"value": str(value)}
    inside = holds([c("value", "between", [low, high])], fields)
    outside = holds([c("value", "not-between", [low, high])], fields)
    assert inside != outside
    assert inside == (low <= value <= high)


@given(amounts, amounts)
def test_orderings_agree_with_integer_arithmetic(value: int, bound: int) -> None:
    fields = {"value": str(value)}
    assert holds([c("value", "gt", bound)], fields) == (value > bound)
    assert holds([c("value", "gte", bound)], fields) == (value >= bound)
    assert holds([c("value", "lt", bound)], fields) == (value < bound)
    assert holds([c("value", "lte", bound)], fields) == (value <= bound)
    assert holds([c("value", "gt", bound)], fields) != holds([c("value", "lte", bound)], fields)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["gwei", "ether", "wei"]))
def test_units_scale_exactly(count: int, unit: str) -> None:
    factor = {"wei": 1, "gwei": 10**9, "ether": 10**18}[unit]
    assert holds([c("value", "eq", f"{count} {unit}")], {"value": str(count * factor)})


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=5), st.integers(0, 1000)
)
def test_in_is_any_eq_and_not_in_its_negation(options: list[int], value: int) -> None:
    fields = {"v": value}
    any_eq = any(holds([c("v", "eq", o)], fields) for o in options)
    assert holds([c("v", "in", options)], fields) == any_eq
    assert holds([c("v", "not-in", options)], fields) != any_eq


@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_any_group_is_a_disjunction_and_the_list_a_conjunction(bits: list[bool]) -> None:
    members = tuple(Compare("f", "truthy") if b else Compare("f", "falsy") for b in bits)
    fields = {"f": 1}
    assert evaluate(AnyOf(members), fields) == any(bits)
    assert evaluate(AllOf(members), fields) == all(bits)
