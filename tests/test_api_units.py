"""The admin API's pure parts: pagination, how definitions are shown, callback URL checks."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from tests.test_tracker import ALICE, BOB, subscription
from watcher.api.errors import BadRequestError, InvalidError
from watcher.api.pagination import Page, meta
from watcher.api.specs import (
    Context,
    WebhookFields,
    callback_url_problem,
    describe,
    normalise,
    parse_model,
    render_conditions,
)
from watcher.btc_addresses import Network
from watcher.chain_config import BitcoinChainConfig
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


BTC_REGTEST_P2WPKH = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def btc_context() -> Context:
    chain = BitcoinChainConfig(
        name="btc", kind="bitcoin", rpc_url="http://127.0.0.1:1", network=Network.REGTEST
    )
    return Context(chains={"btc": chain})


def webhook(**fields: object) -> WebhookFields:
    base: dict[str, object] = {"chain": "btc", "url": "https://hooks.example.com/x"}
    return parse_model(WebhookFields, {**base, **fields})


def test_api_webhooks_on_a_bitcoin_chain_take_that_chain_s_addresses() -> None:
    spec = normalise(webhook(addresses=[BTC_REGTEST_P2WPKH.upper()]), btc_context())
    assert spec["addresses"] == [BTC_REGTEST_P2WPKH]


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"addresses": [ALICE]}, "addresses[0]", ALICE),
        ({"addresses": [BTC_REGTEST_P2WPKH], "tokens": [ALICE]}, "tokens", "no tokens"),
        ({"addresses": [BTC_REGTEST_P2WPKH], "kinds": ["erc20"]}, "kinds", "native"),
    ],
)
def test_api_webhooks_on_a_bitcoin_chain_refuse_what_does_not_apply(
    fields: dict[str, object], field: str, needle: str
) -> None:
    with pytest.raises(InvalidError) as info:
        normalise(webhook(**fields), btc_context())
    problems = {e.field: e.message for e in info.value.errors}
    assert field in problems, problems
    assert needle in problems[field]
