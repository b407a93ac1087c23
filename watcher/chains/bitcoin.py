"""Bitcoin-family JSON-RPC adapter: node JSON in, ``BtcBlock`` and ``BtcTxStatus`` out.

One client serves Bitcoin Core and the coins built on its code (Litecoin, Dash, Bitcoin
Cash, Bitcoin SV, ...) as well as bcoin. The dialect is detected, not configured:
:meth:`BitcoinClient.detect` asks for the tip block with ``getblock <hash> 2`` (Core) and, if
that is refused, ``getblock <hash> true true`` (bcoin). What differs between them is kept in
one :class:`BitcoinNode` value:

- full blocks: Core verbosity 3 (with each input's ``prevout``) from Bitcoin Core 23, else
  verbosity 2; bcoin ``getblock <hash> true true``, which has no prevouts. Bitcoin SV's
  verbosity 3 means "coinbase only", so verbosity 3 is only used on Bitcoin Core itself;
- ``getrawtransaction`` verbosity 2 (with prevouts) from Bitcoin Core 25, else ``true``;
- "not found": Core's error code -5, bcoin's -1.

Inputs without a prevout are resolved by :meth:`BitcoinClient.resolve_inputs`, which looks
the spent transactions up with ``getrawtransaction`` (the node needs ``-txindex``, bcoin
``--index-tx``, for transactions that are no longer in the mempool).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.btc_addresses import Network
from watcher.chains.bitcoin_parse import parse_block, parse_tx_status
from watcher.chains.bitcoin_rpc import RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, BitcoinRpc
from watcher.errors import NodeError, NodeRpcError
from watcher.models import BlockRef, BtcBlock, BtcTx, BtcTxIn, BtcTxOut, BtcTxStatus, Outpoint

# Calls per HTTP request when looking many transactions up.
LOOKUP_BATCH_SIZE = 200
RPC_MISC_ERROR = -1  # bcoin's code for "Transaction not found."
_CORE_SUBVERSION = re.compile(r"^/Satoshi:(\d+)\.(\d+)")
_NETWORKS = {
    "main": Network.MAINNET,
    "test": Network.TESTNET,
    "testnet4": Network.TESTNET,
    "signet": Network.TESTNET,
    "regtest": Network.REGTEST,
}


class BitcoinDialect(enum.StrEnum):
    """The two RPC dialects: Bitcoin Core and its forks, and bcoin."""

    CORE = "core"
    BCOIN = "bcoin"


@dataclass(frozen=True, slots=True)
class BitcoinNode:
    """What the adapter learnt about a node at :meth:`BitcoinClient.detect`."""

    dialect: BitcoinDialect
    subversion: str
    chain: str
    genesis_hash: str
    block_params: tuple[Any, ...]
    tx_params: tuple[Any, ...]
    not_found_code: int

    @property
    def network(self) -> Network:
        """Mainnet, testnet (incl. signet, testnet4) or regtest; ValueError for others."""
        try:
            return _NETWORKS[self.chain]
        except KeyError:
            raise ValueError(f"unsupported chain {self.chain!r}") from None

    @property
    def prevouts_in_blocks(self) -> bool:
        """Whether full blocks carry each input's spent output (address and value)."""
        return self.block_params == (3,)


def core_version(subversion: str) -> tuple[int, int] | None:
    """(major, minor) of a Bitcoin Core user agent such as ``/Satoshi:27.0.0/``; else None."""
    found = _CORE_SUBVERSION.match(subversion)
    return (int(found[1]), int(found[2])) if found else None


def describe_node(
    dialect: BitcoinDialect, subversion: str, chain: str, genesis_hash: str
) -> BitcoinNode:
    """The call parameters for a node of ``dialect`` whose user agent is ``subversion``."""
    if dialect is BitcoinDialect.BCOIN:
        return BitcoinNode(
            dialect, subversion, chain, genesis_hash, (True, True), (True,), RPC_MISC_ERROR
        )
    version = core_version(subversion)
    block_params = (3,) if version is not None and version >= (23, 0) else (2,)
    tx_params: tuple[Any, ...] = (2,) if version is not None and version >= (25, 0) else (True,)
    return BitcoinNode(
        dialect,
        subversion,
        chain,
        genesis_hash,
        block_params,
        tx_params,
        RPC_INVALID_ADDRESS_OR_KEY,
    )


class BitcoinClient:
    """The JSON-RPC calls the follower needs from a Bitcoin-family node."""

    def __init__(self, rpc: BitcoinRpc) -> None:
        self.rpc = rpc
        self.chain = rpc.chain
        self._node: BitcoinNode | None = None

    @property
    def node(self) -> BitcoinNode:
        """The detected node; :meth:`detect` must have run."""
        if self._node is None:
            raise RuntimeError("BitcoinClient.detect() has not run")
        return self._node

    async def detect(self) -> BitcoinNode:
        """Identify the node's dialect, chain and genesis block; cached after the first call."""
        if self._node is not None:
            return self._node
        chain_info, network_info, genesis = await self.rpc.batch(
            [("getblockchaininfo", []), ("getnetworkinfo", []), ("getblockhash", [0])]
        )
        try:
            chain = str(chain_info["chain"])
            tip = str(chain_info["bestblockhash"])
            subversion = str(network_info["subversion"])
        except (KeyError, TypeError) as exc:
            raise NodeError(self.chain, "getblockchaininfo", f"unexpected reply: {exc!r}") from exc
        dialect = await self._probe_dialect(tip)
        self._node = describe_node(dialect, subversion, chain, str(genesis).lower())
        return self._node

    async def _probe_dialect(self, tip: str) -> BitcoinDialect:
        for dialect, params in (
            (BitcoinDialect.CORE, [tip, 2]),
            (BitcoinDialect.BCOIN, [tip, True, True]),
        ):
            try:
                block = await self.rpc.call("getblock", params)
            except NodeRpcError:
                continue
            txs = block.get("tx") if isinstance(block, dict) else None
            if isinstance(txs, list) and txs and isinstance(txs[0], dict):
                return dialect
        raise NodeError(
            self.chain,
            "getblock",
            "node returns full transactions neither for `getblock <hash> 2` (Bitcoin Core) "
            "nor for `getblock <hash> true true` (bcoin): unsupported node",
        )

    async def head(self) -> BlockRef:
        """Height and hash of the node's tip, read together."""
        info = await self.rpc.call("getblockchaininfo")
        try:
            return BlockRef(int(info["blocks"]), str(info["bestblockhash"]).lower())
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(self.chain, "getblockchaininfo", f"unexpected reply: {exc!r}") from exc

    async def block_number(self) -> int:
        """The height of the node's tip."""
        height = await self.rpc.call("getblockcount")
        if not isinstance(height, int) or isinstance(height, bool):
            raise NodeError(self.chain, "getblockcount", f"expected an integer, got {height!r}")
        return height

    async def block_hash(self, number: int) -> str | None:
        """The hash of the block at ``number`` on the node's best chain; None past the tip."""
        (found,) = await self.rpc.batch(
            [("getblockhash", [number])], absent=(RPC_INVALID_PARAMETER,)
        )
        return str(found).lower() if found is not None else None

    async def block(self, block_hash: str) -> BtcBlock:
        """The block with ``block_hash``, with full transactions (and prevouts where possible)."""
        node = await self.detect()
        raw = await self.rpc.call("getblock", [block_hash, *node.block_params])
        return parse_block(raw, self.chain)

    async def blocks(self, numbers: Sequence[int]) -> list[BtcBlock | None]:
        """Blocks at ``numbers`` in two batched requests; None from the first one past the tip."""
        node = await self.detect()
        hashes = await self.rpc.batch(
            [("getblockhash", [n]) for n in numbers], absent=(RPC_INVALID_PARAMETER,)
        )
        known = [(n, str(h)) for n, h in zip(numbers, hashes, strict=True) if h is not None]
        raws = await self.rpc.batch([("getblock", [h, *node.block_params]) for _, h in known])
        by_number: dict[int, BtcBlock] = {}
        for (number, _), raw in zip(known, raws, strict=True):
            block = parse_block(raw, self.chain)
            if block.number != number:
                raise NodeError(self.chain, "getblock", f"asked for {number}, got {block.number}")
            by_number[number] = block
        out: list[BtcBlock | None] = []
        for number in numbers:
            found = by_number.get(number)
            if found is None:
                break
            out.append(found)
        return out + [None] * (len(numbers) - len(out))

    async def mempool_txids(self) -> list[str]:
        """The txids in the node's mempool (``getrawmempool``)."""
        txids = await self.rpc.call("getrawmempool")
        if not isinstance(txids, list):
            raise NodeError(self.chain, "getrawmempool", "expected a list of txids")
        return [str(t).lower() for t in txids]

    async def transaction(self, txid: str) -> BtcTxStatus | None:
        """The transaction ``txid`` and where it is; None if the node does not know it."""
        (status,) = await self.transactions([txid])
        return status

    async def transactions(self, txids: Sequence[str]) -> list[BtcTxStatus | None]:
        """Batched :meth:`transaction`, results in the order of ``txids``."""
        node = await self.detect()
        out: list[BtcTxStatus | None] = []
        for start in range(0, len(txids), LOOKUP_BATCH_SIZE):
            chunk = txids[start : start + LOOKUP_BATCH_SIZE]
            raws = await self.rpc.batch(
                [("getrawtransaction", [t, *node.tx_params]) for t in chunk],
                absent=(node.not_found_code,),
            )
            out.extend(None if r is None else parse_tx_status(r, self.chain) for r in raws)
        return out

    async def resolve_inputs(
        self, txs: Iterable[BtcTx], known: Mapping[Outpoint, BtcTxOut] | None = None
    ) -> list[BtcTx]:
        """``txs`` with each input's address and value filled in where the node lacked them.

        Outputs in ``known`` (the watched outputs the daemon has already seen) are used as
        they are; the remaining spent transactions are fetched with ``getrawtransaction``.
        An input whose transaction the node cannot find stays unresolved (None).
        """
        txs = list(txs)
        known = known or {}
        wanted = {
            i.prev_txid
            for tx in txs
            for i in tx.inputs
            if i.value_sat is None and i.outpoint not in known
        }
        fetched: dict[str, BtcTx] = {}
        if wanted:
            ordered = sorted(wanted)
            for txid, status in zip(ordered, await self.transactions(ordered), strict=True):
                if status is not None:
                    fetched[txid] = status.tx
        return [_with_prevouts(tx, known, fetched) for tx in txs]


def _with_prevouts(
    tx: BtcTx, known: Mapping[Outpoint, BtcTxOut], fetched: Mapping[str, BtcTx]
) -> BtcTx:
    if all(i.value_sat is not None for i in tx.inputs):
        return tx
    inputs: list[BtcTxIn] = []
    for txin in tx.inputs:
        spent = known.get(txin.outpoint) if txin.value_sat is None else None
        if spent is None and txin.value_sat is None:
            parent = fetched.get(txin.prev_txid)
            if parent is not None:
                spent = next((o for o in parent.outputs if o.n == txin.prev_vout), None)
        if spent is not None:
            txin = dataclasses.replace(txin, address=spent.address, value_sat=spent.value_sat)
        inputs.append(txin)
    return dataclasses.replace(tx, inputs=tuple(inputs))
