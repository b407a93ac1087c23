"""JSON-RPC transport to a Bitcoin-family node over aiohttp: calls, batches, errors, auth.

Two error conventions meet here. Bitcoin Core (and its forks) answers a failed call with an
HTTP error status (500, or 404 for an unknown method) and the JSON-RPC error in the body;
bcoin answers HTTP 200 with an ``error`` member. Both become :class:`NodeRpcError`, which
keeps the node's error code, so callers can tell "no such transaction" (-5) from a node
that is down. Wrong credentials (HTTP 401, empty body) and transport failures become a plain
:class:`NodeError`.

Replies are parsed with the standard library's JSON decoder and ``parse_float=Decimal``:
amounts stay exactly as the node wrote them. orjson is faster but only yields floats; on a
10 MB block the decimal parse costs about 30 % more, which is small next to the node's own
time to build the reply.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from watcher.chains.jsonrpc import RequestIds, batch_replies, batch_request, request
from watcher.errors import NodeError, NodeRpcError

# Bitcoin Core's RPC error codes that callers treat as an answer rather than a failure.
RPC_INVALID_ADDRESS_OR_KEY = -5  # unknown transaction or block
RPC_INVALID_PARAMETER = -8  # e.g. block height out of range
RPC_METHOD_NOT_FOUND = -32601


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """``rpcuser``/``rpcpassword`` (for bcoin: any user name and the API key)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CookieAuth:
    """The node's cookie file (``<datadir>/[network/].cookie``), re-read when the node restarts."""

    path: Path


RpcAuth = PasswordAuth | CookieAuth


class BitcoinRpc:
    """JSON-RPC 1.0 calls to one node, with exact decimal amounts in the replies."""

    def __init__(
        self,
        chain: str,
        url: str,
        session: aiohttp.ClientSession,
        auth: RpcAuth,
        timeout_s: float = 30.0,
    ) -> None:
        self.chain = chain
        self._url = url
        self._session = session
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ids = RequestIds()
        self._header: str | None = None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; NodeRpcError for an error reply, NodeError for anything else wrong."""
        reply = await self._post(method, request("1.0", self._ids.take(), method, params))
        if not isinstance(reply, dict):
            raise NodeError(self.chain, method, "reply is not a JSON-RPC object")
        return self._result(reply, method, ())

    async def batch(
        self, calls: Sequence[tuple[str, Sequence[Any]]], *, absent: Collection[int] = ()
    ) -> list[Any]:
        """Several calls in one HTTP request, results in order.

        An item that failed with an error code in ``absent`` yields None (for example
        ``RPC_INVALID_PARAMETER`` for a height past the tip); any other error raises.
        """
        if not calls:
            return []
        first = self._ids.take(len(calls))
        replies = await self._post(calls[0][0], batch_request("1.0", first, calls))
        return [
            self._result(reply, method, absent)
            for reply, (method, _) in zip(
                batch_replies(self.chain, first, calls, replies), calls, strict=True
            )
        ]

    def _result(self, reply: dict[str, Any], method: str, absent: Collection[int]) -> Any:
        error = reply.get("error")
        if error is not None:
            exc = self._rpc_error(method, error, 200)
            if exc.code is not None and exc.code in absent:
                return None
            raise exc
        if "result" not in reply:
            raise NodeError(self.chain, method, "reply has neither result nor error")
        return reply["result"]

    def _rpc_error(self, method: str, error: Any, status: int) -> NodeRpcError:
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message", ""))
            return NodeRpcError(
                self.chain, method, code if isinstance(code, int) else None, message, status
            )
        return NodeRpcError(self.chain, method, None, str(error), status)

    async def _post(self, method: str, payload: object) -> Any:
        body = encode_json(payload)
        for attempt in range(2):
            headers = {"Content-Type": "application/json", "Authorization": self._authorization()}
            try:
                async with self._session.post(
                    self._url, data=body, headers=headers, timeout=self._timeout
                ) as response:
                    status, raw = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise NodeError(self.chain, method, f"{type(exc).__name__}: {exc}") from exc
            if status == 401 and attempt == 0 and isinstance(self._auth, CookieAuth):
                self._header = None  # the node may have restarted with a new cookie
                continue
            break
        if status == 401:
            raise NodeError(
                self.chain, method, "HTTP 401 Unauthorized: check the RPC user/password or cookie"
            )
        try:
            reply = decode_reply(raw)
        except ValueError:
            reply = None
        if status != 200:
            if isinstance(reply, dict) and reply.get("error") is not None:
                raise self._rpc_error(method, reply["error"], status)
            raise NodeError(self.chain, method, f"HTTP {status}")
        if reply is None:
            raise NodeError(self.chain, method, "reply is not JSON")
        return reply

    def _authorization(self) -> str:
        if self._header is None:
            if isinstance(self._auth, PasswordAuth):
                user, password = self._auth.user, self._auth.password
            else:
                user, password = _read_cookie(self.chain, self._auth.path)
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._header = f"Basic {token}"
        return self._header


def encode_json(payload: object) -> bytes:
    """JSON with ``Decimal`` values written exactly as they are (params, or ``BtcTx.raw``)."""
    return orjson.dumps(payload, default=_exact_decimal)


def _exact_decimal(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value).encode("ascii"))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def decode_reply(raw: bytes | str) -> Any:
    """Parse a node's JSON reply with every non-integer number as an exact ``Decimal``."""
    return json.loads(raw, parse_float=Decimal)


def _read_cookie(chain: str, path: Path) -> tuple[str, str]:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NodeError(chain, "auth", f"cannot read cookie file {path}: {exc.strerror}") from exc
    user, sep, password = text.partition(":")
    if not sep:
        raise NodeError(chain, "auth", f"cookie file {path} is not user:password")
    return user, password
