"""Event data for Bitcoin-family payments: pure functions.

A payment event names the watched ``address``, the ``direction`` (``in``: outputs paid to
it; ``out``: inputs spending its outputs) and ``value``, the amount received or spent in
the transaction, in integer satoshis written as a decimal string (conditions compare it
exactly: ``value gte 0.01 btc``). ``outpoints`` lists those outputs as ``txid:n``.

The transaction is given twice: normalised (``inputs`` and ``outputs``, amounts in
satoshis, with each input's address and value where known) and as the node wrote it
(``transaction``), its amounts as exact decimal strings in coins (``"12.34567890"``): the
node's JSON numbers are never turned into floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from watcher.btc_matching import BtcMatch, KnownOutput
from watcher.models import BtcBlock, BtcTx, Kind, Outpoint

SpentLookup = Callable[[Outpoint], KnownOutput | None]


def _nothing_known(outpoint: Outpoint) -> KnownOutput | None:
    return None


# The fields of a payment event that belong to one watched address, not to the transaction.
MATCH_FIELDS = ("address", "direction", "value", "outpoints")
_BLOCK_FIELDS = ("block_number", "block_hash", "block_timestamp", "confirmations")


def exact_json(value: Any) -> Any:
    """``value`` with every ``Decimal`` replaced by its exact decimal string."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: exact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact_json(v) for v in value]
    return value


def outpoint_text(txid: str, n: int) -> str:
    """An outpoint as one string, ``txid:n``."""
    return f"{txid}:{n}"


def tx_data(tx: BtcTx, spent: SpentLookup = _nothing_known) -> dict[str, Any]:
    """The event fields describing the transaction itself, shared by every match.

    ``spent`` tells whose output an input without a prevout spends, where that is known.
    """
    inputs = []
    for i in tx.inputs:
        address, value = i.address, i.value_sat
        if value is None:
            known = spent(i.outpoint)
            if known is not None:
                address, value = known.address, known.value_sat
        inputs.append(
            {
                "txid": i.prev_txid,
                "vout": i.prev_vout,
                "address": address,
                "value": str(value) if value is not None else None,
            }
        )
    return {
        "kind": Kind.NATIVE.value,
        "tx_hash": tx.txid,
        "inputs": inputs,
        "outputs": [
            {"n": o.n, "address": o.address, "value": str(o.value_sat)} for o in tx.outputs
        ],
        "transaction": exact_json(tx.raw),
    }


def match_fields(match: BtcMatch) -> dict[str, Any]:
    """The event fields of one watched address in a transaction."""
    return {
        "address": match.address,
        "direction": match.direction.value,
        "value": str(match.amount_sat),
        "outpoints": [outpoint_text(txid, n) for txid, n in match.outpoints],
    }


def pool_data(tx: BtcTx, spent: SpentLookup = _nothing_known) -> dict[str, Any]:
    """Event data of a pending transaction, shared by its matches."""
    return {"block_number": None, "block_hash": None, "confirmations": 0, **tx_data(tx, spent)}


def mined_data(block: BtcBlock, shared: Mapping[str, Any], match: BtcMatch) -> dict[str, Any]:
    """Event data of a mined payment; ``shared`` is :func:`tx_data` of its transaction."""
    return {
        "block_number": block.number,
        "block_hash": block.hash,
        "block_timestamp": block.timestamp,
        "confirmations": 1,
        **shared,
        **match_fields(match),
    }


def pool_data_of(mined: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a mined payment's event data into pending-transaction data and match fields.

    Used when a reorg puts a transaction back among the pending ones.
    """
    shared = {k: v for k, v in mined.items() if k not in MATCH_FIELDS and k not in _BLOCK_FIELDS}
    pending = {"block_number": None, "block_hash": None, "confirmations": 0, **shared}
    return pending, {k: mined[k] for k in MATCH_FIELDS}


def spent_outpoints(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The outpoints a transaction spends, from its event data (see :func:`tx_data`)."""
    return tuple(outpoint_text(str(i["txid"]), int(i["vout"])) for i in data["inputs"])
