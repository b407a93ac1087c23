"""An Ethereum node as a :class:`~watcher.protocols.ChainSource` of the follower.

A thin layer over :class:`~watcher.chains.ethereum.EthereumClient` and its mempool reader:
the chain's identity is its EIP-155 chain id; token transfer logs are fetched with the
blocks only when a subscription can want them; blocks tell everything, so there is nothing
extra to look up.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from collections.abc import Set as AbstractSet

from watcher.chains.ethereum import EthereumClient, EthereumMempool
from watcher.mempool import TxStatus
from watcher.models import Block, BlockRef, Subscription, Tx
from watcher.protocols import PoolSnapshot


class EthereumSource:
    """The follower's view of one Ethereum JSON-RPC node."""

    identity_name = "chain id"

    def __init__(
        self, client: EthereumClient, *, transfers: bool = False, watch_mempool: bool = True
    ) -> None:
        self._client = client
        self._transfers = transfers
        self._mempool = EthereumMempool(client) if watch_mempool else None

    @property
    def chain(self) -> str:
        """The configured chain name."""
        return self._client.chain

    async def identity(self) -> str:
        """The node's EIP-155 chain id, as a decimal string."""
        return str(await self._client.chain_id())

    async def head(self) -> BlockRef:
        """Number and hash of the node's head block."""
        return await self._client.head()

    async def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block at ``number``, or None."""
        return await self._client.block_hash(number)

    async def block_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Hashes of the canonical blocks at ``numbers``."""
        return await self._client.block_hashes(numbers)

    def set_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Fetch token transfer logs exactly when one of ``subscriptions`` may want them."""
        self._transfers = any(s.wants_transfers for s in subscriptions)

    async def blocks(
        self, numbers: Sequence[int], relevant: AbstractSet[str] | None = None
    ) -> list[Block | None]:
        """Full blocks, with their token transfers when a subscription may want them.

        Only the transactions from or to one of ``relevant`` (when given) are normalised.
        """
        return await self._client.blocks(numbers, transfers=self._transfers, relevant=relevant)

    async def lookup(self, keys: Collection[str]) -> Mapping[str, object]:
        """Nothing to look up on Ethereum."""
        return {}

    async def pool_snapshot(self, skip: Container[str]) -> PoolSnapshot[Tx] | None:
        """The whole pool (``txpool_content``) or its newcomers (a pending filter).

        ``skip`` is not used: either way the node sends what it sends.
        """
        if self._mempool is None:
            return None
        return await self._mempool.snapshot()

    async def statuses(self, hashes: Sequence[str]) -> dict[str, TxStatus]:
        """Pending, mined or unknown, for each hash."""
        found = await self._client.transactions(hashes)
        return {h: status for h, (_, status) in found.items()}
