"""Ethereum (and EVM) JSON-RPC adapter: raw node JSON in, ``Block`` and ``Tx`` out.

Blocks are fetched with batched ``eth_getBlockByNumber`` calls over a shared aiohttp session
and parsed with orjson: the formatting layer of a general-purpose client costs about ten times
the network round trip on the catch-up path, and the daemon needs only a few fields. Nothing
outside this module sees a raw dict or a hex quantity, except ``Tx.raw``, which is passed on
to subscribers unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any, Literal

import aiohttp
import orjson
import structlog
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from watcher.chains.jsonrpc import RequestIds, batch_replies, batch_request, request
from watcher.errors import NodeError
from watcher.mempool import TxStatus
from watcher.models import Block, BlockRef, Kind, TokenTransfer, Tx
from watcher.protocols import PoolSnapshot

log = structlog.get_logger()

# keccak("Transfer(address,address,uint256)"): ERC-20 (3 topics) and ERC-721 (4 topics).
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_NOT_SUPPORTED_CODES = (-32601, -32600)


class EthereumClient:
    """JSON-RPC calls the daemon needs from an Ethereum node."""

    def __init__(
        self, chain: str, rpc_url: str, session: aiohttp.ClientSession, timeout_s: float = 30.0
    ) -> None:
        self.chain = chain
        self._url = rpc_url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ids = RequestIds()

    async def chain_id(self) -> int:
        """The node's EIP-155 chain id."""
        return self._quantity(await self.call("eth_chainId", []), "eth_chainId")

    async def block_number(self) -> int:
        """The height of the node's head block."""
        return self._quantity(await self.call("eth_blockNumber", []), "eth_blockNumber")

    async def head(self) -> BlockRef:
        """Number and hash of the node's head block (one call, so they belong together)."""
        raw = await self.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(raw, dict):
            raise NodeError(self.chain, "eth_getBlockByNumber", "no latest block")
        number, block_hash = raw.get("number"), raw.get("hash")
        if not isinstance(block_hash, str):
            raise NodeError(self.chain, "eth_getBlockByNumber", "latest block without a hash")
        return BlockRef(self._quantity(number, "eth_getBlockByNumber"), block_hash.lower())

    async def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block at ``number``, or None if the node has none."""
        raw = await self.call("eth_getBlockByNumber", [hex(number), False])
        if raw is None:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str):
            raise NodeError(self.chain, "eth_getBlockByNumber", "block without a hash")
        return str(raw["hash"]).lower()

    async def block_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Hashes of the canonical blocks at ``numbers`` (heights the node lacks are left out)."""
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        hashes: dict[int, str] = {}
        for number, raw in zip(numbers, await self.batch(calls), strict=True):
            if isinstance(raw, dict) and isinstance(raw.get("hash"), str):
                hashes[number] = str(raw["hash"]).lower()
        return hashes

    async def blocks(
        self,
        numbers: Sequence[int],
        *,
        transfers: bool = False,
        relevant: AbstractSet[str] | None = None,
    ) -> list[Block | None]:
        """Full blocks at consecutive ``numbers`` in one batch; None where the node has none.

        With ``transfers``, the same batch asks ``eth_getLogs`` for every ``Transfer`` log in
        the range and attaches the decoded transfers to their blocks; a log whose block hash
        is not the hash of the block returned (the chain moved between the two answers)
        makes the whole batch fail, to be fetched again.
        """
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getBlockByNumber", [hex(n), True]) for n in numbers
        ]
        if transfers and numbers:
            log_filter = {
                "fromBlock": hex(numbers[0]),
                "toBlock": hex(numbers[-1]),
                "topics": [TRANSFER_TOPIC],
            }
            calls.append(("eth_getLogs", [log_filter]))
        results = await self.batch(calls)
        by_block: dict[str, list[TokenTransfer]] = {}
        if transfers and numbers:
            for log in _as_list(results.pop(), self.chain):
                decoded = parse_transfer(log, self.chain)
                if decoded is not None:
                    by_block.setdefault(str(log["blockHash"]).lower(), []).append(decoded)
        blocks: list[Block | None] = []
        for number, raw in zip(numbers, results, strict=True):
            if raw is None:
                blocks.append(None)
                continue
            block = parse_block(raw, self.chain, relevant)
            if block.number != number:
                raise NodeError(
                    self.chain, "eth_getBlockByNumber", f"asked for {number}, got {block.number}"
                )
            found = by_block.pop(block.hash, None)
            if found:
                block = replace(block, transfers=tuple(sorted(found, key=lambda t: t.log_index)))
            blocks.append(block)
        if by_block:
            raise NodeError(self.chain, "eth_getLogs", "logs of blocks not in the batch (reorg?)")
        return blocks

    async def txpool(self) -> list[Tx] | None:
        """Every transaction in the node's pool (``txpool_content``); None if unsupported."""
        try:
            content = await self.call("txpool_content", [])
        except NodeError as exc:
            if _unsupported(exc):
                return None
            raise
        if not isinstance(content, dict):
            raise NodeError(self.chain, "txpool_content", "reply is not an object")
        txs: list[Tx] = []
        for section in ("pending", "queued"):
            by_sender = content.get(section) or {}
            if not isinstance(by_sender, dict):
                raise NodeError(self.chain, "txpool_content", f"{section} is not an object")
            for by_nonce in by_sender.values():
                if not isinstance(by_nonce, dict):
                    raise NodeError(self.chain, "txpool_content", "malformed sender entry")
                txs.extend(_parse_pool_tx(raw, self.chain) for raw in by_nonce.values())
        return txs

    async def new_pending_filter(self) -> str | None:
        """Install a pending-transaction filter; None if the node has none."""
        try:
            filter_id = await self.call("eth_newPendingTransactionFilter", [])
        except NodeError as exc:
            if _unsupported(exc):
                return None
            raise
        return str(filter_id)

    async def pending_since(self, filter_id: str) -> list[Tx]:
        """Transactions that entered the pool since the filter was last read."""
        hashes = _as_list(await self.call("eth_getFilterChanges", [filter_id]), self.chain)
        found = await self.transactions([str(h) for h in hashes])
        return [tx for tx, _ in found.values() if tx is not None]

    async def transactions(self, hashes: Sequence[str]) -> dict[str, tuple[Tx | None, TxStatus]]:
        """What the node knows of each hash: the transaction and whether it is mined."""
        calls = [("eth_getTransactionByHash", [h]) for h in hashes]
        out: dict[str, tuple[Tx | None, TxStatus]] = {}
        for tx_hash, raw in zip(hashes, await self.batch(calls), strict=True):
            if raw is None:
                out[tx_hash] = (None, TxStatus.UNKNOWN)
                continue
            tx = _parse_pool_tx(raw, self.chain)
            mined = raw.get("blockNumber") is not None
            out[tx_hash] = (tx, TxStatus.MINED if mined else TxStatus.PENDING)
        return out

    async def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; raises NodeError for transport, HTTP and RPC errors."""
        reply = await self._post(method, request("2.0", self._ids.take(), method, params))
        if not isinstance(reply, dict):
            raise NodeError(self.chain, method, "reply is not a JSON-RPC object")
        return _result(reply, self.chain, method)

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several JSON-RPC calls in one HTTP request, results in the order of ``calls``."""
        if not calls:
            return []
        first = self._ids.take(len(calls))
        replies = await self._post(calls[0][0], batch_request("2.0", first, calls))
        return [
            _result(reply, self.chain, method)
            for reply, (method, _) in zip(
                batch_replies(self.chain, first, calls, replies), calls, strict=True
            )
        ]

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


def _unsupported(exc: NodeError) -> bool:
    return exc.code in _NOT_SUPPORTED_CODES or "not supported" in exc.reason.lower()


def _as_list(value: Any, chain: str) -> list[Any]:
    if not isinstance(value, list):
        raise NodeError(chain, "eth_getLogs", "expected a list")
    return value


def _parse_pool_tx(raw: Any, chain: str) -> Tx:
    try:
        return parse_tx(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NodeError(chain, "txpool", f"malformed transaction: {exc!r}") from exc


def _result(reply: Mapping[str, Any], chain: str, method: str) -> Any:
    error = reply.get("error")
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        raise NodeError(
            chain, method, f"RPC error: {message}", code=code if isinstance(code, int) else None
        )
    if "result" not in reply:
        raise NodeError(chain, method, "reply has neither result nor error")
    return reply["result"]


def parse_block(raw: Any, chain: str, relevant: AbstractSet[str] | None = None) -> Block:
    """Normalise a full ``eth_getBlockByNumber`` object; NodeError if it is malformed.

    With ``relevant``, only the transactions from or to one of those (lower-case) addresses
    are normalised and kept: a membership test is a fifth of the cost of :func:`parse_tx`,
    and while catching up nearly every transaction is someone else's.
    """
    try:
        txs = raw["transactions"]
        if relevant is None:
            kept = tuple(parse_tx(tx) for tx in txs)
        else:
            kept = tuple(
                parse_tx(tx)
                for tx in txs
                if tx["from"].lower() in relevant
                or ((to := tx["to"]) is not None and to.lower() in relevant)
            )
        return Block(
            number=_hex_quantity(raw["number"]),
            hash=raw["hash"].lower(),
            parent_hash=raw["parentHash"].lower(),
            timestamp=_hex_quantity(raw["timestamp"]),
            transactions=kept,
            left_out=len(txs) - len(kept),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NodeError(chain, "eth_getBlockByNumber", f"malformed block: {exc!r}") from exc


def parse_tx(raw: Any) -> Tx:
    """Normalise one transaction object of a full block.

    The hot loop of catching up: the quantity checks of :func:`_hex_quantity` are inlined.
    """
    value, nonce, to = raw["value"], raw["nonce"], raw["to"]
    if value[:2] != "0x" or nonce[:2] != "0x" or "_" in value or "_" in nonce:
        raise ValueError(f"value {value!r:.80} or nonce {nonce!r:.80} is not a hex quantity")
    # tuple.__new__ skips the named tuple's Python-level __new__: half the cost per transaction.
    return _new_tx(
        Tx,
        (
            raw["hash"].lower(),
            raw["from"].lower(),
            to.lower() if to is not None else None,
            int(value, 16),
            int(nonce, 16),
            raw,
        ),
    )


_new_tx = tuple.__new__


def _hex_quantity(value: Any) -> int:
    """Decode a JSON-RPC quantity such as ``"0x1a"``; ValueError for anything else.

    ``int(value, 16)`` alone would also take ``"1a"``, ``"0x_1a"`` or ``" 0x1a"``, and read a
    decimal ``"26"`` as 38. Cheap string checks only: :func:`parse_tx` repeats them inline for
    every transaction.
    """
    if isinstance(value, str) and value[:2] == "0x" and "_" not in value:
        return int(value, 16)  # ValueError for anything else that is not hex
    raise ValueError(f"expected a 0x-prefixed hex quantity, got {value!r:.80}")


def _topic_address(topic: str) -> str:
    """The address an indexed ``address`` topic holds: its last 20 bytes.

    Sliced rather than ABI-decoded (46 us a log through eth-abi, on every Transfer of every
    block); the checks are the decoder's: 32 bytes of hex, the first 12 of them zero.
    """
    if len(topic) != 66 or topic[:26] != "0x" + "0" * 24 or not topic[2:].isalnum():
        raise ValueError(f"not an indexed address topic: {topic!r:.80}")
    int(topic, 16)  # ValueError unless it is hex
    return "0x" + topic[26:].lower()


def _topic_uint(topic: str) -> int:
    (value,) = abi_decode(["uint256"], bytes.fromhex(topic[2:]))
    return int(value)


def parse_transfer(raw: Any, chain: str) -> TokenTransfer | None:
    """Decode a ``Transfer`` log: ERC-20 with 3 topics, ERC-721 with 4; None for others."""
    try:
        topics = raw["topics"]
        if not topics or str(topics[0]).lower() != TRANSFER_TOPIC:
            return None
        common = {
            "token": str(raw["address"]).lower(),
            "sender": _topic_address(topics[1]) if len(topics) > 1 else "",
            "recipient": _topic_address(topics[2]) if len(topics) > 2 else "",
            "tx_hash": str(raw["transactionHash"]).lower(),
            "log_index": _hex_quantity(raw["logIndex"]),
            "raw": raw,
        }
        if len(topics) == 3:
            data = bytes.fromhex(str(raw["data"])[2:])
            if len(data) != 32:
                return None
            (amount,) = abi_decode(["uint256"], data)
            return TokenTransfer(kind=Kind.ERC20, amount=int(amount), token_id=None, **common)
        if len(topics) == 4:
            token_id = _topic_uint(topics[3])
            return TokenTransfer(kind=Kind.ERC721, amount=None, token_id=token_id, **common)
        return None
    except (KeyError, TypeError, ValueError, IndexError, DecodingError) as exc:
        raise NodeError(chain, "eth_getLogs", f"malformed log: {exc!r}") from exc


class EthereumMempool:
    """Reads a node's mempool with ``txpool_content`` if it has it, else a pending filter.

    The method is chosen on first use and logged; a node with neither yields None snapshots,
    and the daemon goes on without mempool events.
    """

    def __init__(self, client: EthereumClient) -> None:
        self._client = client
        self.method: Literal["txpool", "filter", "none"] | None = None
        self._filter: str | None = None

    async def snapshot(self) -> PoolSnapshot[Tx] | None:
        """The pool now (or its newcomers); None when the node offers no way to see it."""
        if self.method in (None, "txpool"):
            txs = await self._client.txpool()
            if txs is not None:
                self._chosen("txpool")
                return PoolSnapshot(frozenset(tx.hash for tx in txs), txs)
            if self.method == "txpool":
                raise NodeError(self._client.chain, "txpool_content", "no longer answered")
        if self.method in (None, "filter"):
            if self._filter is None:
                self._filter = await self._client.new_pending_filter()
                if self._filter is None:
                    self._chosen("none")
                    return None
                self._chosen("filter")
                return PoolSnapshot(None, [])
            try:
                return PoolSnapshot(None, await self._client.pending_since(self._filter))
            except NodeError:
                self._filter = None  # nodes forget idle filters: install a new one next time
                raise
        return None

    def _chosen(self, method: Literal["txpool", "filter", "none"]) -> None:
        if self.method != method:
            self.method = method
            log.info("mempool_method", chain=self._client.chain, method=method)
