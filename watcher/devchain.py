"""A throwaway local Ethereum dev chain (anvil) for the demo, the tests and the benchmarks.

anvil keeps about 1 MB of state per mined block under its cache path and never deletes it,
so every instance gets its own temporary folder, removed when the instance stops. Token
transfers are made with a tiny hand-assembled contract that only logs ``Transfer``, so
neither the tests nor the benchmarks need a Solidity compiler.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson

from watcher.chains.ethereum import TRANSFER_TOPIC
from watcher.errors import WatcherError
from watcher.node_process import NodeProcess
from watcher.node_process import free_port as free_port  # the demo, tests and bench use it

REPO_ANVIL = (
    Path(__file__).resolve().parent.parent
    / "tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
)


class DevChainError(WatcherError):
    """anvil could not be found or started."""


def find_anvil(explicit: str | None = None) -> str:
    """The anvil binary: ``explicit``, else $WATCHER_ANVIL, the repo's tools folder, or PATH."""
    for candidate in (explicit, os.environ.get("WATCHER_ANVIL"), str(REPO_ANVIL)):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("anvil")
    if found:
        return found
    raise DevChainError("anvil not found: run `make setup`, or pass --anvil / set WATCHER_ANVIL")


class Anvil(NodeProcess):
    """One anvil process on loopback with its own state folder."""

    not_ready_errors = (aiohttp.ClientError, OSError)
    # The state folder's name prefix and where anvil's stderr goes; subclasses may change both.
    _state_dir_prefix = "watcher-anvil-"
    _stderr = asyncio.subprocess.PIPE

    def __init__(
        self,
        binary: str,
        *,
        block_time_s: float | None = None,
        chain_id: int = 31337,
        port: int | None = None,
        state_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.binary = binary
        # With a state file the chain (blocks included) survives a stop and a start.
        self.state_path = state_path
        self.block_time_s = block_time_s
        self.chain_id = chain_id
        self._fixed_port = port
        self.port = port or 0
        self._state_dir: str | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start anvil on a free port and wait until it answers ``eth_chainId``."""
        self._state_dir = tempfile.mkdtemp(prefix=self._state_dir_prefix)
        self._session = aiohttp.ClientSession()
        await super().start()

    def _arguments(self) -> list[str]:
        """anvil's command-line arguments for this attempt's port."""
        assert self._state_dir is not None
        args = [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--quiet",
            "--cache-path",
            self._state_dir,
        ]
        if self.state_path is not None:
            args += ["--state", str(self.state_path)]
        if self.block_time_s is None:
            args.append("--no-mining")
        else:
            args += ["--block-time", str(self.block_time_s)]
        return args

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.port = self._fixed_port or free_port()
        return await asyncio.create_subprocess_exec(
            self.binary,
            *self._arguments(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._stderr,
        )

    async def _ready(self) -> None:
        await self.rpc("eth_chainId")

    def _start_error(self, exit_code: int | None) -> Exception:
        return DevChainError("anvil did not start")

    async def stop(self) -> None:
        """Stop the process and remove its state folder."""
        await super().stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    async def rpc(self, method: str, *params: Any) -> Any:
        """Call ``method`` and return its result; RuntimeError on an RPC error."""
        assert self._session is not None
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        headers = {"Content-Type": "application/json"}
        async with self._session.post(
            self.rpc_url, data=orjson.dumps(body), headers=headers
        ) as resp:
            reply = orjson.loads(await resp.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def accounts(self) -> list[str]:
        """The prefunded, unlocked dev accounts (lower-case)."""
        return [str(a).lower() for a in await self.rpc("eth_accounts")]

    async def send(self, sender: str, to: str, value_wei: int, **extra: Any) -> str:
        """Send a transaction from an unlocked account; returns its hash."""
        tx = {"from": sender, "to": to, "value": hex(value_wei), **extra}
        return str(await self.rpc("eth_sendTransaction", tx))

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now."""
        await self.rpc("anvil_mine", hex(blocks))

    async def block_number(self) -> int:
        return int(await self.rpc("eth_blockNumber"), 16)


def transfer_emitter_code(kind: Literal["erc20", "erc721"]) -> str:
    """Init code of a contract that logs ``Transfer(caller, to, x)`` for calldata ``to ++ x``.

    ``erc20`` logs x as data (LOG3); ``erc721`` logs x as the indexed token id (LOG4). Raw
    bytecode, so that making token transfers needs no Solidity compiler.
    """
    topic = TRANSFER_TOPIC[2:]
    if kind == "erc20":
        # amount = calldata[32:64] -> memory[0:32]; LOG3(0, 32, topic, caller, to)
        runtime = "602035600052600035337f" + topic + "60206000a300"
    else:
        # LOG4(0, 0, topic, caller, to, token_id) with token_id = calldata[32:64]
        runtime = "602035600035337f" + topic + "60006000a400"
    size = len(runtime) // 2
    # CODECOPY the runtime (which follows these 11 bytes) to memory 0 and RETURN it.
    init = f"60{size:02x}80600b6000396000f3"
    return "0x" + init + runtime


def transfer_call(to: str, amount_or_id: int) -> str:
    """Calldata for the emitter: the recipient and the amount (or token id), 32 bytes each."""
    return "0x" + to[2:].rjust(64, "0") + hex(amount_or_id)[2:].rjust(64, "0")
