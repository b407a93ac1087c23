"""Bech32, Bech32m (BIP-173, BIP-350) and CashAddr checksummed base32 codecs: pure functions.

These follow the reference code published with the BIPs and the CashAddr specification. They
are written out here rather than taken from PyPI because the packages there either predate
Bech32m, or are about six times slower than the table-driven checksum below (an exchange
loading a million watched addresses validates every one at start-up), or leave payload
sizes unchecked. Base58Check comes from the ``base58`` package.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(CHARSET)}
BECH32_MAX_LENGTH = 90


class Bech32Variant(enum.Enum):
    """Which checksum constant a Bech32 string uses."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _xor_table(generators: Sequence[int]) -> tuple[int, ...]:
    """For each value of the bits shifted out, the XOR of the generators they select."""
    table = []
    for top in range(32):
        acc = 0
        for i, gen in enumerate(generators):
            if (top >> i) & 1:
                acc ^= gen
        table.append(acc)
    return tuple(table)


_BECH32_TABLE = _xor_table((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3))
_CASHADDR_TABLE = _xor_table((0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470))


def _bech32_polymod(values: Iterable[int]) -> int:
    table = _BECH32_TABLE
    chk = 1
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5) ^ value ^ table[chk >> 25]
    return chk


def _cashaddr_polymod(values: Iterable[int]) -> int:
    table = _CASHADDR_TABLE
    chk = 1
    for value in values:
        chk = ((chk & 0x07FFFFFFFF) << 5) ^ value ^ table[chk >> 35]
    return chk ^ 1


def convert_bits(data: Iterable[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    """Regroup a stream of ``from_bits``-bit values into ``to_bits``-bit values.

    Without ``pad``, leftover bits must be fewer than ``from_bits`` and all zero (BIP-173).
    """
    acc = 0
    bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    max_acc = (1 << (from_bits + to_bits - 1)) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise ValueError("value out of range")
        acc = ((acc << from_bits) | value) & max_acc
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits:
        raise ValueError("more than 4 bits of padding")
    elif (acc << (to_bits - bits)) & max_value:
        raise ValueError("non-zero padding")
    return out


def _check_case(text: str) -> str:
    lower = text.lower()
    if text != lower and text != text.upper():
        raise ValueError("mixes upper and lower case")
    return lower


def bech32_decode(text: str) -> tuple[str, list[int], Bech32Variant]:
    """Split a Bech32 or Bech32m string into its lower-case HRP, 5-bit data and variant."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise ValueError("character out of range")
    lower = _check_case(text)
    if len(lower) > BECH32_MAX_LENGTH:
        raise ValueError(f"longer than {BECH32_MAX_LENGTH} characters")
    pos = lower.rfind("1")
    if pos < 1:
        raise ValueError("empty or missing human-readable part")
    if pos + 7 > len(lower):
        raise ValueError("checksum too short")
    hrp = lower[:pos]
    try:
        data = [_VALUES[c] for c in lower[pos + 1 :]]
    except KeyError as exc:
        raise ValueError(f"invalid data character {exc.args[0]!r}") from None
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    const = _bech32_polymod(expanded + data)
    for variant in Bech32Variant:
        if const == variant.value:
            return hrp, data[:-6], variant
    raise ValueError("checksum mismatch")


def segwit_decode(text: str) -> tuple[str, int, bytes]:
    """Decode a segwit address into (lower-case HRP, witness version, witness program).

    Enforces BIP-350: version 0 uses Bech32 with a 20- or 32-byte program, versions 1-16
    use Bech32m with a 2- to 40-byte program.
    """
    hrp, data, variant = bech32_decode(text)
    if not data:
        raise ValueError("empty data section")
    version = data[0]
    if version > 16:
        raise ValueError(f"invalid witness version {version}")
    program = bytes(convert_bits(data[1:], 5, 8, pad=False))
    if not 2 <= len(program) <= 40:
        raise ValueError(f"invalid witness program length {len(program)}")
    if version == 0 and len(program) not in (20, 32):
        raise ValueError(f"invalid witness v0 program length {len(program)}")
    expected = Bech32Variant.BECH32 if version == 0 else Bech32Variant.BECH32M
    if variant is not expected:
        raise ValueError(f"witness v{version} must use {expected.name.lower()}")
    return hrp, version, program


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    """Encode a segwit address (Bech32 for version 0, Bech32m above), checking the result."""
    variant = Bech32Variant.BECH32 if version == 0 else Bech32Variant.BECH32M
    data = [version, *convert_bits(program, 8, 5, pad=True)]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod([*expanded, *data, 0, 0, 0, 0, 0, 0]) ^ variant.value
    checksum = [(polymod >> (5 * (5 - i))) & 31 for i in range(6)]
    address = hrp + "1" + "".join(CHARSET[d] for d in data + checksum)
    segwit_decode(address)
    return address


# CashAddr hash sizes in bytes, indexed by the version byte's three size bits.
CASHADDR_HASH_SIZES = (20, 24, 28, 32, 40, 48, 56, 64)


def _cashaddr_prefix_values(prefix: str) -> list[int]:
    return [ord(c) & 31 for c in prefix] + [0]


def cashaddr_split(text: str, default_prefix: str) -> tuple[str, list[int]]:
    """Check a CashAddr's case, characters and checksum; return (lower-case prefix, 5-bit data).

    ``default_prefix`` is assumed when the text has none: the prefix is part of the checksum.
    """
    lower = _check_case(text)
    prefix, sep, payload = lower.rpartition(":")
    if not sep:
        prefix = default_prefix.lower()
    if not prefix:
        raise ValueError("empty prefix")
    try:
        data = [_VALUES[c] for c in payload]
    except KeyError as exc:
        raise ValueError(f"invalid character {exc.args[0]!r}") from None
    if len(data) < 8 or _cashaddr_polymod(_cashaddr_prefix_values(prefix) + data) != 0:
        raise ValueError("checksum mismatch")
    return prefix, data[:-8]


def cashaddr_decode(text: str, default_prefix: str) -> tuple[str, int, bytes]:
    """Decode a CashAddr into (lower-case prefix, version byte, payload).

    The version byte holds the type in bits 3-6 and, for payment types, the hash size in
    bits 0-2; checking the payload length against it is left to the caller, since it depends
    on the type.
    """
    prefix, data = cashaddr_split(text, default_prefix)
    decoded = convert_bits(data, 5, 8, pad=False)
    if not decoded:
        raise ValueError("empty payload")
    if decoded[0] & 0x80:
        raise ValueError("reserved version bit set")
    return prefix, decoded[0], bytes(decoded[1:])


def cashaddr_encode(prefix: str, type_bits: int, hash_bytes: bytes) -> str:
    """Encode a CashAddr, with its prefix, for a hash of one of the eight standard sizes."""
    if not 0 <= type_bits <= 15:
        raise ValueError("type out of range")
    try:
        size_bits = CASHADDR_HASH_SIZES.index(len(hash_bytes))
    except ValueError:
        raise ValueError(f"unsupported hash length {len(hash_bytes)}") from None
    data = convert_bits(bytes([(type_bits << 3) | size_bits]) + hash_bytes, 8, 5, pad=True)
    polymod = _cashaddr_polymod([*_cashaddr_prefix_values(prefix), *data, 0, 0, 0, 0, 0, 0, 0, 0])
    checksum = [(polymod >> (5 * (7 - i))) & 31 for i in range(8)]
    return prefix + ":" + "".join(CHARSET[d] for d in data + checksum)
