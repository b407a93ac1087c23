"""The admin API's pure parts: pagination, how definitions are shown, callback URL checks."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from tests.test_tracker import ALICE, BOB, subscription
from watcher.api.errors import BadRequestError
from watcher.api.pagination import Page, meta
from watcher.api.specs import callback_url_problem, describe, render_conditions
from watcher.conditions import parse_conditions


def test_page_meta_links_and_counts() -> None:
    assert meta("/api/webhooks", Page(1, 10), 0, 0) == {
        "count": 0, "pageCount": 1, "totalCount": 0, "next": None, "previous": None,
        "self": "/api/webhooks?page=1&limit=10", "first": "/api/webhooks?page=1&limit=10",
        "last": "/api/webhooks?page=1&limit=10",
    }  # fmt: skip
    beyond = meta("/api/webhooks", Page(7, 10), 0, 25)
    assert (beyond["pageCount"], beyond["next"]) == (3, None)
    assert beyond["previous"] == "/api/webhooks?page=3&limit=10"
    assert Page(2, 2).slice(["a", "b", "c", "d", "e"]) == ["c", "d"]


@pytest.mark.parametrize(
    "query",
    [{"page": "0"}, {"page": "-1"}, {"limit": "1001"}, {"limit": "1e3"}, {"page": "9" * 5000}],
)
def test_bad_page_parameters_are_a_400_naming_them(query: dict[str, str]) -> None:
    with pytest.raises(BadRequestError) as raised:
        Page.from_query(query)
    assert [e.field for e in raised.value.errors] == list(query)


def test_file_conditions_are_shown_in_their_list_form_with_amounts_in_base_units() -> None:
    group = {
        "any": [
            {"key": "to", "condition": "in", "value": [ALICE, BOB]},
            {"key": "x", "condition": "truthy"},
        ]
    }
    regexp = {"key": "input", "condition": "regexp", "value": "^0xa9059cbb"}
    raw = [{"key": "value", "condition": "gte", "value": "1.5 ether"}, group, regexp]
    rendered = render_conditions(parse_conditions(raw))
    assert rendered == [
        {"key": "value", "condition": "gte", "value": 1_500_000_000_000_000_000},
        group,
        regexp,
    ]
    assert parse_conditions(rendered) == parse_conditions(raw)
    assert describe(subscription())["conditions"] is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/x", None),
        ("http://127.0.0.1:8080/x", None),
        ("ftp://hooks.example.com/x", "must be an http(s) URL with a host"),
        ("http:///nohost", "must be an http(s) URL with a host"),
        ("http://[::1/x", "must be an http(s) URL with a host"),
        ("http://10.0.0.1/x", "10.0.0.1 is"),
    ],
)
def test_callback_urls_are_checked_like_the_file_ones(url: str, problem: str | None) -> None:
    found = callback_url_problem(url, [ip_network("127.0.0.1/32")])
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)
