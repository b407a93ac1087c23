"""The benchmark chain: built once on anvil, recorded, and cached for later runs.

A chain of ``blocks`` blocks with ``txs_per_block`` transactions each: plain transfers, of
which every hundredth touches a watched address (half of them as recipient, half as sender),
and, for 1% of the transactions, calls of a token contract that logs an ERC-20 ``Transfer``
(a quarter of them to a watched address, a quarter from one). The contract is the
hand-assembled emitter of :func:`watcher.devchain.transfer_emitter_code`, deployed by the
chain's first transaction.

Senders are 300 dev accounts (``anvil --accounts 300``) that anvil signs for: one JSON-RPC
batch of ``eth_sendTransaction`` calls per block, then ``evm_mine``, about 40 blocks/s here.
Locally signed ``eth_sendRawTransaction`` batches are no faster (42 blocks/s with coincurve,
anvil being the bottleneck; eth_account's pure-Python signer alone needs 4.6 ms a
transaction), so the benchmark needs no extra dependency. Recipients come from a pool of a
few thousand addresses, so anvil's state stays small and mining does not slow down much.

The transactions must be really signed: anvil recovers every sender from its signature when
it serves a block, which is why it serves only about 130 blocks/s of them. Transactions from
impersonated accounts (``anvil_autoImpersonateAccount``) build three times faster but are then
served at about 2,000 blocks/s, which is not what a real chain looks like.

The cache holds what both benchmark targets need: the blocks and their logs exactly as anvil
returned them (for the replay server) and anvil's own state dump, which ``--load-state``
turns back into a live anvil holding the same chain, with the same hashes, in a few seconds.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from eth_utils.crypto import keccak

from watcher.devchain import Anvil, transfer_call, transfer_emitter_code

CACHE_FORMAT = 3
CHAIN_ID = 31337
WATCHED_SENDERS = 10  # dev accounts, as anvil signs only for those
WATCHED_RECIPIENTS = 10
WATCHED_EVERY_N_TXS = 100  # 1% of the transfers touch a watched address
TOKEN_EVERY_N_TXS = 100  # 1% of the transactions are token transfers...
TOKEN_OFFSET = 50  # ...at other positions than the watched plain transfers
DEPLOY_GAS = 200_000
EMITTER_GAS = 60_000  # a call of the emitter uses about 24,000
DEV_ACCOUNTS = 300
RECIPIENTS = 3000
BLOCKS_FILE = "blocks.jsonl.gz"
LOGS_FILE = "logs.jsonl.gz"
STATE_FILE = "anvil-state.json.gz"
META_FILE = "meta.json"


class BenchError(Exception):
    """The benchmark could not set up what it measures."""


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """The shape of the benchmark chain; equal specs share one cache entry."""

    blocks: int
    txs_per_block: int = 50
    seed: int = 1

    @property
    def cache_name(self) -> str:
        return f"chain-v{CACHE_FORMAT}-b{self.blocks}-t{self.txs_per_block}-s{self.seed}"


@dataclass(frozen=True, slots=True)
class CachedChain:
    """A recorded chain on disk: its blocks, anvil's state dump and what it was built from."""

    folder: Path
    head: int
    head_hash: str
    watched: tuple[str, ...]
    emitter: str
    timings_s: dict[str, float]

    @property
    def blocks_path(self) -> Path:
        return self.folder / BLOCKS_FILE

    @property
    def logs_path(self) -> Path:
        return self.folder / LOGS_FILE

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def block_lines(self) -> list[bytes]:
        """Each block's full JSON (transactions included), as anvil returned it."""
        with gzip.open(self.blocks_path, "rb") as blocks:
            return blocks.read().splitlines()

    def log_lines(self) -> list[bytes]:
        """Each block's logs: a JSON list of the log objects anvil's ``eth_getLogs`` returned."""
        with gzip.open(self.logs_path, "rb") as logs:
            return logs.read().splitlines()


class BenchAnvil(Anvil):
    """:class:`Anvil` with extra command-line arguments (``--load-state``, ``--prune-history``)."""

    _state_dir_prefix = "watcher-bench-anvil-"
    _stderr = asyncio.subprocess.DEVNULL

    def __init__(self, binary: str, extra_args: Sequence[str] = ()) -> None:
        super().__init__(binary, chain_id=CHAIN_ID)
        self.extra_args = tuple(extra_args)

    def _arguments(self) -> list[str]:
        return [*super()._arguments(), *self.extra_args]


async def rpc_batch(
    session: aiohttp.ClientSession, url: str, calls: Sequence[tuple[str, list[Any]]]
) -> list[Any]:
    """Results of ``calls`` sent as one JSON-RPC batch; BenchError on any error."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    headers = {"Content-Type": "application/json"}
    async with session.post(url, data=orjson.dumps(body), headers=headers) as response:
        replies = orjson.loads(await response.read())
    if not isinstance(replies, list):
        raise BenchError(f"{calls[0][0]}: {replies}")
    replies.sort(key=lambda r: r["id"])
    for reply in replies:
        if "error" in reply:
            raise BenchError(f"{calls[reply['id']][0]}: {reply['error']}")
    return [reply["result"] for reply in replies]


def _addresses(rng: random.Random, count: int) -> list[str]:
    return ["0x" + rng.randbytes(20).hex() for _ in range(count)]


def _first_contract_of(deployer: str) -> str:
    """The address of the contract ``deployer`` creates with its nonce 0 transaction."""
    # keccak(rlp([deployer, 0])): a 22-byte list of the 20-byte address and the empty nonce.
    encoded = b"\xd6\x94" + bytes.fromhex(deployer[2:]) + b"\x80"
    return "0x" + keccak(encoded)[12:].hex()


def _transfers(
    spec: ChainSpec,
    rng: random.Random,
    senders: list[str],
    watched_senders: list[str],
    watched_recipients: list[str],
) -> Iterator[list[tuple[str, list[Any]]]]:
    """One list of ``eth_sendTransaction`` calls per block, nonces included.

    The first transaction deploys the token emitter (at ``_first_contract_of(senders[0])``).
    """
    recipients = _addresses(rng, RECIPIENTS)
    nonces = dict.fromkeys(senders + watched_senders, 0)
    emitter = _first_contract_of(senders[0])
    index = 0
    for _ in range(spec.blocks):
        calls: list[tuple[str, list[Any]]] = []
        for _ in range(spec.txs_per_block):
            sender, recipient = senders[index % len(senders)], rng.choice(recipients)
            turn, rest = divmod(index, WATCHED_EVERY_N_TXS)
            token_turn, token_rest = divmod(index - TOKEN_OFFSET, TOKEN_EVERY_N_TXS)
            tx: dict[str, str]
            if index == 0:
                code = transfer_emitter_code("erc20")
                tx = {"from": sender, "data": code, "gas": hex(DEPLOY_GAS)}
            elif token_rest == 0 and token_turn >= 0:
                if token_turn % 4 == 0:
                    recipient = watched_recipients[(token_turn // 4) % len(watched_recipients)]
                elif token_turn % 4 == 2:
                    sender = watched_senders[(token_turn // 4) % len(watched_senders)]
                tx = {
                    "from": sender,
                    "to": emitter,
                    "data": transfer_call(recipient, rng.randrange(1, 10**24)),
                    "gas": hex(EMITTER_GAS),
                }
            else:
                if rest == 0 and turn % 2:
                    sender = watched_senders[(turn // 2) % len(watched_senders)]
                elif rest == 0:
                    recipient = watched_recipients[(turn // 2) % len(watched_recipients)]
                tx = {
                    "from": sender,
                    "to": recipient,
                    "value": hex(rng.randrange(1, 10**15)),
                    "gas": "0x5208",
                }
            tx["nonce"] = hex(nonces[sender])
            nonces[sender] += 1
            calls.append(("eth_sendTransaction", [tx]))
            index += 1
        yield calls


async def build_chain(
    anvil: Anvil, spec: ChainSpec, session: aiohttp.ClientSession
) -> tuple[list[str], str]:
    """Mine ``spec``'s chain on a fresh anvil started with ``--accounts 300``.

    Returns the watched addresses, the last ten dev accounts, which send one watched transfer
    in two hundred, and ten addresses that receive one in two hundred (and as many token
    transfers), and the address of the token emitter.
    """
    accounts = await anvil.accounts()
    if len(accounts) < DEV_ACCOUNTS:
        raise BenchError(f"anvil has {len(accounts)} dev accounts, expected {DEV_ACCOUNTS}")
    senders, watched_senders = accounts[:-WATCHED_SENDERS], accounts[-WATCHED_SENDERS:]
    rng = random.Random(spec.seed)
    watched_recipients = _addresses(rng, WATCHED_RECIPIENTS)
    for calls in _transfers(spec, rng, senders, watched_senders, watched_recipients):
        # Two requests: anvil answers the calls of one batch concurrently.
        await rpc_batch(session, anvil.rpc_url, calls)
        await rpc_batch(session, anvil.rpc_url, [("evm_mine", [])])
    emitter = _first_contract_of(senders[0])
    if len(await anvil.rpc("eth_getCode", emitter, "latest")) <= 2:
        raise BenchError(f"the token emitter was not deployed at {emitter}")
    return watched_senders + watched_recipients, emitter


async def record_blocks(
    session: aiohttp.ClientSession, url: str, spec: ChainSpec, emitter: str, batch_size: int = 50
) -> tuple[list[bytes], list[bytes]]:
    """Every block 0..head with full transactions, and every block's logs.

    One JSON document per block in each list. The logs are asked with one ``eth_getLogs``
    per batch of blocks, in the same JSON-RPC batch. Two batches in flight; fetching each
    block while building the next one (or in the same batch as ``evm_mine``, which anvil
    answers concurrently) turned out slower.
    """
    batches = [
        range(first, min(first + batch_size, spec.blocks + 1))
        for first in range(0, spec.blocks + 1, batch_size)
    ]
    lines: list[bytes] = []
    log_lines: list[bytes] = []
    for i in range(0, len(batches), 2):
        replies = await asyncio.gather(
            *(rpc_batch(session, url, _record_calls(numbers)) for numbers in batches[i : i + 2])
        )
        for numbers, results in zip(batches[i : i + 2], replies, strict=True):
            *blocks, logs = results
            by_block: dict[int, list[Any]] = {n: [] for n in numbers}
            for log in logs:
                by_block[int(log["blockNumber"], 16)].append(log)
            for number, block in zip(numbers, blocks, strict=True):
                lines.append(_checked(block, number, spec))
                log_lines.append(_checked_logs(block, by_block[number], emitter))
    return lines, log_lines


def _record_calls(numbers: range) -> list[tuple[str, list[Any]]]:
    calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
    log_filter = {"fromBlock": hex(numbers[0]), "toBlock": hex(numbers[-1])}
    calls.append(("eth_getLogs", [log_filter]))
    return calls


def _checked(block: Any, number: int, spec: ChainSpec) -> bytes:
    expected = spec.txs_per_block if number else 0
    if block is None or len(block["transactions"]) != expected:
        raise BenchError(f"block {number} was not mined with {expected} transactions")
    return orjson.dumps(block)


def _checked_logs(block: Any, logs: list[Any], emitter: str) -> bytes:
    """The block's logs, which must be one per call of the emitter (none ran out of gas)."""
    calls = sum(1 for tx in block["transactions"] if tx["to"] == emitter)
    if len(logs) != calls or any(log["blockHash"] != block["hash"] for log in logs):
        raise BenchError(f"block {block['number']}: {len(logs)} logs for {calls} token transfers")
    return orjson.dumps(logs)


def load_cached(root: Path, spec: ChainSpec) -> CachedChain | None:
    """The cached chain for ``spec``, or None if there is none (or it is unreadable)."""
    folder = root / spec.cache_name
    try:
        meta = orjson.loads((folder / META_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    if not all((folder / name).is_file() for name in (BLOCKS_FILE, LOGS_FILE, STATE_FILE)):
        return None
    return CachedChain(
        folder,
        int(meta["head"]),
        str(meta["head_hash"]),
        tuple(meta["watched"]),
        str(meta["emitter"]),
        meta["timings_s"],
    )


async def build_and_cache(root: Path, spec: ChainSpec, binary: str) -> CachedChain:
    """Build ``spec``'s chain on a fresh anvil, record it and store it under ``root``."""
    clock = time.perf_counter
    started = clock()
    async with (
        BenchAnvil(binary, ["--prune-history", "--accounts", str(DEV_ACCOUNTS)]) as anvil,
        aiohttp.ClientSession() as session,
    ):
        watched, emitter = await build_chain(anvil, spec, session)
        mined = clock()
        lines, log_lines = await record_blocks(session, anvil.rpc_url, spec, emitter)
        recorded = clock()
        state = await anvil.rpc("anvil_dumpState")
        dumped = clock()
    timings = {
        "mine": mined - started,
        "record": recorded - mined,
        "dump": dumped - recorded,
        "total": clock() - started,
    }
    head = len(lines) - 1
    head_hash = str(orjson.loads(lines[-1])["hash"])
    meta = {
        "format": CACHE_FORMAT,
        "head": head,
        "head_hash": head_hash,
        "watched": watched,
        "emitter": emitter,
        "timings_s": timings,
    }
    final = root / spec.cache_name
    state_bytes = bytes.fromhex(state.removeprefix("0x"))
    await asyncio.to_thread(_write_cache, final, lines, log_lines, state_bytes, meta)
    return CachedChain(final, head, head_hash, tuple(watched), emitter, timings)


def _write_cache(
    final: Path, lines: list[bytes], log_lines: list[bytes], state: bytes, meta: dict[str, Any]
) -> None:
    """Write through a staging folder, so that an interrupted run leaves no half cache."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=".staging-"))
    try:
        for name, content in ((BLOCKS_FILE, lines), (LOGS_FILE, log_lines)):
            with gzip.open(staging / name, "wb", compresslevel=1) as out:
                out.write(b"\n".join(content) + b"\n")
        (staging / STATE_FILE).write_bytes(state)  # anvil_dumpState is gzip already
        (staging / META_FILE).write_bytes(orjson.dumps(meta))
        shutil.rmtree(final, ignore_errors=True)
        staging.chmod(0o755)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@asynccontextmanager
async def live_anvil(chain: CachedChain, binary: str) -> AsyncIterator[Anvil]:
    """An anvil holding ``chain`` (loaded from its state dump), stopped on exit."""
    folder = Path(tempfile.mkdtemp(prefix="watcher-bench-state-"))
    try:
        state = folder / "state.json"
        await asyncio.to_thread(_gunzip, chain.state_path, state)
        async with BenchAnvil(binary, ["--load-state", str(state), "--prune-history"]) as anvil:
            block = await anvil.rpc("eth_getBlockByNumber", "latest", False)
            if int(block["number"], 16) != chain.head or block["hash"] != chain.head_hash:
                raise BenchError("anvil --load-state did not restore the recorded chain")
            yield anvil
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _gunzip(source: Path, target: Path) -> None:
    with gzip.open(source, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
