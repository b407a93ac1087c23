"""Subscription conditions over event fields: parsing and evaluation, pure functions.

A subscription's conditions must all hold (AND); an ``any:`` group holds when one of its
members does (OR), and groups nest. The operators are ARK's (``eq, ne, gt, gte, lt, lte,
between, not-between, contains, truthy, falsy, regexp``) plus ``in`` and ``not-in``.

Numbers are compared as exact integers or decimals, never floats, so wei amounts keep every
digit; a number may carry a unit (``1.5 ether``, ``20 gwei``, ``0.001 btc``, ``5000 sat``).
Hex strings (addresses, hashes) compare case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

UNITS: dict[str, int] = {
    "wei": 1,
    "kwei": 10**3,
    "mwei": 10**6,
    "gwei": 10**9,
    "szabo": 10**12,
    "finney": 10**15,
    "ether": 10**18,
    "eth": 10**18,
    "sat": 1,
    "sats": 1,
    "btc": 10**8,
}
OPERATORS = (
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "not-between",
    "contains", "truthy", "falsy", "regexp", "in", "not-in",
)  # fmt: skip
_NUMBER_WITH_UNIT = re.compile(
    r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]+)?\s*$"
)


Path = tuple[str | int, ...]


class ConditionError(ValueError):
    """A condition is malformed; ``path`` locates it inside the list, the message says why."""

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True, slots=True)
class Compare:
    """One test of one event field."""

    key: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Holds when at least one member holds."""

    members: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Holds when every member holds (an empty AllOf always holds)."""

    members: tuple[Condition, ...]


Condition = Compare | AnyOf | AllOf
ALWAYS = AllOf(())


def parse_number(raw: Any) -> Decimal:
    """A number from an int, a decimal string, or a string with a unit; ConditionError if not."""
    if isinstance(raw, bool):
        raise ConditionError(f"{raw!r} is not a number")
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        return Decimal(repr(raw))
    if isinstance(raw, str):
        match = _NUMBER_WITH_UNIT.match(raw)
        if match is not None:
            number, unit = match.groups()
            if unit is None:
                return Decimal(number)
            factor = UNITS.get(unit.lower())
            if factor is None:
                raise ConditionError(f"unknown unit '{unit}' (known: {', '.join(UNITS)})")
            try:
                return Decimal(number) * factor
            except ArithmeticError:  # decimal.Overflow: an exponent beyond any amount
                raise ConditionError(f"{raw!r} is out of range") from None
    raise ConditionError(f"{raw!r} is not a number (write e.g. 1000, 1.5 ether or 20 gwei)")


def parse_conditions(raw: Any) -> Condition:
    """Build a condition tree from the YAML/JSON form (a list of items, ANDed)."""
    if raw is None:
        return ALWAYS
    if not isinstance(raw, list):
        raise ConditionError("must be a list of conditions")
    return AllOf(tuple(_parse_item(item, (i,)) for i, item in enumerate(raw)))


def _parse_item(item: Any, path: Path) -> Condition:
    if not isinstance(item, Mapping):
        raise ConditionError("must be a mapping of key, condition, value (or any: / all:)", path)
    if set(item) == {"any"} or set(item) == {"all"}:
        (group,) = item
        members = item[group]
        if not isinstance(members, list) or not members:
            raise ConditionError("must be a non-empty list of conditions", (*path, group))
        parsed = tuple(_parse_item(m, (*path, group, i)) for i, m in enumerate(members))
        return AnyOf(parsed) if group == "any" else AllOf(parsed)
    unknown = set(item) - {"key", "condition", "value"}
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise ConditionError(f"unknown member(s) {names}; use key, condition, value", path)
    key, op = item.get("key"), item.get("condition")
    if not isinstance(key, str) or not key:
        raise ConditionError("must name an event field, e.g. value or to", (*path, "key"))
    if op not in OPERATORS:
        raise ConditionError(f"must be one of {', '.join(OPERATORS)}", (*path, "condition"))
    try:
        return Compare(key, op, _parse_operand(op, item.get("value")))
    except ConditionError as exc:
        raise ConditionError(exc.message, (*path, "value")) from None


def _parse_operand(op: str, value: Any) -> Any:
    if op in ("truthy", "falsy"):
        if value is not None:
            raise ConditionError(f"{op} takes no value")
        return None
    if value is None:
        raise ConditionError(f"{op} needs a value")
    if op in ("gt", "gte", "lt", "lte"):
        return parse_number(value)
    if op in ("between", "not-between"):
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError(f"{op} needs [low, high]")
        low, high = parse_number(value[0]), parse_number(value[1])
        if low > high:
            raise ConditionError(f"{op}: low {value[0]} is above high {value[1]}")
        return (low, high)
    if op in ("in", "not-in"):
        if not isinstance(value, list) or not value:
            raise ConditionError(f"{op} needs a non-empty list")
        return tuple(_scalar(v) for v in value)
    if op == "regexp":
        if not isinstance(value, str):
            raise ConditionError("regexp needs a string pattern")
        try:
            return re.compile(value)
        except re.error as exc:
            raise ConditionError(f"invalid regular expression: {exc}") from None
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, list | dict):
        raise ConditionError("must be a single value")
    return value


# --- evaluation ---------------------------------------------------------------------------


def evaluate(condition: Condition, fields: Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds for an event whose data is ``fields``."""
    if isinstance(condition, AllOf):
        return all(evaluate(m, fields) for m in condition.members)
    if isinstance(condition, AnyOf):
        return any(evaluate(m, fields) for m in condition.members)
    return _compare(condition, lookup(fields, condition.key))


_MISSING = object()


def lookup(fields: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted ``key`` (``transaction.input``), or a marker when absent."""
    current: Any = fields
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _compare(c: Compare, actual: Any) -> bool:
    op = c.op
    if actual is _MISSING or actual is None:
        return op in ("falsy", "ne", "not-in")
    if op == "truthy":
        return _truthy(actual)
    if op == "falsy":
        return not _truthy(actual)
    if op == "eq":
        return _equal(actual, c.value)
    if op == "ne":
        return not _equal(actual, c.value)
    if op == "in":
        return any(_equal(actual, v) for v in c.value)
    if op == "not-in":
        return not any(_equal(actual, v) for v in c.value)
    if op == "contains":
        return _contains(actual, c.value)
    if op == "regexp":
        return c.value.search(str(actual)) is not None
    number = _as_number(actual)
    if number is None:
        return False
    if op == "gt":
        return bool(number > c.value)
    if op == "gte":
        return bool(number >= c.value)
    if op == "lt":
        return bool(number < c.value)
    if op == "lte":
        return bool(number <= c.value)
    low, high = c.value
    inside = bool(low <= number <= high)
    return inside if op == "between" else not inside


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(int(value, 16)) if value.lower().startswith("0x") else Decimal(value)
        except (ValueError, InvalidOperation):
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or str(actual).lower() == str(expected).lower()
    if isinstance(actual, str) and isinstance(expected, str):
        if actual.lower().startswith("0x") and expected.lower().startswith("0x"):
            return actual.lower() == expected.lower()
        if actual == expected:
            return True
    left, right = _as_number(actual), _numeric_operand(expected)
    if left is not None and right is not None:
        return left == right
    return str(actual) == str(expected)


def _numeric_operand(value: Any) -> Decimal | None:
    try:
        return parse_number(value)
    except ConditionError:
        return None


def _contains(actual: Any, needle: Any) -> bool:
    if isinstance(actual, str):
        text, part = actual, str(needle)
        if text.lower().startswith("0x"):
            return part.lower() in text.lower()
        return part in text
    if isinstance(actual, Sequence):
        return any(_equal(item, needle) for item in actual)
    if isinstance(actual, Mapping):
        return needle in actual
    return False


def _truthy(value: Any) -> bool:
    number = _as_number(value)
    if number is not None:
        return number != 0
    return bool(value)
