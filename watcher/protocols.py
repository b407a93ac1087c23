"""The two seams of a chain: what the follower needs from its node and from its tracker.

One :class:`~watcher.follower.ChainFollower` loop drives every chain. What differs between
chains sits behind two protocols:

- :class:`ChainSource`, the node side (I/O, in ``watcher/chains/``): the head, block hashes,
  full blocks, a look at the mempool, what became of given transactions, and extra facts a
  tracker asks for (Bitcoin: the outputs that inputs spend, when blocks do not say);
- :class:`Tracker`, the lifecycle side (pure): blocks and pool snapshots in, events and state
  changes out, plus the reorg walk-back.

A new chain is a source and a tracker; the loop, the store and delivery stay as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from watcher.events import BlockHeader
from watcher.mempool import TxStatus
from watcher.models import BlockOutcome, BlockRef, PoolOutcome, RewindOutcome, Subscription

TxT_co = TypeVar("TxT_co", covariant=True)
BlockT_co = TypeVar("BlockT_co", covariant=True)
FactT_co = TypeVar("FactT_co", covariant=True)
TxT_contra = TypeVar("TxT_contra", contravariant=True)
BlockT_contra = TypeVar("BlockT_contra", contravariant=True)
FactT_contra = TypeVar("FactT_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class PoolSnapshot(Generic[TxT_co]):
    """What one look at the node's mempool found.

    ``present`` is every hash in the pool, or None when the node only tells what is new (an
    Ethereum pending-transaction filter); ``txs`` are the transactions to look at: the whole
    pool, or only those not looked at before.
    """

    present: AbstractSet[str] | None
    txs: Sequence[TxT_co]


# What the follower reads of any chain's block (number, hashes, the transaction count for its
# metrics) is what a ``block.mined`` event says of it: one protocol serves both.
ChainBlock = BlockHeader


class ChainSource(Protocol[BlockT_co, TxT_co, FactT_co]):
    """A node of one chain, as the follower uses it. Raises NodeError when it fails."""

    @property
    def chain(self) -> str:
        """The configured chain name (for logs and errors)."""
        ...

    @property
    def identity_name(self) -> str:
        """What :meth:`identity` is, for messages: ``chain id``, ``genesis block``."""
        ...

    async def identity(self) -> str:
        """What identifies the chain the node serves (a chain id, a genesis block hash)."""
        ...

    async def head(self) -> BlockRef:
        """Height and hash of the node's best block."""
        ...

    async def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block at ``number``; None past the tip."""
        ...

    async def block_hashes(self, numbers: Sequence[int]) -> dict[int, str]:
        """Hashes of the canonical blocks at ``numbers`` (heights the node lacks left out)."""
        ...

    async def blocks(
        self, numbers: Sequence[int], relevant: AbstractSet[str] | None = None
    ) -> Sequence[BlockT_co | None]:
        """Full blocks at consecutive ``numbers``; None from the first one past the tip.

        A source may leave out of each block the transactions that touch none of the
        ``relevant`` addresses (:meth:`Tracker.relevant_addresses`), sparing the work of
        normalising them; None keeps every transaction.
        """
        ...

    async def lookup(self, keys: Collection[str]) -> Mapping[str, FactT_co]:
        """The facts a tracker asked for (:meth:`Tracker.facts_needed`); unknown keys left out."""
        ...

    async def pool_snapshot(self, skip: Container[str]) -> PoolSnapshot[TxT_co] | None:
        """A look at the mempool; transactions in ``skip`` need not be fetched again.

        None when the node offers no way to see its mempool.
        """
        ...

    async def statuses(self, hashes: Sequence[str]) -> dict[str, TxStatus]:
        """Whether each transaction is pending, mined or unknown to the node."""
        ...

    def set_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Fetch what ``subscriptions`` need from now on (e.g. token transfer logs)."""
        ...


class PoolView(Protocol):
    """The mempool side of a tracker, as the follower sees it."""

    @property
    def wanted(self) -> bool:
        """Whether any subscription wants mempool events."""
        ...

    def tracked(self) -> list[str]:
        """Hashes of the watched transactions believed to be pending."""
        ...

    def examined(self) -> Container[str]:
        """Hashes of pool transactions already looked at."""
        ...


class Tracker(Protocol[BlockT_contra, TxT_contra, FactT_contra]):
    """The pure lifecycle state machine of one chain."""

    @property
    def pool(self) -> PoolView:
        """The mempool side."""
        ...

    @property
    def watched_addresses(self) -> int:
        """How many distinct addresses the chain's subscriptions watch."""
        ...

    @property
    def awaiting_confirmation(self) -> int:
        """How many mined activities still wait for their confirmation depth."""
        ...

    def recent_blocks(self) -> list[BlockRef]:
        """The remembered canonical blocks, oldest first."""
        ...

    def relevant_addresses(self) -> AbstractSet[str] | None:
        """The addresses a block's transaction must touch to matter now; None: all matter."""
        ...

    def facts_needed(self, blocks: Iterable[BlockT_contra]) -> Collection[str]:
        """Keys of the node facts needed before ``blocks`` can be processed (often none)."""
        ...

    def process(self, block: BlockT_contra, facts: Mapping[str, FactT_contra]) -> BlockOutcome:
        """The events ``block`` produces, given that it extends the last processed block."""
        ...

    def find_ancestor(self, node_hashes: Mapping[int, str]) -> BlockRef | None:
        """The newest remembered block the node still has at the same height, if any."""
        ...

    def rewind(self, ancestor: BlockRef) -> RewindOutcome:
        """Forget every block above ``ancestor``, reporting ``tx.reorged``."""
        ...

    def pool_facts_needed(self, snapshot: PoolSnapshot[TxT_contra]) -> Collection[str]:
        """Keys of the node facts needed before ``snapshot`` can be observed (often none)."""
        ...

    def observe_pool(
        self,
        snapshot: PoolSnapshot[TxT_contra],
        statuses: Mapping[str, TxStatus],
        facts: Mapping[str, FactT_contra],
    ) -> PoolOutcome:
        """Events and state changes from a look at the pool and the tracked statuses."""
        ...

    def replace_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Match against ``subscriptions`` from now on, keeping the lifecycle state."""
        ...
