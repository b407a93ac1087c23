"""Pairing a JSON-RPC batch's replies with its calls, whatever order the node answers in."""

from __future__ import annotations

from typing import Any

import pytest

from watcher.chains.jsonrpc import RequestIds, batch_replies, batch_request
from watcher.errors import NodeError

CALLS = [("getblockhash", [1]), ("getblockhash", [2]), ("getblockcount", [])]


def test_ids_are_unique_and_a_batch_takes_a_consecutive_run() -> None:
    ids = RequestIds()
    assert ids.take() == 1
    assert ids.take(3) == 2
    assert ids.take() == 5


def test_a_batch_request_numbers_its_calls_from_the_first_id() -> None:
    requests = batch_request("1.0", 7, CALLS)
    assert [(r["id"], r["method"], r["params"]) for r in requests] == [
        (7, "getblockhash", [1]),
        (8, "getblockhash", [2]),
        (9, "getblockcount", []),
    ]
    assert {r["jsonrpc"] for r in requests} == {"1.0"}


def test_replies_in_any_order_come_back_in_the_order_of_the_calls() -> None:
    replies = [{"id": 9, "result": 2}, {"id": 7, "result": "a"}, {"id": 8, "result": "b"}]
    ordered = batch_replies("btc", 7, CALLS, replies)
    assert [r["result"] for r in ordered] == ["a", "b", 2]


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        ({"id": 7, "result": "a"}, "does not match the request"),
        ([{"id": 7, "result": "a"}], "does not match the request"),
        ([{"id": 7}, {"id": 8}, "garbage"], "holds a non-object"),
        ([{"id": 7}, {"id": 8}, {"id": 10}], "missing an id"),
    ],
)
def test_a_reply_that_does_not_answer_the_batch_is_a_node_error(replies: Any, message: str) -> None:
    with pytest.raises(NodeError, match=message):
        batch_replies("btc", 7, CALLS, replies)
