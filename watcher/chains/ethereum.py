"""Ethereum (and EVM) JSON-RPC adapter: raw node JSON in, ``Block`` and ``Tx`` out.

Blocks are fetched with batched ``eth_getBlockByNumber`` calls over a shared aiohttp session
and parsed with orjson: the formatting layer of a general-purpose client costs about ten times
the network round trip on the catch-up path, and the daemon needs only a few fields. Nothing
outside this module sees a raw dict or a hex quantity, except ``Tx.raw``, which is passed on
to subscribers unchanged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from watcher.errors import NodeError
from watcher.models import Block, Tx

_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")


class EthereumClient:
    """JSON-RPC calls the daemon needs from an Ethereum node."""

    def __init__(
        self, chain: str, rpc_url: str, session: aiohttp.ClientSession, timeout_s: float = 30.0
    ) -> None:
        self.chain = chain
        self._url = rpc_url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ids = itertools.count(1)

    async def chain_id(self) -> int:
        """The node's EIP-155 chain id."""
        return self._quantity(await self.call("eth_chainId", []), "eth_chainId")

    async def block_number(self) -> int:
        """The height of the node's head block."""
        return self._quantity(await self.call("eth_blockNumber", []), "eth_blockNumber")

    async def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block at ``number``, or None if the node has none."""
        raw = await self.call("eth_getBlockByNumber", [hex(number), False])
        if raw is None:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str):
            raise NodeError(self.chain, "eth_getBlockByNumber", "block without a hash")
        return str(raw["hash"]).lower()

    async def blocks(self, numbers: Sequence[int]) -> list[Block | None]:
        """Full blocks at ``numbers`` in one batch; None where the node has no block yet."""
        calls = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
        results = await self.batch(calls)
        blocks: list[Block | None] = []
        for number, raw in zip(numbers, results, strict=True):
            if raw is None:
                blocks.append(None)
                continue
            block = parse_block(raw, self.chain)
            if block.number != number:
                raise NodeError(
                    self.chain, "eth_getBlockByNumber", f"asked for {number}, got {block.number}"
                )
            blocks.append(block)
        return blocks

    async def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; raises NodeError for transport, HTTP and RPC errors."""
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        reply = await self._post(method, request)
        if not isinstance(reply, dict):
            raise NodeError(self.chain, method, "reply is not a JSON-RPC object")
        return _result(reply, self.chain, method)

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several JSON-RPC calls in one HTTP request, results in the order of ``calls``."""
        if not calls:
            return []
        first_id = next(self._ids)
        self._ids = itertools.count(first_id + len(calls))
        requests = [
            {"jsonrpc": "2.0", "id": first_id + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        label = calls[0][0]
        replies = await self._post(label, requests)
        if not isinstance(replies, list) or len(replies) != len(calls):
            raise NodeError(self.chain, label, "batch reply does not match the request")
        by_id: dict[Any, Any] = {}
        for reply in replies:
            if not isinstance(reply, dict):
                raise NodeError(self.chain, label, "batch reply holds a non-object")
            by_id[reply.get("id")] = reply
        out: list[Any] = []
        for i, (method, _) in enumerate(calls):
            reply = by_id.get(first_id + i)
            if reply is None:
                raise NodeError(self.chain, method, "batch reply is missing an id")
            out.append(_result(reply, self.chain, method))
        return out

    def _quantity(self, value: Any, method: str) -> int:
        try:
            return _hex_quantity(value)
        except ValueError:
            pass
        raise NodeError(self.chain, method, f"expected a hex quantity, got {value!r:.80}")

    async def _post(self, method: str, payload: object) -> Any:
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    raise NodeError(self.chain, method, f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NodeError(self.chain, method, f"{type(exc).__name__}: {exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise NodeError(self.chain, method, "reply is not JSON") from exc


def _result(reply: Mapping[str, Any], chain: str, method: str) -> Any:
    error = reply.get("error")
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise NodeError(chain, method, f"RPC error: {message}")
    if "result" not in reply:
        raise NodeError(chain, method, "reply has neither result nor error")
    return reply["result"]


def parse_block(raw: Any, chain: str) -> Block:
    """Normalise a full ``eth_getBlockByNumber`` object; NodeError if it is malformed."""
    try:
        txs = raw["transactions"]
        return Block(
            number=_hex_quantity(raw["number"]),
            hash=raw["hash"].lower(),
            parent_hash=raw["parentHash"].lower(),
            timestamp=_hex_quantity(raw["timestamp"]),
            transactions=tuple(parse_tx(tx) for tx in txs),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NodeError(chain, "eth_getBlockByNumber", f"malformed block: {exc!r}") from exc


def parse_tx(raw: Any) -> Tx:
    """Normalise one transaction object of a full block."""
    to = raw["to"]
    return Tx(
        hash=raw["hash"].lower(),
        sender=raw["from"].lower(),
        recipient=to.lower() if to is not None else None,
        value_wei=_hex_quantity(raw["value"]),
        nonce=_hex_quantity(raw["nonce"]),
        raw=raw,
    )


def _hex_quantity(value: Any) -> int:
    """Decode a JSON-RPC quantity such as ``"0x1a"``; ValueError for anything else.

    ``int(value, 16)`` alone would also take ``"1a"``, ``"0x_1a"`` or ``" 0x1a"``, and read a
    decimal ``"26"`` as 38.
    """
    if not isinstance(value, str) or not _HEX_QUANTITY.fullmatch(value):
        raise ValueError(f"expected a 0x-prefixed hex quantity, got {value!r:.80}")
    return int(value, 16)
