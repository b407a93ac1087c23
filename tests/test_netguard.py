"""The SSRF guard: callbacks only go to public addresses unless a network is allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from watcher.netguard import (
    BlockedAddressError,
    GuardedResolver,
    IPNetwork,
    embedded_ipv4,
    refusal,
)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def nets(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "not a public address"),
        ("100.127.255.254", "not a public address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - checked, never bound
        ("::", "an unspecified address"),
    ],
)
def test_non_public_address_is_refused_with_its_category(address: str, reason: str) -> None:
    assert refusal(ip(address)) == reason


@pytest.mark.parametrize(
    ("wrapped", "inner", "reason"),
    [
        pytest.param("::ffff:127.0.0.1", "127.0.0.1", "a loopback address", id="mapped-loopback"),
        pytest.param(
            "::ffff:169.254.169.254", "169.254.169.254", "a link-local address", id="mapped-meta"
        ),
        pytest.param("::ffff:10.0.0.1", "10.0.0.1", "a private address", id="mapped-private"),
        pytest.param("2002:7f00:1::", "127.0.0.1", "a loopback address", id="6to4-loopback"),
        pytest.param(
            "2002:a9fe:a9fe::1", "169.254.169.254", "a link-local address", id="6to4-meta"
        ),
        pytest.param("64:ff9b::7f00:1", "127.0.0.1", "a loopback address", id="nat64-loopback"),
        pytest.param(
            "64:ff9b::a9fe:a9fe", "169.254.169.254", "a link-local address", id="nat64-meta"
        ),
        pytest.param("64:ff9b::6440:1", "100.64.0.1", "not a public address", id="nat64-cgnat"),
    ],
)
def test_ipv6_wrapping_of_a_refused_ipv4_is_refused_for_the_inner_reason(
    wrapped: str, inner: str, reason: str
) -> None:
    assert embedded_ipv4(ip(wrapped)) == ip(inner)
    assert refusal(ip(wrapped)) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "::ffff:8.8.8.8"]
)
def test_public_address_is_allowed(address: str) -> None:
    assert refusal(ip(address)) is None


def test_plain_ipv4_and_ipv6_addresses_wrap_nothing() -> None:
    assert embedded_ipv4(ip("8.8.8.8")) is None
    assert embedded_ipv4(ip("2001:4860:4860::8888")) is None


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", nets("127.0.0.0/8")),
        ("10.20.30.40", nets("10.20.0.0/16")),
        ("169.254.169.254", nets("169.254.169.254/32")),
        ("::1", nets("::1/128")),
        ("::ffff:127.0.0.1", nets("127.0.0.1/32")),
        ("64:ff9b::a00:1", nets("10.0.0.0/8")),
    ],
)
def test_allowed_network_opens_its_range(address: str, allowed: Sequence[IPNetwork]) -> None:
    assert refusal(ip(address), allowed) is None


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.2", nets("127.0.0.1/32")),
        ("10.21.0.1", nets("10.20.0.0/16")),
        ("::1", nets("127.0.0.0/8")),
        ("127.0.0.1", nets("::1/128")),
    ],
)
def test_allowed_network_opens_nothing_outside_itself(
    address: str, allowed: Sequence[IPNetwork]
) -> None:
    assert refusal(ip(address), allowed) is not None


ResolverFactory = Callable[..., GuardedResolver]


@pytest.fixture
async def guarded() -> AsyncIterator[ResolverFactory]:
    """Make GuardedResolvers and close every one of them at the end of the test."""
    made: list[GuardedResolver] = []

    def make(*allowed: str) -> GuardedResolver:
        resolver = GuardedResolver(nets(*allowed))
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        await resolver.close()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNSPEC])
async def test_resolving_localhost_is_blocked_by_default(
    guarded: ResolverFactory, family: socket.AddressFamily
) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        await guarded().resolve("localhost", 80, family)
    assert caught.value.host == "localhost"
    assert "127.0.0.1 is a loopback address" in caught.value.reasons


async def test_resolving_a_loopback_literal_is_blocked(guarded: ResolverFactory) -> None:
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1: refused"):
        await guarded().resolve("127.0.0.1", 80)


async def test_resolving_localhost_succeeds_when_loopback_is_allowed(
    guarded: ResolverFactory,
) -> None:
    results = await guarded("127.0.0.1/32", "::1/128").resolve("localhost", 80, socket.AF_UNSPEC)
    assert results
    assert {r["host"] for r in results} <= {"127.0.0.1", "::1"}
    assert all(r["port"] == 80 for r in results)


async def test_resolver_keeps_only_the_allowed_addresses(guarded: ResolverFactory) -> None:
    """If localhost also resolves to ::1 here, that address is dropped, not passed on."""
    results = await guarded("127.0.0.1/32").resolve("localhost", 443, socket.AF_UNSPEC)
    assert {r["host"] for r in results} == {"127.0.0.1"}
