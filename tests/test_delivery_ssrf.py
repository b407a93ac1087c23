"""The SSRF guard: which addresses are refused, and what a refused delivery becomes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.delivery_kit import FakeClock, outbox, scripted, subscription
from watcher.netguard import refusal

LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("100.64.0.1", "not a public"),  # CGNAT
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 around 169.254.169.254
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
    ],
)
def test_non_public_addresses_and_their_ipv6_wrappings_are_refused(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_networks_opens_exactly_the_listed_range() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("127.0.0.2"), LOOPBACK) is not None


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])
async def test_a_refused_callback_is_recorded_as_blocked_and_never_retried(
    tmp_path: Path, host: str
) -> None:
    clock = FakeClock()
    async with scripted() as receiver:
        sub = subscription(receiver.url(host=host))
        async with outbox(tmp_path, [sub], clock=clock, allow_networks=[]) as box:
            await box.add_events("sub")
            with capture_logs() as logs:
                await box.worker.run_once()
            clock.advance(30 * 86400)
            assert await box.worker.run_once() == 0
            row = await box.row()
            (attempt,) = await box.store.attempts(row.id)
    assert receiver.requests == []
    assert row.status == "failed"
    assert attempt.error_class == "blocked"
    assert attempt.error is not None
    assert "loopback" in attempt.error
    assert [entry["event"] for entry in logs] == ["delivery_blocked"]


async def test_a_host_name_resolving_to_an_allowed_address_is_delivered(tmp_path: Path) -> None:
    async with scripted() as receiver:
        sub = subscription(receiver.url(host="localhost"))
        async with outbox(tmp_path, [sub], allow_networks=["127.0.0.1/32"]) as box:
            await box.add_events("sub")
            await box.worker.run_once()
            assert (await box.row()).status == "succeeded"
    assert len(receiver.requests) == 1
