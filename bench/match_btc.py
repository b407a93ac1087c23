"""Bitcoin matching cost and memory with 10,000 and 1,000,000 watched addresses.

Usage: ``python bench/match_btc.py [--sizes 10000 1000000] [--repeat 15]``

Every size runs in a subprocess of its own, so each peak RSS (``VmHWM``) belongs to one
size. The subprocess imports the daemon (``watcher.daemon``: web3, aiohttp, aiosqlite and
the rest count), loads one subscription watching N address strings, builds the
:class:`~watcher.btc_matching.BtcAddressIndex`, a table of 100,000 known watched outputs
(the same for every N: it grows with deposits, not with the watch list) and a synthetic
block of 3,000 transactions with 1-4 inputs and 1-4 outputs each (2.5 on
average), 1 % of them touching a watched address either way. It then times matching the
whole block, in two shapes:

- ``prevout``: every input names the address it spends (Bitcoin Core 23+ ``getblock 3``);
- ``outpoint``: inputs carry only the spent outpoint (bcoin, older Core), looked up in the
  known-outputs table.

The parent also times address validation (what loading a watch list costs at start-up).
Targets (issue 4): 1M within 1.2x of 10k per block, and under 400 MB RSS with 1M loaded.
The verdicts are printed; the exit status is 0 either way (this reports, tests assert).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TXS_PER_BLOCK = 3000
HIT_RATE = 0.01
RATIO_TARGET = 1.2
RSS_TARGET_MB = 400
KNOWN_OUTPUTS = 100_000
BECH32_CHARS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BASE58_CHARS = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def fake_address(rng: random.Random) -> str:
    """A string shaped like a mainnet address (P2WPKH, P2PKH or P2SH), checksum not valid.

    Matching and memory depend on the strings' lengths and hashes, not on their checksums,
    and generating a million valid ones would take longer than the benchmark.
    """
    kind = rng.random()
    if kind < 0.5:
        return "bc1q" + "".join(rng.choices(BECH32_CHARS, k=38))
    first = "1" if kind < 0.8 else "3"
    return first + "".join(rng.choices(BASE58_CHARS, k=33))


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(size: int, repeat: int) -> dict[str, Any]:
    import watcher.daemon  # noqa: F401  (the daemon's imports count towards its RSS)
    from watcher.btc_matching import BtcAddressIndex
    from watcher.models import BtcTx, BtcTxIn, BtcTxOut, EventType, Subscription

    rng = random.Random(size)
    watched = frozenset(fake_address(rng) for _ in range(size))
    subscription = Subscription(
        id="exchange-deposits",
        chain="btc",
        addresses=watched,
        events=frozenset(EventType),
        confirmations=6,
        url="https://example.invalid/hook",
        secret=b"x" * 32,
    )
    started = time.perf_counter()
    index = BtcAddressIndex([subscription])
    index_s = time.perf_counter() - started
    pool = list(watched)
    known = {
        (f"{rng.getrandbits(256):064x}", rng.randrange(4)): BtcTxOut(0, rng.choice(pool), 10_000)
        for _ in range(KNOWN_OUTPUTS)
    }
    known_outpoints = list(known)

    def block(with_prevouts: bool) -> list[BtcTx]:
        brng = random.Random(7)
        txs = []
        for _ in range(TXS_PER_BLOCK):
            txid = f"{brng.getrandbits(256):064x}"
            inputs = []
            for _ in range(brng.randint(1, 4)):
                hit = brng.random() < HIT_RATE
                if with_prevouts:
                    addr = brng.choice(pool) if hit else fake_address(brng)
                    inputs.append(
                        BtcTxIn(f"{brng.getrandbits(256):064x}", brng.randrange(4), addr, 50_000)
                    )
                else:
                    prev = (
                        brng.choice(known_outpoints)
                        if hit
                        else (f"{brng.getrandbits(256):064x}", brng.randrange(4))
                    )
                    inputs.append(BtcTxIn(prev[0], prev[1]))
            outputs = tuple(
                BtcTxOut(
                    n, brng.choice(pool) if brng.random() < HIT_RATE else fake_address(brng), 1
                )
                for n in range(brng.randint(1, 4))
            )
            txs.append(BtcTx(txid, tuple(inputs), outputs, coinbase=False, raw={}))
        return txs

    timings: dict[str, float] = {}
    matched: dict[str, int] = {}
    for shape, with_prevouts in (("prevout", True), ("outpoint", False)):
        txs = block(with_prevouts)
        gc.collect()
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = index.match_all(txs, known)
            samples.append(time.perf_counter() - t0)
        timings[shape] = statistics.median(samples)
        matched[shape] = len(result)
    return {
        "size": size,
        "index_s": index_s,
        "median_s": timings,
        "matched_txs": matched,
        "peak_rss_mb": peak_rss_mb(),
    }


def validation_cost(samples: int = 20_000) -> dict[str, float]:
    """Microseconds to validate and normalise one address, per encoding."""
    import base58

    from watcher.btc_addresses import CoinFamily, Network, normalize_btc_address
    from watcher.btc_codecs import segwit_encode

    rng = random.Random(1)
    programs = [rng.randbytes(20) for _ in range(samples)]
    kinds = {
        "bech32": [segwit_encode("bc", 0, p) for p in programs],
        "base58": [base58.b58encode_check(b"\x00" + p).decode() for p in programs],
    }
    out = {}
    for kind, addresses in kinds.items():
        t0 = time.perf_counter()
        for a in addresses:
            normalize_btc_address(a, CoinFamily.BITCOIN, Network.MAINNET)
        out[kind] = (time.perf_counter() - t0) / samples * 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeat)))
        return 0

    results = []
    for size in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", str(size), "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(proc.stdout))

    print(f"block: {TXS_PER_BLOCK} transactions, ~2.5 inputs and outputs each, {HIT_RATE:.0%} hits")
    print(
        f"{'watched':>10} {'index s':>8} {'prevout ms':>11} {'outpoint ms':>12} {'peak RSS MB':>12}"
    )
    for r in results:
        t = r["median_s"]
        print(
            f"{r['size']:>10,} {r['index_s']:>8.2f} {t['prevout'] * 1e3:>11.2f} "
            f"{t['outpoint'] * 1e3:>12.2f} {r['peak_rss_mb']:>12.1f}"
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        for shape in ("prevout", "outpoint"):
            ratio = large["median_s"][shape] / small["median_s"][shape]
            verdict = "ok" if ratio <= RATIO_TARGET else "over target"
            print(
                f"ratio {large['size']:,} / {small['size']:,} ({shape}): {ratio:.2f}x "
                f"(target <= {RATIO_TARGET}x: {verdict})"
            )
    largest = results[-1]
    rss_ok = largest["peak_rss_mb"] < RSS_TARGET_MB
    print(
        f"peak RSS with {largest['size']:,} addresses: {largest['peak_rss_mb']:.0f} MB "
        f"(target < {RSS_TARGET_MB} MB: {'ok' if rss_ok else 'over target'})"
    )
    cost = validation_cost()
    print(
        "address validation at load: "
        + ", ".join(f"{k} {v:.1f} us" for k, v in cost.items())
        + f" -> about {max(cost.values()):.0f} s per million addresses"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
