"""The two measurements of a catch-up to the head: the raw ceiling and the daemon.

The ceiling is the least work any client must do: batched ``eth_getBlockByNumber`` over
aiohttp with two batches in flight, orjson parsing and a set lookup per transaction; with
logs on, also one ``eth_getLogs`` for the ``Transfer`` logs of each batch's range, in the
same JSON-RPC batch (as the daemon asks it), and a set lookup on each log's sender and
recipient topics. The daemon run is the real thing: a
:class:`~watcher.follower.ChainFollower` driving a real
:class:`~watcher.chains.ethereum.EthereumClient` (through its source), the Ethereum tracker
and a :class:`~watcher.store.SQLiteStore`
on a temporary file, polled until its cursor reaches the head. Both return seconds, timed
from the first request to the last block handled (the daemon's includes building its
address index and committing every event to the outbox). With logs off the daemon's
subscription wants native transfers only, so it does not ask for logs; with logs on it wants
every kind, token transfers included.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from chainbuild import BenchError

from watcher.chains.ethereum import TRANSFER_TOPIC, EthereumClient
from watcher.chains.ethereum_source import EthereumSource
from watcher.follower import ChainFollower
from watcher.models import EventType, Kind, Subscription
from watcher.store import SQLiteStore
from watcher.tracker import EthereumTracker

BATCHES_IN_FLIGHT = 2
CHAIN = "bench"
CONFIRMATIONS = 6


@dataclass(frozen=True, slots=True)
class Run:
    """One timed catch-up: how long it took and what it found."""

    seconds: float
    found: int


# (block number, sender, recipient) of a transaction or of a token transfer log.
Transfer = tuple[int, str, str | None]


def subscriptions(watched: frozenset[str], *, logs: bool) -> list[Subscription]:
    """One subscription watching ``watched`` for mined and confirmed transfers.

    Native transfers only unless ``logs``: then every kind, so the daemon fetches logs too.
    """
    kinds = frozenset(Kind) if logs else frozenset({Kind.NATIVE})
    return [
        Subscription(
            id="bench",
            chain=CHAIN,
            addresses=watched,
            events=frozenset({EventType.TX_MINED, EventType.TX_CONFIRMED}),
            kinds=kinds,
            confirmations=CONFIRMATIONS,
            url="http://127.0.0.1:9/hooks",
            secret=b"bench-secret-bench-secret-bench!",
        )
    ]


def expected_events(transfers: Sequence[Transfer], watched: frozenset[str], head: int) -> int:
    """How many outbox rows a catch-up to ``head`` must create for ``subscriptions(watched)``.

    ``transfers`` holds (block number, sender, recipient) for every transaction, and with
    logs on for every token transfer too. Each side of a transfer that is watched makes a
    ``tx.mined`` event, and a ``tx.confirmed`` one once the block is ``CONFIRMATIONS`` deep.
    """
    total = 0
    for number, sender, recipient in transfers:
        sides = (sender in watched) + (recipient in watched)
        confirmed = number + CONFIRMATIONS - 1 <= head
        total += sides * (1 + confirmed)
    return total


def transfers_of(block_lines: Iterable[bytes]) -> list[Transfer]:
    """(block number, sender, recipient) of every transaction in the recorded blocks."""
    out: list[Transfer] = []
    for line in block_lines:
        block = orjson.loads(line)
        number = int(block["number"], 16)
        for tx in block["transactions"]:
            to = tx["to"]
            out.append((number, tx["from"].lower(), to.lower() if to is not None else None))
    return out


def token_transfers_of(log_lines: Iterable[bytes]) -> list[Transfer]:
    """(block number, sender, recipient) of every ``Transfer`` log in the recorded logs."""
    out: list[Transfer] = []
    for line in log_lines:
        for log in orjson.loads(line):
            topics = log["topics"]
            if len(topics) in (3, 4) and topics[0] == TRANSFER_TOPIC:
                number = int(log["blockNumber"], 16)
                out.append((number, _topic_address(topics[1]), _topic_address(topics[2])))
    return out


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


async def _post(session: aiohttp.ClientSession, url: str, payload: object) -> Any:
    headers = {"Content-Type": "application/json"}
    async with session.post(url, data=orjson.dumps(payload), headers=headers) as response:
        return orjson.loads(await response.read())


async def ceiling(
    url: str, watched: frozenset[str], batch_size: int, first: int = 0, *, logs: bool
) -> Run:
    """Fetch and parse blocks ``first`` to head, counting transactions that touch ``watched``.

    With ``logs``, each batch also fetches the range's ``Transfer`` logs, and the logs that
    touch ``watched`` are counted too. Nothing else: no models, no store. This is what the
    daemon is measured against.
    """
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        reply = await _post(
            session, url, {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
        )
        head = int(reply["result"], 16)
        batches = iter(range(first, head + 1, batch_size))
        in_flight: deque[asyncio.Task[Any]] = deque()

        def fetch_next() -> None:
            start = next(batches, None)
            if start is None:
                return
            payload = [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "eth_getBlockByNumber",
                    "params": [hex(n), True],
                }
                for n in range(start, min(start + batch_size, head + 1))
            ]
            if logs:
                log_filter = {
                    "fromBlock": hex(start),
                    "toBlock": hex(min(start + batch_size, head + 1) - 1),
                    "topics": [TRANSFER_TOPIC],
                }
                payload.append(
                    {"jsonrpc": "2.0", "id": -1, "method": "eth_getLogs", "params": [log_filter]}
                )
            in_flight.append(asyncio.create_task(_post(session, url, payload)))

        found = 0
        try:
            for _ in range(BATCHES_IN_FLIGHT):
                fetch_next()
            while in_flight:
                replies = await in_flight.popleft()
                fetch_next()
                for reply in replies:
                    result = reply["result"]
                    if type(result) is list:  # the eth_getLogs reply
                        for log in result:
                            topics = log["topics"]
                            if "0x" + topics[1][26:] in watched or "0x" + topics[2][26:] in watched:
                                found += 1
                        continue
                    for tx in result["transactions"]:
                        if tx["from"] in watched or tx["to"] in watched:
                            found += 1
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return Run(time.perf_counter() - started, found)


async def daemon(url: str, subs: Sequence[Subscription], batch_size: int, first: int = 0) -> Run:
    """Catch a real ChainFollower up from block ``first`` to the head; ``found`` = outbox rows."""
    with tempfile.TemporaryDirectory(prefix="watcher-bench-store-") as folder:
        store = await SQLiteStore.open(Path(folder) / "outbox.db")
        try:
            async with aiohttp.ClientSession() as session:
                started = time.perf_counter()
                follower = ChainFollower(
                    source=EthereumSource(EthereumClient(CHAIN, url, session)),
                    make_tracker=lambda state, current: EthereumTracker(
                        CHAIN,
                        current,
                        recent_blocks=state.recent_blocks,
                        activities=state.activities,
                        pending=state.pending,
                    ),
                    subscriptions=subs,
                    store=store,
                    start=first,
                    batch_size=batch_size,
                )
                while True:
                    recorded = await follower.poll_once()
                    cursor, head = follower.cursor, follower.head_seen
                    if cursor is not None and cursor.number == head:
                        break
                    if not recorded:
                        raise BenchError(f"the daemon stopped at {cursor}, head {head}")
                seconds = time.perf_counter() - started
            found = len(await store.deliveries())
        finally:
            await store.close()
    return Run(seconds, found)
