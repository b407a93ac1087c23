"""Bitcoin-family address validation and normalisation, per coin and network: pure functions.

Watched addresses are stored in the form the coin's nodes print in ``scriptPubKey``, so that
matching a block is a set lookup on the node's own strings:

- Base58Check addresses are case-sensitive and kept as written, except that a Litecoin P2SH
  address with the old ``3...``/``2...`` version byte is rewritten to the ``M...``/``Q...``
  form Litecoin Core prints for the same script;
- Bech32/Bech32m segwit addresses are lower-cased;
- Bitcoin Cash addresses become lower-case CashAddr with the network prefix, whether they
  were written as CashAddr (with or without prefix, upper or lower case), token-aware
  CashAddr, or legacy Base58.

Regtest accepts the prefixes of both regtest nodes this project drives: Bitcoin Core's
``m``/``n``/``2``/``bcrt1`` and bcoin's ``R``/``G``/``rb1``. The same key gets a different
string on each, and each node only ever prints its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import base58

from watcher.btc_codecs import CASHADDR_HASH_SIZES, cashaddr_decode, cashaddr_encode, segwit_decode


class CoinFamily(enum.StrEnum):
    """Coins that share Bitcoin's RPC interface but encode addresses their own way."""

    BITCOIN = "bitcoin"
    LITECOIN = "litecoin"
    DOGECOIN = "dogecoin"
    DASH = "dash"
    BITCOIN_CASH = "bitcoincash"
    BITCOIN_SV = "bitcoinsv"


class Network(enum.StrEnum):
    """Which of a coin's networks (testnet includes signet and testnet4 for Bitcoin)."""

    MAINNET = "mainnet"
    TESTNET = "testnet"
    REGTEST = "regtest"


@dataclass(frozen=True, slots=True)
class AddressFormat:
    """The encodings one coin accepts on one network.

    ``p2pkh`` and ``p2sh`` are the Base58Check version bytes; ``base58_aliases`` maps a
    deprecated version byte to the one the node prints for the same script.
    """

    family: CoinFamily
    network: Network
    p2pkh: frozenset[int]
    p2sh: frozenset[int]
    segwit_hrps: frozenset[str] = frozenset()
    cashaddr_prefix: str | None = None
    base58_aliases: tuple[tuple[int, int], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.family} {self.network}"


def _fmt(
    family: CoinFamily,
    network: Network,
    p2pkh: tuple[int, ...],
    p2sh: tuple[int, ...],
    hrps: tuple[str, ...] = (),
    cashaddr: str | None = None,
    aliases: tuple[tuple[int, int], ...] = (),
) -> AddressFormat:
    return AddressFormat(
        family, network, frozenset(p2pkh), frozenset(p2sh), frozenset(hrps), cashaddr, aliases
    )


_BTC, _LTC, _DOGE = CoinFamily.BITCOIN, CoinFamily.LITECOIN, CoinFamily.DOGECOIN
_DASH, _BCH, _BSV = CoinFamily.DASH, CoinFamily.BITCOIN_CASH, CoinFamily.BITCOIN_SV
_MAIN, _TEST, _REG = Network.MAINNET, Network.TESTNET, Network.REGTEST

# Version bytes and prefixes from each coin's chainparams (bcoin: lib/protocol/networks.js).
FORMATS: dict[tuple[CoinFamily, Network], AddressFormat] = {
    (f.family, f.network): f
    for f in (
        _fmt(_BTC, _MAIN, (0x00,), (0x05,), ("bc",)),
        _fmt(_BTC, _TEST, (0x6F,), (0xC4,), ("tb",)),
        _fmt(_BTC, _REG, (0x6F, 0x3C), (0xC4, 0x26), ("bcrt", "rb")),
        _fmt(_LTC, _MAIN, (0x30,), (0x32, 0x05), ("ltc",), aliases=((0x05, 0x32),)),
        _fmt(_LTC, _TEST, (0x6F,), (0x3A, 0xC4), ("tltc",), aliases=((0xC4, 0x3A),)),
        _fmt(_LTC, _REG, (0x6F,), (0x3A, 0xC4), ("rltc",), aliases=((0xC4, 0x3A),)),
        _fmt(_DOGE, _MAIN, (0x1E,), (0x16,)),
        _fmt(_DOGE, _TEST, (0x71,), (0xC4,)),
        _fmt(_DOGE, _REG, (0x6F,), (0xC4,)),
        _fmt(_DASH, _MAIN, (0x4C,), (0x10,)),
        _fmt(_DASH, _TEST, (0x8C,), (0x13,)),
        _fmt(_DASH, _REG, (0x8C,), (0x13,)),
        _fmt(_BCH, _MAIN, (0x00,), (0x05,), cashaddr="bitcoincash"),
        _fmt(_BCH, _TEST, (0x6F,), (0xC4,), cashaddr="bchtest"),
        _fmt(_BCH, _REG, (0x6F,), (0xC4,), cashaddr="bchreg"),
        _fmt(_BSV, _MAIN, (0x00,), (0x05,)),
        _fmt(_BSV, _TEST, (0x6F,), (0xC4,)),
        _fmt(_BSV, _REG, (0x6F,), (0xC4,)),
    )
}

# CashAddr type bits: P2PKH, P2SH, and their token-aware variants (CashTokens), which stand
# for the same locking script and are folded into the plain types.
_CASHADDR_TYPES = {0: 0, 1: 1, 2: 0, 3: 1}
_CASHADDR_P2SH_SIZES = (20, 32)


def address_format(family: CoinFamily, network: Network) -> AddressFormat:
    """The address encodings of ``family`` on ``network``."""
    return FORMATS[(family, network)]


def normalize_btc_address(text: str, family: CoinFamily, network: Network) -> str:
    """The canonical form of ``text`` on ``family``/``network``; ValueError saying what is wrong."""
    fmt = FORMATS[(family, network)]
    candidate = text.strip()
    if not candidate:
        raise ValueError("empty address")
    try:
        return _normalize(candidate, fmt)
    except ValueError as exc:
        raise ValueError(f"'{candidate}' is not a {fmt.label} address: {exc}") from None


def _normalize(candidate: str, fmt: AddressFormat) -> str:
    if fmt.cashaddr_prefix is not None and (":" in candidate or candidate[0] in "qpzrQPZR"):
        return _normalize_cashaddr(candidate, fmt.cashaddr_prefix)
    if "1" in candidate:
        hrp = candidate[: candidate.rfind("1")].lower()
        if hrp in fmt.segwit_hrps:
            segwit_decode(candidate)
            return candidate.lower()
        if hrp.isalpha() and _is_segwit(candidate):
            raise ValueError(f"segwit prefix '{hrp}1' is not used here")
    return _normalize_base58(candidate, fmt)


def _is_segwit(candidate: str) -> bool:
    try:
        segwit_decode(candidate)
    except ValueError:
        return False
    return True


def _normalize_base58(candidate: str, fmt: AddressFormat) -> str:
    try:
        raw = base58.b58decode_check(candidate)
    except ValueError as exc:
        raise ValueError(f"bad base58check encoding ({exc})") from None
    if len(raw) != 21:
        raise ValueError(f"base58 payload of {len(raw) - 1} bytes, expected 20")
    version, payload = raw[0], raw[1:]
    if version in fmt.p2pkh:
        kind = 0
    elif version in fmt.p2sh:
        kind = 1
    else:
        raise ValueError(f"version byte {version:#04x} belongs to another coin or network")
    if fmt.cashaddr_prefix is not None:
        return cashaddr_encode(fmt.cashaddr_prefix, kind, payload)
    canonical = dict(fmt.base58_aliases).get(version)
    if canonical is not None:
        return base58.b58encode_check(bytes([canonical]) + payload).decode("ascii")
    return candidate


def _normalize_cashaddr(candidate: str, prefix: str) -> str:
    got_prefix, version, payload = cashaddr_decode(candidate, prefix)
    if got_prefix != prefix:
        raise ValueError(f"prefix '{got_prefix}:' belongs to another network")
    type_bits = version >> 3
    kind = _CASHADDR_TYPES.get(type_bits)
    if kind is None:
        raise ValueError(f"unknown cashaddr type {type_bits}")
    if len(payload) != CASHADDR_HASH_SIZES[version & 0x07]:
        raise ValueError("hash length does not match the version byte")
    allowed = _CASHADDR_P2SH_SIZES if kind == 1 else (20,)
    if len(payload) not in allowed:
        raise ValueError(f"{len(payload)}-byte hash is not a payment address")
    return cashaddr_encode(prefix, kind, payload)
