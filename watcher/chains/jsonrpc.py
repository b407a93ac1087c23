"""JSON-RPC framing the node adapters share: request ids, batch requests, batch replies. Pure.

Ethereum nodes speak JSON-RPC 2.0 and Bitcoin-family nodes 1.0, but a batch is the same in
both: one request object per call with consecutive ids, and a reply list the node may return
in any order. What each reply means (a result, an error, an error that stands for "absent")
is the adapter's business; this module only pairs replies with calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from watcher.errors import NodeError

Call = tuple[str, Sequence[Any]]


class RequestIds:
    """Request ids, unique per client: one for a call, a consecutive run for a batch."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 1

    def take(self, count: int = 1) -> int:
        """The first of ``count`` fresh consecutive ids."""
        first = self._next
        self._next += count
        return first


def request(version: str, request_id: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    """One request object."""
    return {"jsonrpc": version, "id": request_id, "method": method, "params": params}


def batch_request(version: str, first_id: int, calls: Sequence[Call]) -> list[dict[str, Any]]:
    """The request objects of ``calls``, numbered from ``first_id``."""
    return [
        request(version, first_id + i, method, params) for i, (method, params) in enumerate(calls)
    ]


def batch_replies(chain: str, first_id: int, calls: Sequence[Call], replies: Any) -> list[Any]:
    """The reply object to each of ``calls``, in their order, whatever order the node used.

    Raises NodeError when ``replies`` is not one object per call with the ids asked for.
    """
    label = calls[0][0] if calls else "batch"
    if not isinstance(replies, list) or len(replies) != len(calls):
        raise NodeError(chain, label, "batch reply does not match the request")
    by_id: dict[Any, dict[str, Any]] = {}
    for reply in replies:
        if not isinstance(reply, dict):
            raise NodeError(chain, label, "batch reply holds a non-object")
        by_id[reply.get("id")] = reply
    ordered = []
    for i, (method, _) in enumerate(calls):
        reply = by_id.get(first_id + i)
        if reply is None:
            raise NodeError(chain, method, "batch reply is missing an id")
        ordered.append(reply)
    return ordered
