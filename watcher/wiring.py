"""How each kind of chain is put together: its node source, its tracker, and their follower.

This is the one place that knows the chain kinds. Adding a kind means a source in
``watcher/chains/``, a tracker, its configuration model, and a branch here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import aiohttp
import structlog

from watcher.btc_addresses import Network
from watcher.btc_matching import ACCELERATED
from watcher.btc_tracker import BitcoinTracker
from watcher.chain_config import BitcoinChainConfig, ChainConfig, EthereumChainConfig
from watcher.chains.bitcoin import BitcoinClient
from watcher.chains.bitcoin_rpc import BitcoinRpc, CookieAuth, PasswordAuth, RpcAuth
from watcher.chains.bitcoin_source import BitcoinSource
from watcher.chains.ethereum import EthereumClient
from watcher.chains.ethereum_source import EthereumSource
from watcher.follower import ChainFollower
from watcher.metrics import Metrics
from watcher.models import Subscription
from watcher.protocols import ChainBlock, ChainSource, Tracker
from watcher.store import Store, TrackerState
from watcher.tracker import EthereumTracker

AnyFollower = ChainFollower[Any, Any, Any]

log = structlog.get_logger()


def build_follower(
    chain: ChainConfig,
    subscriptions: Sequence[Subscription],
    store: Store,
    session: aiohttp.ClientSession,
    on_deliveries: Callable[[], None],
    *,
    networks: Collection[Network] = (),
    metrics: Metrics | None = None,
) -> AnyFollower:
    """The follower of ``chain``, reading its node over ``session``.

    ``networks`` are the networks a Bitcoin-family node may serve (empty: any).
    """
    subs = tuple(s for s in subscriptions if s.chain == chain.name)
    if isinstance(chain, BitcoinChainConfig):
        source, make_tracker, identity = _bitcoin(chain, session, networks)
    else:
        source, make_tracker, identity = _ethereum(chain, session)
    return ChainFollower(
        source=source,
        make_tracker=make_tracker,
        subscriptions=subs,
        store=store,
        start=chain.start,
        expected_identity=identity,
        batch_size=chain.batch_size,
        poll_interval_s=chain.poll_interval_s,
        max_reorg_depth=chain.max_reorg_depth,
        on_deliveries=on_deliveries,
        metrics=metrics,
    )


_Parts = tuple[
    ChainSource[ChainBlock, Any, Any],
    Callable[[TrackerState, Sequence[Subscription]], Tracker[Any, Any, Any]],
    str | None,
]


def _ethereum(chain: EthereumChainConfig, session: aiohttp.ClientSession) -> _Parts:
    client = EthereumClient(chain.name, chain.rpc_url, session, chain.request_timeout_s)
    source = EthereumSource(
        client,
        watch_mempool=chain.mempool != "off",
    )

    def make_tracker(state: TrackerState, current: Sequence[Subscription]) -> EthereumTracker:
        return EthereumTracker(
            chain.name,
            current,
            recent_blocks=state.recent_blocks,
            activities=state.activities,
            pending=state.pending,
            dropped_grace_s=chain.dropped_after_s,
        )

    identity = str(chain.chain_id) if chain.chain_id is not None else None
    return source, make_tracker, identity


def _bitcoin(
    chain: BitcoinChainConfig,
    session: aiohttp.ClientSession,
    networks: Collection[Network],
) -> _Parts:
    auth: RpcAuth
    if chain.rpc_cookie_file is not None:
        auth = CookieAuth(chain.rpc_cookie_file)
    else:
        password = chain.rpc_password.get_secret_value() if chain.rpc_password else ""
        auth = PasswordAuth(chain.rpc_user or "", password)
    rpc = BitcoinRpc(chain.name, chain.rpc_url, session, auth, chain.request_timeout_s)
    allowed = (chain.network,) if chain.network is not None else networks
    source = BitcoinSource(
        BitcoinClient(rpc), networks=allowed, watch_mempool=chain.mempool != "off"
    )
    if not ACCELERATED:
        log.warning(
            "bitcoin_matching_not_accelerated",
            chain=chain.name,
            reason="watcher._address_filter was not built (no C compiler or Python headers)",
            effect="every block is matched in pure Python: correct, slower",
        )

    def make_tracker(state: TrackerState, current: Sequence[Subscription]) -> BitcoinTracker:
        return BitcoinTracker(
            chain.name,
            current,
            recent_blocks=state.recent_blocks,
            activities=state.activities,
            pending=state.pending,
            outputs=state.outputs,
            dropped_grace_s=chain.dropped_after_s,
        )

    return source, make_tracker, None
