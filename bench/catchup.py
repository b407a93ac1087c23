"""Catch-up benchmark: how close the daemon comes to the fastest possible client.

Builds (or loads from bench/.cache/) a chain of 50-transaction blocks, 1% of them token
transfers, on anvil, then on two targets, anvil itself and a replay server holding the
recorded blocks and logs in memory, measures a catch-up to the head twice: the raw ceiling
(batched JSON-RPC, parsing and a set lookup, nothing else) and the daemon (ChainFollower +
EthereumClient + SQLiteStore, until every event is in the outbox). Both are measured with
logs off (native transfers only) and with logs on (one ``eth_getLogs`` per batch of blocks,
for the token transfers), each daemon mode against the ceiling that fetches the same. Every
run is repeated, interleaved with the others, and the best kept. The same is done with
100,000 watched addresses instead of the chain's 20. Catch-ups on the replay server start at
block 0; on anvil, which serves 40-150 blocks/s on a busy two-core machine, they cover
the chain's last ``--anvil-blocks`` blocks, which keeps a default run within a few minutes.

    .venv/bin/python bench/catchup.py [--quick | --blocks N] [--batch-size B] [--rebuild]

Exits 1 if a target is missed (ratio >= 0.5 on replay, >= 0.9 on anvil, logs on and off;
100,000 addresses cost under 10% extra time), 130 on Ctrl-C; everything started is stopped
either way.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chainbuild import BenchError, CachedChain, ChainSpec, build_and_cache, live_anvil, load_cached
from measure import (
    ceiling,
    daemon,
    expected_events,
    subscriptions,
    token_transfers_of,
    transfers_of,
)
from replay import ReplayServer

from watcher.devchain import DevChainError, find_anvil
from watcher.gctuning import tune_for_daemon
from watcher.logs import configure_logging

DEFAULT_BLOCKS = 2000
QUICK_BLOCKS = 300
BIG_WATCHED = 100_000
CACHE_ROOT = Path(__file__).resolve().parent / ".cache"
MIN_RATIO = {"replay": 0.5, "anvil": 0.9}
MAX_BIG_OVERHEAD = 0.10
ANVIL_BLOCKS = 400
PROFILE_LINES = 20
LOG_MODES = (False, True)  # logs off, logs on

Target = Callable[[], AbstractAsyncContextManager[str]]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a catch-up from a given block to the head must find with one watched set."""

    touching_txs: int  # transactions with a watched side (what the ceiling counts)
    touching_logs: int  # token transfers with a watched side (counted too with logs on)
    native_rows: int  # events the daemon must write with logs off
    all_rows: int  # ... and with logs on: native and token events

    def of(self, kind: str, logs: bool) -> int:
        """What a ceiling (transfers) or daemon (outbox rows) run must find."""
        if kind == "ceiling":
            return self.touching_txs + (self.touching_logs if logs else 0)
        return self.all_rows if logs else self.native_rows


@dataclass(frozen=True, slots=True)
class WatchedSet:
    """A set of watched addresses and what catch-ups must find with it."""

    label: str
    addresses: frozenset[str]
    wanted: Mapping[int, Wanted]  # by the first block of the catch-up


@dataclass(slots=True)
class Timings:
    """Best (shortest) seconds per (kind, watched set label, logs on) on one target."""

    best: dict[tuple[str, str, bool], float] = field(default_factory=dict)

    def add(self, kind: str, label: str, logs: bool, seconds: float) -> None:
        key = (kind, label, logs)
        self.best[key] = min(seconds, self.best.get(key, seconds))


def watched_sets(chain: CachedChain, firsts: Iterable[int]) -> tuple[list[WatchedSet], int]:
    """The chain's own watched addresses, and the same padded with random ones to 100,000.

    With what catch-ups from each of ``firsts`` must find; also returns how many token
    transfers the chain holds.
    """
    transfers = transfers_of(chain.block_lines())
    tokens = token_transfers_of(chain.log_lines())
    small = frozenset(chain.watched)
    rng = random.Random(7)
    padding = {"0x" + rng.randbytes(20).hex() for _ in range(BIG_WATCHED - len(small))}
    big = small | padding
    sets = []
    for label, watched in (("small", small), ("100k", big)):
        wanted = {}
        for first in set(firsts):
            txs = [t for t in transfers if t[0] >= first]
            logs = [t for t in tokens if t[0] >= first]
            wanted[first] = Wanted(
                touching_txs=sum(1 for _, s, r in txs if s in watched or r in watched),
                touching_logs=sum(1 for _, s, r in logs if s in watched or r in watched),
                native_rows=expected_events(txs, watched, chain.head),
                all_rows=expected_events(txs + logs, watched, chain.head),
            )
        sets.append(WatchedSet(label, watched, wanted))
    return sets, len(tokens)


async def measure(
    name: str, url: str, sets: list[WatchedSet], batch_size: int, rounds: int, first: int
) -> Timings:
    """Interleaved ceiling and daemon runs, logs off and on, on one target, ``rounds`` rounds.

    Each run catches up from block ``first`` to the head. Odd rounds run everything in the
    opposite order, so that neither kind nor mode always follows the other.
    """
    timings = Timings()
    for round_ in range(rounds):
        flip = round_ % 2 == 1
        for watched in sets:
            for logs in reversed(LOG_MODES) if flip else LOG_MODES:
                for kind in ("daemon", "ceiling") if flip else ("ceiling", "daemon"):
                    gc.collect()  # no garbage of the previous run collected during this one
                    if kind == "ceiling":
                        run = await ceiling(url, watched.addresses, batch_size, first, logs=logs)
                    else:
                        subs = subscriptions(watched.addresses, logs=logs)
                        run = await daemon(url, subs, batch_size, first)
                    want = watched.wanted[first].of(kind, logs)
                    if run.found != want:
                        raise BenchError(
                            f"{name} {kind} {_mode(logs)} {watched.label}: "
                            f"found {run.found}, expected {want}"
                        )
                    timings.add(kind, watched.label, logs, run.seconds)
        _progress(f"  {name}: round {round_ + 1}/{rounds} done")
    return timings


def report(name: str, timings: Timings, blocks: int, sets: list[WatchedSet]) -> list[str]:
    """Print the target's lines; returns the targets it missed."""
    missed = []
    target = MIN_RATIO[name]
    best = timings.best
    for watched in sets:
        for logs in LOG_MODES:
            up = blocks / best["ceiling", watched.label, logs]
            down = blocks / best["daemon", watched.label, logs]
            ratio = down / up
            ok = ratio >= target
            what = "" if watched.label == "small" else f"{watched.label} addresses  "
            print(
                f"{name:<7} {_mode(logs):<8} {what}ceiling {up:5.0f} blocks/s  "
                f"daemon {down:5.0f} blocks/s  ratio {ratio:.2f}  (target >= {target})  "
                f"{'ok' if ok else 'MISSED'}"
            )
            if not ok:
                missed.append(f"{name} {_mode(logs)} ratio {watched.label}")
    for logs in LOG_MODES:
        small, big = (best["daemon", s.label, logs] for s in sets)
        extra = big / small - 1
        ok = extra < MAX_BIG_OVERHEAD
        print(
            f"{name:<7} {_mode(logs):<8} {BIG_WATCHED:,} addresses cost {extra:+.1%} time "
            f"({big:.2f} s vs {small:.2f} s)  (target < {MAX_BIG_OVERHEAD:.0%})  "
            f"{'ok' if ok else 'MISSED'}"
        )
        if not ok:
            missed.append(f"{name} {_mode(logs)} 100k overhead")
    label = sets[0].label
    daemon_extra = best["daemon", label, True] / best["daemon", label, False] - 1
    ceiling_extra = best["ceiling", label, True] / best["ceiling", label, False] - 1
    print(
        f"{name:<7} logs on cost the daemon {daemon_extra:+.1%} time, "
        f"the ceiling {ceiling_extra:+.1%} ({len(sets[0].addresses)} addresses)"
    )
    return missed


def _mode(logs: bool) -> str:
    return "logs on" if logs else "logs off"


async def prepare(spec: ChainSpec, anvil_binary: str, rebuild: bool) -> CachedChain:
    """The cached chain for ``spec``, built first if needed."""
    chain = None if rebuild else load_cached(CACHE_ROOT, spec)
    if chain is not None:
        t = chain.timings_s
        print(
            f"chain   {spec.blocks} blocks x {spec.txs_per_block} txs from the cache "
            f"(built earlier in {t['total']:.1f} s)"
        )
        return chain
    _progress(f"building {spec.blocks} blocks x {spec.txs_per_block} txs on anvil...")
    chain = await build_and_cache(CACHE_ROOT, spec, anvil_binary)
    t = chain.timings_s
    print(
        f"chain   {spec.blocks} blocks x {spec.txs_per_block} txs built in {t['total']:.1f} s "
        f"(mining {t['mine']:.1f} s = {spec.blocks / t['mine']:.0f} blocks/s, recording "
        f"{t['record']:.1f} s, state dump {t['dump']:.1f} s; cached in {chain.folder})"
    )
    return chain


async def run(args: argparse.Namespace) -> list[str]:
    """The whole benchmark; returns the targets missed."""
    blocks = QUICK_BLOCKS if args.quick else args.blocks
    anvil_binary = find_anvil(args.anvil)
    spec = ChainSpec(blocks)
    chain = await prepare(spec, anvil_binary, args.rebuild)
    firsts = {"replay": 0, "anvil": max(0, chain.head + 1 - args.anvil_blocks)}
    sets, tokens = watched_sets(chain, firsts.values())
    small, whole = sets[0], sets[0].wanted[0]
    txs = chain.head * spec.txs_per_block
    print(
        f"tokens  {tokens} token transfers ({tokens / txs:.1%} of the transactions), one "
        f"eth_getLogs per batch with logs on"
    )
    print(
        f"watch   {len(small.addresses)} addresses: {whole.touching_txs} transfers and "
        f"{whole.touching_logs} token transfers; {whole.native_rows} events with logs off, "
        f"{whole.all_rows} with logs on (whole chain); batch size {args.batch_size}"
    )
    print(
        f"runs    best of {args.replay_rounds} rounds on replay (blocks {firsts['replay']}"
        f"-{chain.head}), {args.anvil_rounds} on anvil (blocks {firsts['anvil']}-{chain.head})"
    )
    print(f"machine {_machine_load()} before measuring")

    @asynccontextmanager
    async def replay() -> AsyncIterator[str]:
        async with ReplayServer(chain.blocks_path, chain.logs_path) as server:
            yield server.rpc_url

    @asynccontextmanager
    async def anvil() -> AsyncIterator[str]:
        started = time.perf_counter()
        async with live_anvil(chain, anvil_binary) as node:
            _progress(f"  anvil --load-state ready in {time.perf_counter() - started:.1f} s")
            yield node.rpc_url

    if args.profile:
        async with replay() as url:
            await profile_daemon(url, sets[1] if args.profile == "100k" else small, args)
        return []
    targets: dict[str, Target] = {"replay": replay, "anvil": anvil}
    missed: list[str] = []
    for name in args.targets.split(","):
        _progress(f"measuring on {name}...")
        async with targets[name]() as url:
            rounds = args.replay_rounds if name == "replay" else args.anvil_rounds
            timings = await measure(name, url, sets, args.batch_size, rounds, firsts[name])
        missed += report(name, timings, chain.head + 1 - firsts[name], sets)
    print(f"machine {_machine_load()} after measuring")
    return missed


async def profile_daemon(url: str, watched: WatchedSet, args: argparse.Namespace) -> None:
    """One daemon catch-up on the replay server under cProfile (after a warm-up run)."""
    subs = subscriptions(watched.addresses, logs=args.logs)
    await daemon(url, subs, args.batch_size)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    run = await daemon(url, subs, args.batch_size)
    profiler.disable()
    print(
        f"profile replay daemon, {watched.label} watched set, {_mode(args.logs)}: "
        f"{run.seconds:.2f} s under cProfile"
    )
    pstats.Stats(profiler).sort_stats("tottime").print_stats(PROFILE_LINES)
    pstats.Stats(profiler).sort_stats("cumtime").print_stats(r"watcher[/\\]", PROFILE_LINES)


def _machine_load() -> str:
    """Cores and load: other processes on a small machine skew every figure above."""
    return f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min)"


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=DEFAULT_BLOCKS, help="chain length")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_BLOCKS} blocks")
    parser.add_argument(
        "--replay-rounds", type=int, default=5, help="rounds on the replay server (best kept)"
    )
    parser.add_argument("--anvil-rounds", type=int, default=4, help="rounds on anvil (best kept)")
    parser.add_argument(
        "--anvil-blocks",
        type=int,
        default=ANVIL_BLOCKS,
        help="catch-ups on anvil cover the chain's last N blocks",
    )
    parser.add_argument("--batch-size", type=int, default=50, help="blocks per JSON-RPC batch")
    parser.add_argument("--targets", default="replay,anvil", help="comma-separated")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached chain")
    parser.add_argument("--anvil", help="anvil binary (default: the repo's tools folder)")
    parser.add_argument(
        "--profile",
        choices=["small", "100k"],
        help="instead of measuring: profile one daemon catch-up on the replay server",
    )
    parser.add_argument("--logs", action="store_true", help="--profile with logs on")
    args = parser.parse_args(argv)
    if not set(args.targets.split(",")) <= set(MIN_RATIO):
        parser.error(f"--targets: choose from {', '.join(MIN_RATIO)}")
    return args


async def _main(args: argparse.Namespace, interrupted: list[signal.Signals]) -> list[str]:
    task = asyncio.current_task()
    assert task is not None

    def interrupt(sig: signal.Signals) -> None:
        interrupted.append(sig)
        task.cancel()

    # Ctrl-C and SIGTERM cancel the main task, so that every `async with` unwinds and stops
    # anvil and the replay server.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig)
    return await run(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(level="warning")
    tune_for_daemon()  # as `watcher run` does; the ceiling runs with the same settings
    interrupted: list[signal.Signals] = []
    try:
        missed = asyncio.run(_main(args, interrupted))
    except BaseException as exc:
        if interrupted:
            # Whatever the exception: a cancelled catch-up can end in another one than
            # CancelledError (a cancel during SQLiteStore.record_blocks' COMMIT raises
            # sqlite3.OperationalError from its ROLLBACK).
            name = interrupted[0].name
            print(f"{name}: stopped everything this benchmark started", file=sys.stderr)
            return 130
        if isinstance(exc, BenchError | DevChainError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    if args.profile:
        return 0
    if missed:
        print(f"missed: {', '.join(missed)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
