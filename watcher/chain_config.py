"""Configuration of the chains to follow: one model per kind of node, and how each reads addresses.

A chain's ``kind`` picks its model. Every kind shares the polling, confirmation, reorg and
mempool keys of :class:`ChainBase`; Ethereum adds an optional ``chain_id`` check, Bitcoin
the coin, the network and the node's RPC credentials. :func:`address_reader` gives the
function that validates and normalises the watched addresses of a chain's subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from watcher import addresses
from watcher.activities import REORG_WINDOW
from watcher.btc_addresses import CoinFamily, Network, normalize_btc_address

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PositiveSeconds = Annotated[float, Field(gt=0)]
Confirmations = Annotated[int, Field(ge=1, le=10_000)]
BatchSize = Annotated[int, Field(ge=1, le=1000)]


class ChainBase(BaseModel):
    """What every chain has: its node, how it is polled, confirmations, reorgs, mempool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    rpc_url: str
    poll_interval_s: PositiveSeconds = 2.0
    start: Literal["latest"] | Annotated[int, Field(ge=0)] = "latest"
    confirmations: Confirmations = 12
    batch_size: BatchSize = 50
    request_timeout_s: PositiveSeconds = 30.0
    max_reorg_depth: Annotated[int, Field(ge=1, le=REORG_WINDOW - 1)] = 64
    dropped_after_s: Annotated[float, Field(ge=0)] = 60.0
    mempool: Literal["auto", "off"] = "auto"


class EthereumChainConfig(ChainBase):
    """An Ethereum (or other EVM) node."""

    kind: Literal["ethereum"]
    chain_id: Annotated[int, Field(ge=0)] | None = None


class BitcoinChainConfig(ChainBase):
    """A Bitcoin-family node: Bitcoin Core or a fork of it, or bcoin.

    Authentication is ``rpc_user`` with ``rpc_password`` (bcoin: any user, the API key), or
    the node's ``rpc_cookie_file``. Without ``network``, it is inferred from the watched
    addresses and checked against the node at start.
    """

    kind: Literal["bitcoin"]
    coin: CoinFamily = CoinFamily.BITCOIN
    network: Network | None = None
    rpc_user: str | None = None
    rpc_password: SecretStr | None = None
    rpc_cookie_file: Path | None = None
    confirmations: Confirmations = 6
    # Full Bitcoin blocks are large (megabytes of JSON each): fetch a few at a time.
    batch_size: BatchSize = 5


ChainConfig = EthereumChainConfig | BitcoinChainConfig
TaggedChainConfig = Annotated[ChainConfig, Field(discriminator="kind")]
CHAIN_MODELS: dict[str, type[EthereumChainConfig] | type[BitcoinChainConfig]] = {
    "ethereum": EthereumChainConfig,
    "bitcoin": BitcoinChainConfig,
}


class BtcAddressReader:
    """Validates and normalises one Bitcoin-family chain's addresses.

    With a configured network every address must belong to it. Without one, the network is
    narrowed down as addresses are read: each must belong to a network all earlier ones
    belong to. :attr:`networks` is what is left, for the node to be checked against.
    """

    def __init__(self, coin: CoinFamily, network: Network | None) -> None:
        self.coin = coin
        self.fixed = network is not None
        self.networks: tuple[Network, ...] = (network,) if network is not None else tuple(Network)

    def __call__(self, text: str) -> str:
        """The canonical form of ``text``; ValueError saying what is wrong."""
        if len(self.networks) == 1:
            try:
                return normalize_btc_address(text, self.coin, self.networks[0])
            except ValueError as exc:
                message = f"is not a {self.coin} {self.networks[0]} address ({_reason(exc)})"
                raise ValueError(message) from None
        forms: dict[Network, str] = {}
        first_error: ValueError | None = None
        for network in self.networks:
            try:
                forms[network] = normalize_btc_address(text, self.coin, network)
            except ValueError as exc:
                first_error = first_error or exc
        if not forms:
            names = " or ".join(self.networks)
            reason = "" if first_error is None else f" ({_reason(first_error)})"
            raise ValueError(f"is not a {self.coin} {names} address{reason}")
        if len(set(forms.values())) > 1:
            names = " and ".join(forms)
            raise ValueError(f"reads differently on {names}: set the chain's network")
        if len(forms) < len(self.networks):
            self.networks = tuple(forms)
        return next(iter(forms.values()))


def _reason(exc: ValueError) -> str:
    """The part of a normalisation error after the address and network it repeats."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def address_reader(chain: ChainConfig) -> Callable[[str], str]:
    """The function that validates and normalises addresses watched on ``chain``."""
    if isinstance(chain, BitcoinChainConfig):
        return BtcAddressReader(chain.coin, chain.network)
    return addresses.normalize_ethereum
