"""A Bitcoin-family node as a :class:`~watcher.protocols.ChainSource` of the follower.

A thin layer over :class:`~watcher.chains.bitcoin.BitcoinClient`:

- the chain's identity is its genesis block hash, and the node's network (mainnet, testnet,
  regtest) must be one the configuration allows;
- a look at the mempool lists it with ``getrawmempool`` and fetches only the transactions the
  tracker has not looked at yet (``getrawtransaction``, batched);
- the facts a tracker asks for are the outputs of given transactions, which tell whose
  output an input spends when the node's blocks do not (bcoin, Core before 23, its forks).
  Recently looked-up transactions are cached: the inputs of one block often share parents,
  and a transaction seen pending is spent in the next blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Container, Mapping, Sequence
from collections.abc import Set as AbstractSet

from watcher.btc_addresses import Network
from watcher.chains.bitcoin import BitcoinClient
from watcher.errors import ChainMismatchError
from watcher.mempool import TxStatus
from watcher.models import BlockRef, BtcBlock, BtcTx, BtcTxOut, Subscription
from watcher.protocols import PoolSnapshot

# Looked-up transactions whose outputs are kept, most recently used first out last.
OUTPUT_CACHE_SIZE = 20_000


class BitcoinSource:
    """The follower's view of one Bitcoin-family JSON-RPC node.

    ``networks`` are the networks the configuration allows (empty: any).
    """

    identity_name = "genesis block"

    def __init__(
        self,
        client: BitcoinClient,
        *,
        networks: Collection[Network] = (),
        watch_mempool: bool = True,
        cache_size: int = OUTPUT_CACHE_SIZE,
    ) -> None:
        self._client = client
        self._networks = frozenset(networks)
        self._watch_mempool = watch_mempool
        self._cache: OrderedDict[str, tuple[BtcTxOut, ...]] = OrderedDict()
        self._cache_size = cache_size

    @property
    def chain(self) -> str:
        """The configured chain name."""
        return self._client.chain

    async def identity(self) -> str:
        """The genesis block hash, once the node's network is found to be an allowed one."""
        node = await self._client.detect()
        try:
            network = node.network
        except ValueError:
            network = None
        if self._networks and network not in self._networks:
            allowed = " or ".join(sorted(self._networks))
            raise ChainMismatchError(self.chain, "network", allowed, node.chain, "configured")
        return node.genesis_hash

    async def head(self) -> BlockRef:
        """Height and hash of the node's tip."""
        return await self._client.head()

    async def block_hash(self, number: int) -> str | None:
        """The hash of the best-chain block at ``number``, or None past the tip."""
        return await self._client.block_hash(number)

    async def block_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Hashes of the best-chain blocks at ``numbers``."""
        return await self._client.block_hashes(numbers)

    async def blocks(
        self, numbers: Sequence[int], relevant: AbstractSet[str] | None = None
    ) -> list[BtcBlock | None]:
        """Full blocks at ``numbers``, with prevouts where the node gives them.

        Every transaction is kept (``relevant`` is not used): whether an input spends a
        watched output is only known once its prevout is.
        """
        return await self._client.blocks(numbers)

    async def lookup(self, keys: Collection[str]) -> Mapping[str, Sequence[BtcTxOut]]:
        """The outputs of the transactions ``keys`` (txids); those the node lacks left out."""
        found: dict[str, Sequence[BtcTxOut]] = {}
        wanted: list[str] = []
        for txid in keys:
            cached = self._cache.get(txid)
            if cached is None:
                wanted.append(txid)
            else:
                self._cache.move_to_end(txid)
                found[txid] = cached
        if wanted:
            for txid, status in zip(wanted, await self._client.transactions(wanted), strict=True):
                if status is not None:
                    found[txid] = self._remember(status.tx)
        return found

    def _remember(self, tx: BtcTx) -> tuple[BtcTxOut, ...]:
        self._cache[tx.txid] = tx.outputs
        self._cache.move_to_end(tx.txid)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return tx.outputs

    async def pool_snapshot(self, skip: Container[str]) -> PoolSnapshot[BtcTx] | None:
        """Every txid in the mempool, and the transactions not in ``skip``."""
        if not self._watch_mempool:
            return None
        txids = await self._client.mempool_txids()
        new = [t for t in txids if t not in skip]
        txs: list[BtcTx] = []
        if new:
            for status in await self._client.transactions(new):
                # A transaction mined meanwhile is reported with its block.
                if status is not None and status.block_hash is None:
                    txs.append(status.tx)
                    self._remember(status.tx)
        return PoolSnapshot(frozenset(txids), txs)

    def set_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Nothing to change: what a Bitcoin node is asked does not depend on subscriptions."""

    async def statuses(self, hashes: Sequence[str]) -> dict[str, TxStatus]:
        """Pending, mined or unknown, for each txid."""
        found = await self._client.transactions(hashes)
        return {
            txid: TxStatus.UNKNOWN
            if status is None
            else TxStatus.MINED
            if status.block_hash is not None
            else TxStatus.PENDING
            for txid, status in zip(hashes, found, strict=True)
        }
