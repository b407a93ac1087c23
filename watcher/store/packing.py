"""Rows packed into one JSON parameter, so a whole table's insert is one SQLite step.

:class:`_Packed` says why; :func:`_packed_columns` writes the SELECT list that unpacks such
rows in SQL, and :class:`_EventRows` carries the packed events and deliveries of one write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


def _packed_columns(names: str, blobs: tuple[int, ...] = ()) -> str:
    """The SELECT list that reads the columns of a :class:`_Packed` row as ``names``."""
    return ", ".join(
        f"substr(:blobs, json_extract(value, '$[{i}][0]'), json_extract(value, '$[{i}][1]'))"
        f" AS {name}"
        if i in blobs
        else f"json_extract(value, '$[{i}]') AS {name}"
        for i, name in enumerate(names.split())
    )


@dataclass(frozen=True, slots=True)
class _EventRows:
    """Rows for the ``events`` and ``deliveries`` tables, built before a write transaction."""

    chain: str
    now: float
    events: _Packed
    deliveries: _Packed


@dataclass(frozen=True, slots=True)
class _Packed:
    """Rows for one ``INSERT ... SELECT ... FROM json_each(:rows)``: the whole table in one step.

    ``executemany`` steps SQLite once per row, and each step gives the GIL back and then
    waits for it again, which behind a busy event loop costs far more than the insert. One
    statement over a JSON array of rows steps once. JSON has no bytes: each row's blob column
    is ``[start, length]`` in ``blobs``, all of them concatenated (``substr`` counts from 1).
    """

    rows: bytes
    blobs: bytes

    @property
    def params(self) -> dict[str, bytes]:
        return {"rows": self.rows, "blobs": self.blobs}


def _pack(rows: Sequence[tuple[Any, ...]], blobs: tuple[int, ...] = ()) -> _Packed:
    """``rows`` as a :class:`_Packed`; the columns at ``blobs`` (bytes) go to the blobs."""
    if not blobs:
        return _Packed(orjson.dumps(rows), b"")
    data: list[bytes] = []
    start = 1
    packed: list[list[Any]] = []
    for row in rows:
        out = list(row)
        for i in blobs:
            blob: bytes = row[i]
            data.append(blob)
            out[i] = (start, len(blob))
            start += len(blob)
        packed.append(out)
    return _Packed(orjson.dumps(packed), b"".join(data))
