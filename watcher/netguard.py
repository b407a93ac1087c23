"""Refuse webhook callbacks to addresses that are not public (SSRF guard).

A callback URL is attacker-controlled input in any multi-tenant setup: without this guard a
subscription could make the daemon POST to cloud metadata endpoints or internal services.
Host names are resolved by :class:`GuardedResolver`, which aiohttp then connects to, so the
address that was checked is the address that is used (no DNS-rebinding window). Literal IP
hosts never reach a resolver and are checked with :func:`refusal` before sending.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddressError(OSError):
    """Every address a callback host resolved to is refused by the guard."""

    def __init__(self, host: str, reasons: Sequence[str]) -> None:
        self.host = host
        self.reasons = tuple(reasons)
        super().__init__(f"{host}: refused ({'; '.join(reasons)})")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form wraps (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` must not be called back, or None when it may be."""
    inner = embedded_ipv4(ip)
    candidates: list[IPAddress] = [ip] if inner is None else [inner, ip]
    if any(c in net for c in candidates for net in allowed if c.version == net.version):
        return None
    for c in candidates:
        reason = _category(c)
        if reason is not None:
            return reason
    return None


def _category(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops refused addresses and fails if none is left."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self._allowed = tuple(allowed)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            ip = ipaddress.ip_address(result["host"])
            reason = refusal(ip, self._allowed)
            if reason is None:
                kept.append(result)
            else:
                reasons.append(f"{ip} is {reason}")
        if not kept:
            raise BlockedAddressError(host, reasons)
        return kept

    async def close(self) -> None:
        await self._inner.close()
