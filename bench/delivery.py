"""Delivery benchmark: the durable outbox against the raw HTTP ceiling, the concurrency bound,
and block-to-webhook latency. Run with ``make bench-delivery``.

1. A backlog of ``--events`` webhooks to a local receiver (its own process). The raw ceiling is
   the same receiver hit by a bare aiohttp client with the same concurrency and no persistence;
   the outbox figure is the real daemon (``watcher run`` as a subprocess) draining the backlog
   from its SQLite outbox: claim with a lease, sign, POST, record every attempt. Both rates are
   measured by the receiver, from the first request to the last.
2. The same with the receiver taking 100 ms per request: throughput should sit at the bound the
   concurrency cap sets (cap / latency), not below it because of the store.
3. Block-to-webhook latency on anvil, with a block (holding a watched transfer) mined every
   0.25 s: the time from ``anvil_mine`` returning to the webhook arriving, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web

from watcher.devchain import Anvil, find_anvil, free_port
from watcher.events import envelope
from watcher.models import BlockOutcome, BlockRef, Event, EventType
from watcher.store import SQLiteStore

SECRET = "bench-secret-0123456789abcdef"  # plain secrets are used as their UTF-8 bytes
WATCHED = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"  # anvil's second dev account
SLOW_LATENCY_S = 0.1
EVENTS_PER_BLOCK = 1000


# --- the receiver (a separate process) ----------------------------------------------------


async def serve_receiver(port: int) -> None:
    """Answer 204 on /fast at once and on /slow after 100 ms; count what arrived when."""
    stats: dict[str, Any] = {"count": 0, "first": None, "last": None}

    def arrived() -> None:
        now = time.monotonic()
        stats["count"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now

    async def fast(request: web.Request) -> web.Response:
        await request.read()
        arrived()
        return web.Response(status=204)

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(SLOW_LATENCY_S)  # deliberate: the receiver's latency under test
        arrived()
        return web.Response(status=204)

    async def read_stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(stats), content_type="application/json")

    async def reset(request: web.Request) -> web.Response:
        stats.update(count=0, first=None, last=None)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/fast", fast)
    app.router.add_post("/slow", slow)
    app.router.add_get("/stats", read_stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


class ReceiverProcess:
    """Client side of the receiver process."""

    def __init__(self, port: int, session: aiohttp.ClientSession) -> None:
        self.port = port
        self._session = session

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def reset(self) -> None:
        async with self._session.post(self.url("/reset")) as resp:
            resp.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        async with self._session.get(self.url("/stats")) as resp:
            result: dict[str, Any] = orjson.loads(await resp.read())
            return result

    async def rate(self) -> float:
        stats = await self.stats()
        return float(stats["count"] - 1) / float(stats["last"] - stats["first"])

    async def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (await self.stats())["count"] < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver got fewer than {count} requests in {timeout_s}s")
            await asyncio.sleep(0.1)  # poll


@asynccontextmanager
async def receiver_process() -> AsyncIterator[ReceiverProcess]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--receiver", str(port), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        if line.strip() != b"ready":
            raise RuntimeError("the receiver did not start")
        async with aiohttp.ClientSession() as session:
            yield ReceiverProcess(port, session)
    finally:
        proc.kill()
        await proc.wait()


# --- 1 and 2: backlog throughput ------------------------------------------------------------


def backlog_events(count: int, start: float) -> list[Event]:
    """``count`` tx.mined events with realistic bodies (about 1 KB each)."""
    events = []
    for n in range(count):
        tx_hash = f"0x{n:064x}"
        events.append(
            Event(
                id=f"evt_bench_{n:08d}",
                type=EventType.TX_MINED,
                chain="backlog",
                subscription_id="bench",
                tx_hash=tx_hash,
                block_number=n,
                block_hash=f"0x{n + 1:064x}",
                created_at=start,
                data={
                    "tx_hash": tx_hash,
                    "block_number": n,
                    "block_hash": f"0x{n + 1:064x}",
                    "confirmations": 1,
                    "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                    "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "value": "1000000000000000000",
                    "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "direction": "in",
                    "transaction": {
                        "hash": tx_hash,
                        "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                        "to": WATCHED,
                        "value": "0xde0b6b3a7640000",
                        "gas": "0x5208",
                        "gasPrice": "0x3b9aca00",
                        "nonce": hex(n),
                        "input": "0x",
                        "blockNumber": hex(n),
                        "transactionIndex": "0x0",
                    },
                },
            )
        )
    return events


async def prefill(store_path: Path, events: list[Event]) -> None:
    """Write the backlog into a fresh outbox, as the follower would have."""
    store = await SQLiteStore.open(store_path)
    try:
        cursor: BlockRef | None = None
        for number, start in enumerate(range(0, len(events), EVENTS_PER_BLOCK)):
            block = BlockRef(number, f"0x{number + 1:064x}")
            parent = cursor.hash if cursor else "0x" + "00" * 32
            chunk = tuple(events[start : start + EVENTS_PER_BLOCK])
            await store.record_blocks(
                "backlog", cursor, [BlockOutcome(block, parent, chunk, (), ())]
            )
            cursor = block
    finally:
        await store.close()


def write_config(
    workdir: Path, name: str, rpc_url: str, url: str, concurrency: int, *, poll_s: float = 0.1
) -> Path:
    doc = {
        "store": {"path": str(workdir / f"{name}.db")},
        "log": {"level": "info", "format": "json"},
        "delivery": {
            "concurrency": concurrency,
            "endpoint_concurrency": concurrency,
            "allow_networks": ["127.0.0.1/32"],
        },
        "chains": [
            {"name": "dev", "kind": "ethereum", "rpc_url": rpc_url, "poll_interval_s": poll_s}
        ],
        "subscriptions": [
            {
                "id": "bench",
                "chain": "dev",
                "addresses": [WATCHED],
                "events": ["tx.mined"],
                "url": url,
                "secret": "${WATCHER_BENCH_SECRET}",
            }
        ],
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@asynccontextmanager
async def daemon(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``watcher run`` as operators run it; stopped with SIGTERM."""
    env = {**os.environ, "WATCHER_BENCH_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "run", "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def raw_ceiling(
    rx: ReceiverProcess, bodies: list[bytes], concurrency: int, path: str = "/fast"
) -> float:
    """The receiver's rate under a bare client: same bodies, same concurrency, nothing stored."""
    await rx.reset()
    queue = list(reversed(bodies))
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while queue:
                body = queue.pop()
                async with session.post(rx.url(path), data=body, headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return await rx.rate()


async def through_outbox(
    workdir: Path, name: str, rx: ReceiverProcess, rpc_url: str, count: int, path: str, cap: int
) -> float:
    """The daemon draining ``count`` backlogged deliveries; deliveries/s at the receiver."""
    config = write_config(workdir, name, rpc_url, rx.url(path), cap)
    await prefill(workdir / f"{name}.db", backlog_events(count, time.time()))
    await rx.reset()
    async with daemon(config):
        await rx.wait_for(count, timeout_s=600)
    store = await SQLiteStore.open(workdir / f"{name}.db")
    try:
        counts = await store.delivery_counts()
    finally:
        await store.close()
    if counts.get("succeeded") != count:
        raise RuntimeError(f"not every delivery succeeded: {counts}")
    return await rx.rate()


# --- 3: block-to-webhook latency ------------------------------------------------------------


async def block_to_webhook(
    workdir: Path, blocks: int, interval_s: float, poll_s: float
) -> list[float]:
    """Seconds from each block being mined to its webhook arriving."""
    arrived: dict[int, float] = {}
    news = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        arrived.setdefault(int(doc["data"]["block_number"]), time.monotonic())
        news.set()
        return web.Response(status=204)

    async def until(blocks: Iterable[int], timeout_s: float) -> None:
        wanted = set(blocks)
        async with asyncio.timeout(timeout_s):
            while not wanted <= arrived.keys():
                news.clear()
                await news.wait()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    mined: dict[int, float] = {}
    try:
        async with Anvil(find_anvil()) as chain:
            accounts = await chain.accounts()
            url = f"http://127.0.0.1:{port}/hook"
            config = write_config(workdir, "latency", chain.rpc_url, url, 32, poll_s=poll_s)
            async with daemon(config):
                # Warm up: wait until a first transfer is delivered, so start-up is not counted.
                await chain.send(accounts[0], WATCHED, 1)
                await chain.mine()
                await until([1], timeout_s=60)
                head = await chain.block_number()
                next_tick = time.monotonic()
                for _ in range(blocks):
                    await chain.send(accounts[0], WATCHED, 1)
                    await chain.mine()
                    head += 1
                    mined[head] = time.monotonic()
                    next_tick += interval_s
                    await asyncio.sleep(max(0.0, next_tick - time.monotonic()))  # block time
                await until(mined, timeout_s=30)
    finally:
        await runner.cleanup()
    return [arrived[n] - mined[n] for n in mined]


# --- main -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    cap = args.concurrency
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
        workdir = Path(tmp)
        bodies = [envelope(e) for e in backlog_events(args.events, time.time())]
        size = sum(len(b) for b in bodies) // len(bodies)
        print(
            f"delivery benchmark: {args.events} webhooks of about {size} bytes, concurrency {cap}"
        )
        ratios: list[float] = []
        async with receiver_process() as rx, Anvil(find_anvil()) as chain:
            # Raw and outbox runs alternate, so load from elsewhere on the machine hits both.
            for round_no in range(1, args.rounds + 1):
                raw = await raw_ceiling(rx, bodies, cap)
                name = f"backlog{round_no}"
                outbox = await through_outbox(
                    workdir, name, rx, chain.rpc_url, args.events, "/fast", cap
                )
                ratios.append(outbox / raw)
                print(
                    f"  round {round_no}: raw ceiling (bare aiohttp, nothing stored) "
                    f"{raw:5.0f} requests/s; through the durable outbox (watcher run) "
                    f"{outbox:5.0f} deliveries/s; ratio {outbox / raw:.2f}"
                )
            print(f"  ratio outbox/raw, median of {len(ratios)}: {statistics.median(ratios):.2f}"
                  " (target >= 0.5)")  # fmt: skip
            bound = cap / SLOW_LATENCY_S
            bare = await raw_ceiling(rx, bodies[: args.slow_events], cap, "/slow")
            slow = await through_outbox(
                workdir, "slow", rx, chain.rpc_url, args.slow_events, "/slow", cap
            )
            print(
                f"  receiver taking {SLOW_LATENCY_S * 1000:.0f} ms, concurrency {cap}, so at most "
                f"{bound:.0f}/s: bare client {bare:.0f}/s ({bare / bound:.0%}), durable outbox "
                f"{slow:.0f}/s ({slow / bound:.0%})"
            )
        latencies = await block_to_webhook(workdir, args.blocks, args.block_time, args.poll)
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    print(
        f"  block-to-webhook latency, a block every {args.block_time} s, chain polled every "
        f"{args.poll} s: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--slow-events", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="raw/outbox pairs to alternate")
    parser.add_argument("--blocks", type=int, default=80)
    parser.add_argument("--block-time", type=float, default=0.25)
    parser.add_argument("--poll", type=float, default=0.1, help="the chain's poll_interval_s")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(serve_receiver(args.receiver))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
