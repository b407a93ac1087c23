"""``page``/``limit`` query parameters and ARK's pagination ``meta``. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from watcher.api.errors import BadRequestError, FieldError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Page:
    """A requested page: 1-based number and size."""

    number: int = 1
    limit: int = DEFAULT_LIMIT

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Page:
        """Read ``page`` and ``limit``; BadRequestError naming the bad parameter."""
        errors: list[FieldError] = []
        number = _integer(query, "page", 1, 1, 10**9, errors)
        limit = _integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, errors)
        if errors:
            raise BadRequestError("invalid query parameters", errors)
        return cls(number, limit)

    @property
    def offset(self) -> int:
        """How many items come before this page."""
        return (self.number - 1) * self.limit

    def slice(self, items: Sequence[_T]) -> list[_T]:
        start = (self.number - 1) * self.limit
        return list(items[start : start + self.limit])


def meta(
    path: str, page: Page, count: int, total: int, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """ARK's ``meta``: counts and the links of this, the next, previous, first and last page.

    ``params`` are the list's filters, which every link repeats.
    """
    page_count = max(1, -(-total // page.limit))

    def link(number: int) -> str:
        return f"{path}?{urlencode({**(params or {}), 'page': number, 'limit': page.limit})}"

    return {
        "count": count,
        "pageCount": page_count,
        "totalCount": total,
        "next": link(page.number + 1) if page.number < page_count else None,
        "previous": link(min(page.number - 1, page_count)) if page.number > 1 else None,
        "self": link(page.number),
        "first": link(1),
        "last": link(page_count),
    }


def _integer(
    query: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    errors: list[FieldError],
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    text = raw.strip()
    valid = text.isascii() and text.isdigit() and len(text) <= len(str(high))
    if not valid or not low <= int(text) <= high:
        errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
        return default
    return int(text)
