"""How each kind of chain is put together: its node source, its tracker, and their follower.

This is the one place that knows the chain kinds. Adding a kind means a source in
``watcher/chains/``, a tracker, its configuration model, and a branch here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from watcher.chains.ethereum import EthereumClient
from watcher.chains.ethereum_source import EthereumSource
from watcher.config import ChainConfig
from watcher.follower import ChainFollower
from watcher.models import Subscription
from watcher.store import Store, TrackerState
from watcher.tracker import EthereumTracker

AnyFollower = ChainFollower[Any, Any, Any]


def build_follower(
    chain: ChainConfig,
    subscriptions: Sequence[Subscription],
    store: Store,
    session: aiohttp.ClientSession,
    on_deliveries: Callable[[], None],
) -> AnyFollower:
    """The follower of ``chain``, reading its node over ``session``."""
    subs = tuple(s for s in subscriptions if s.chain == chain.name)
    client = EthereumClient(chain.name, chain.rpc_url, session, chain.request_timeout_s)
    source = EthereumSource(
        client,
        transfers=any(s.wants_transfers for s in subs),
        watch_mempool=chain.mempool != "off",
    )

    def make_tracker(state: TrackerState) -> EthereumTracker:
        return EthereumTracker(
            chain.name,
            subs,
            recent_blocks=state.recent_blocks,
            activities=state.activities,
            pending=state.pending,
            dropped_grace_s=chain.dropped_after_s,
        )

    return ChainFollower(
        source=source,
        make_tracker=make_tracker,
        store=store,
        start=chain.start,
        expected_identity=str(chain.chain_id) if chain.chain_id is not None else None,
        batch_size=chain.batch_size,
        poll_interval_s=chain.poll_interval_s,
        max_reorg_depth=chain.max_reorg_depth,
        on_deliveries=on_deliveries,
    )
