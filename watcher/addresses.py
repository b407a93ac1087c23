"""Address parsing and normalisation: pure functions.

Watched addresses are stored in one canonical form per chain family so that matching is a
plain set lookup. For Ethereum that is lower-case ``0x`` hex; a mixed-case address must
carry a valid EIP-55 checksum, which catches typos in configuration files.
"""

from __future__ import annotations

import functools
import re

from eth_utils.address import is_checksum_address, to_checksum_address

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalize_ethereum(text: str) -> str:
    """Return ``text`` as lower-case hex, or raise ValueError saying what is wrong.

    The message leaves out ``text`` ("is not a ...") so that the caller, which knows where the
    text came from, decides whether it may be shown.
    """
    candidate = text.strip()
    if not _HEX_ADDRESS.match(candidate):
        raise ValueError("is not a 0x-prefixed 20-byte hex address")
    body = candidate[2:]
    mixed_case = body != body.lower() and body != body.upper()
    if mixed_case and not is_checksum_address(candidate):
        raise ValueError("has an invalid EIP-55 checksum")
    return candidate.lower()


@functools.lru_cache(maxsize=65536)
def checksum_ethereum(address: str) -> str:
    """The EIP-55 mixed-case form of a lower-case address, for payloads people read.

    Cached: a keccak hash costs about 40 us, and the same watched addresses and
    counterparties come back in event after event.
    """
    return str(to_checksum_address(address))
