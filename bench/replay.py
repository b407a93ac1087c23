"""A replay JSON-RPC node: serves a recorded chain from memory, far faster than anvil.

anvil serves about 115 blocks/s of 50-transaction blocks, which hides the daemon's own cost;
this server answers the few methods a catch-up uses from bytes prepared at start-up, so the
client side is what gets measured. It runs in its own process (``python bench/replay.py
CACHE_FOLDER PORT``) so that it does not share an event loop, or a core, with the client.

Methods: ``eth_chainId``, ``eth_blockNumber``, ``eth_getBlockByNumber`` (full or hashes
only; hex number, ``latest`` or ``earliest``) and ``eth_getLogs`` (``fromBlock``, ``toBlock``
and the first topic; no address filter), single or in JSON-RPC batches.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from watcher.node_process import NodeProcess, free_port

CHAIN_ID = 31337

Reply = Callable[[list[Any]], bytes]
# A recorded log: its first topic (None without topics) and its JSON.
Log = tuple[str | None, bytes]


class RecordedNode:
    """Answers JSON-RPC requests from the recorded blocks and logs; the answers are bytes."""

    def __init__(
        self, full_blocks: list[bytes], block_logs: list[bytes], chain_id: int = CHAIN_ID
    ) -> None:
        if len(block_logs) != len(full_blocks):
            raise ValueError(f"{len(block_logs)} lists of logs for {len(full_blocks)} blocks")
        self._full = full_blocks
        self._hashes_only = [_without_tx_objects(block) for block in full_blocks]
        self._logs = [_split_logs(logs) for logs in block_logs]
        self._head = len(full_blocks) - 1
        self._methods: dict[str, Reply] = {
            "eth_chainId": lambda _: orjson.dumps(hex(chain_id)),
            "eth_blockNumber": lambda _: orjson.dumps(hex(self._head)),
            "eth_getBlockByNumber": self._block,
            "eth_getLogs": self._get_logs,
        }

    def answer(self, body: bytes) -> bytes:
        """The reply to one HTTP request body (a single call or a batch)."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(None, -32700, "parse error")
        if isinstance(request, list):
            return b"[" + b",".join(self._call(r) for r in request) + b"]"
        return self._call(request)

    def _call(self, request: Any) -> bytes:
        if not isinstance(request, dict):
            return _error(None, -32600, "invalid request")
        request_id = request.get("id")
        handler = self._methods.get(request.get("method", ""))
        if handler is None:
            return _error(request_id, -32601, "method not found")
        try:
            result = handler(request.get("params") or [])
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            return _error(request_id, -32602, f"invalid params: {exc}")
        return b'{"jsonrpc":"2.0","id":' + orjson.dumps(request_id) + b',"result":' + result + b"}"

    def _block(self, params: list[Any]) -> bytes:
        tag, full = params[0], bool(params[1])
        number = self._number(tag)
        if not 0 <= number <= self._head:
            return b"null"
        return self._full[number] if full else self._hashes_only[number]

    def _get_logs(self, params: list[Any]) -> bytes:
        """Logs of blocks fromBlock..toBlock (default: latest), whose first topic matches."""
        log_filter = params[0]
        unknown = set(log_filter) - {"fromBlock", "toBlock", "topics"}
        if unknown:
            raise ValueError(f"filter fields not supported: {', '.join(sorted(unknown))}")
        first = self._number(log_filter.get("fromBlock", "latest"))
        last = min(self._number(log_filter.get("toBlock", "latest")), self._head)
        topics = log_filter.get("topics") or [None]
        wanted = topics[0]
        if isinstance(wanted, str):
            wanted = {wanted.lower()}
        elif wanted is not None:
            wanted = {str(topic).lower() for topic in wanted}
        found = [
            log
            for number in range(max(first, 0), last + 1)
            for topic, log in self._logs[number]
            if wanted is None or topic in wanted
        ]
        return b"[" + b",".join(found) + b"]"

    def _number(self, tag: str) -> int:
        number = {"latest": self._head, "earliest": 0}.get(tag)
        return int(tag, 16) if number is None else number


def _without_tx_objects(block: bytes) -> bytes:
    doc = orjson.loads(block)
    doc["transactions"] = [tx["hash"] for tx in doc["transactions"]]
    return orjson.dumps(doc)


def _split_logs(logs: bytes) -> list[Log]:
    """One block's logs (a JSON list) as (first topic, JSON) pairs, ready to be filtered."""
    return [
        (str(log["topics"][0]).lower() if log["topics"] else None, orjson.dumps(log))
        for log in orjson.loads(logs)
    ]


def _error(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    )


def make_app(node: RecordedNode) -> web.Application:
    """The aiohttp application serving ``node`` at ``/``."""

    async def rpc(request: web.Request) -> web.Response:
        body = node.answer(await request.read())
        return web.Response(body=body, content_type="application/json")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/", rpc)
    return app


class ReplayServer(NodeProcess):
    """The replay node in a child process, for ``async with``; stopped on exit.

    Started once, without retries: it loads the whole recorded chain before it listens.
    """

    startup_timeout_s = 60.0
    start_attempts = 1
    poll_interval_s = 0.05
    not_ready_errors = (aiohttp.ClientError,)

    def __init__(self, blocks_path: Path, logs_path: Path) -> None:
        super().__init__()
        self.blocks_path = blocks_path
        self.logs_path = logs_path
        self.port = 0
        self._session: aiohttp.ClientSession | None = None  # only while starting

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the server on a free port and wait until it answers ``eth_chainId``."""
        self._session = aiohttp.ClientSession()
        try:
            await super().start()
        finally:
            await self._session.close()
            self._session = None

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.port = free_port()
        return await asyncio.create_subprocess_exec(
            sys.executable, __file__, str(self.blocks_path), str(self.logs_path), str(self.port)
        )

    async def _ready(self) -> None:
        assert self._session is not None
        async with self._session.post(
            self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
        ) as response:
            await response.read()

    def _start_error(self, exit_code: int | None) -> Exception:
        if exit_code is not None:
            return RuntimeError(f"replay server exited with {exit_code}")
        return RuntimeError("replay server did not start")


def main(argv: list[str]) -> None:
    """Serve blocks ``argv[0]`` and logs ``argv[1]`` (JSON lines) on 127.0.0.1:``argv[2]``."""
    with gzip.open(argv[0], "rb") as blocks, gzip.open(argv[1], "rb") as logs:
        node = RecordedNode(blocks.read().splitlines(), logs.read().splitlines())
    web.run_app(make_app(node), host="127.0.0.1", port=int(argv[2]), print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
