"""Bitcoin-family node JSON -> ``BtcBlock`` / ``BtcTx``: pure functions, no I/O.

The node JSON is expected to have been loaded with ``parse_float=decimal.Decimal`` (see
:mod:`watcher.chains.bitcoin_rpc`), so amounts arrive as the exact decimal the node wrote
(``0.1``, ``20999999.97690000``, bcoin's ``1e-8``) or, from bcoin, as a plain integer number
of coins (``50``). Both become integer satoshis here. A float never appears: for Dogecoin
(up to 10^18 koinu in one output) or Litecoin (84 M LTC) a float cannot hold every amount.

Shapes absorbed here:

- an output's address is ``scriptPubKey.address`` (Bitcoin Core 22+) or the single entry of
  ``scriptPubKey.addresses`` (bcoin, Bitcoin SV, older Core); bare multisig and scripts
  without an address give None;
- an input's ``prevout`` (Core's ``getblock`` verbosity 3, ``getrawtransaction`` verbosity 2)
  fills its address and value; otherwise they stay None for a later lookup;
- the genesis block has no ``previousblockhash`` (Core omits it, bcoin writes null).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Rounded
from typing import Any

from watcher.errors import NodeError
from watcher.models import BtcBlock, BtcTx, BtcTxIn, BtcTxOut, BtcTxStatus

SATOSHIS_PER_COIN = 100_000_000
NULL_HASH = "0" * 64
# Exact arithmetic: any rounding while scaling an amount raises instead of losing digits.
_EXACT = Context(prec=64, traps=[Inexact, Rounded, InvalidOperation])


def amount_to_sat(value: object) -> int:
    """Convert a JSON amount in coins to integer satoshis, exactly, or raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"amount {value!r} is not a number")
    if isinstance(value, int):
        sat = value * SATOSHIS_PER_COIN
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"amount {value} is not finite")
        try:
            scaled = value.scaleb(8, context=_EXACT)
            if scaled != scaled.to_integral_value(context=_EXACT):
                raise ValueError(f"amount {value} has a fraction of a satoshi")
        except DecimalException as exc:
            raise ValueError(f"amount {value} cannot be converted exactly") from exc
        sat = int(scaled)
    else:
        raise ValueError(f"amount {value!r} is not an exact decimal (was it parsed as a float?)")
    if sat < 0:
        raise ValueError(f"negative amount {value}")
    return sat


def script_address(script_pub_key: Mapping[str, Any]) -> str | None:
    """The one address a ``scriptPubKey`` pays, or None (no address, or several)."""
    address = script_pub_key.get("address")
    if isinstance(address, str):
        return address
    addresses = script_pub_key.get("addresses")
    if isinstance(addresses, list) and len(addresses) == 1 and isinstance(addresses[0], str):
        if str(script_pub_key.get("type", "")).lower() == "multisig":
            return None
        return addresses[0]
    return None


def parse_tx(raw: Mapping[str, Any]) -> BtcTx:
    """Normalise one transaction object (from a block or ``getrawtransaction``)."""
    vin = raw["vin"]
    coinbase = bool(vin) and "coinbase" in vin[0]
    inputs: tuple[BtcTxIn, ...] = ()
    if not coinbase:
        inputs = tuple(_parse_input(i) for i in vin)
    outputs = tuple(
        BtcTxOut(
            n=int(out["n"]),
            address=script_address(out["scriptPubKey"]),
            value_sat=amount_to_sat(out["value"]),
        )
        for out in raw["vout"]
    )
    return BtcTx(
        txid=str(raw["txid"]).lower(),
        inputs=inputs,
        outputs=outputs,
        coinbase=coinbase,
        raw=raw,
    )


def _parse_input(raw: Mapping[str, Any]) -> BtcTxIn:
    prevout = raw.get("prevout")
    if isinstance(prevout, Mapping):
        return BtcTxIn(
            prev_txid=str(raw["txid"]).lower(),
            prev_vout=int(raw["vout"]),
            address=script_address(prevout["scriptPubKey"]),
            value_sat=amount_to_sat(prevout["value"]),
        )
    return BtcTxIn(prev_txid=str(raw["txid"]).lower(), prev_vout=int(raw["vout"]))


def parse_block(raw: Any, chain: str, method: str = "getblock") -> BtcBlock:
    """Normalise a block with full transaction objects; NodeError if it is malformed."""
    try:
        txs = raw["tx"]
        count = raw.get("nTx", raw.get("num_tx"))
        if count is not None and int(count) != len(txs):
            raise ValueError(f"block lists {len(txs)} of its {count} transactions")
        if txs and not isinstance(txs[0], Mapping):
            raise ValueError("transactions are not objects (verbosity too low)")
        parent = raw.get("previousblockhash")
        return BtcBlock(
            number=int(raw["height"]),
            hash=str(raw["hash"]).lower(),
            parent_hash=str(parent).lower() if parent is not None else NULL_HASH,
            timestamp=int(raw["time"]),
            transactions=tuple(parse_tx(tx) for tx in txs),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise NodeError(chain, method, f"malformed block: {exc!r}") from exc


def parse_tx_status(raw: Any, chain: str, method: str = "getrawtransaction") -> BtcTxStatus:
    """Normalise a verbose ``getrawtransaction`` reply: the transaction and where it is."""
    try:
        block_hash = raw.get("blockhash")
        return BtcTxStatus(
            tx=parse_tx(raw),
            block_hash=str(block_hash).lower() if block_hash else None,
            confirmations=int(raw.get("confirmations") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise NodeError(chain, method, f"malformed transaction: {exc!r}") from exc
