"""``watcher demo``: a dev chain, a receiver and the daemon, with webhooks arriving in seconds.

The demo writes an ordinary configuration file (shown at start), so what a newcomer sees is
the real daemon with a real config, not a special mode. The receiver checks every signature
before it shows a webhook.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
from aiohttp import web

from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.devchain import Anvil, DevChainError, find_anvil, free_port
from watcher.errors import WatcherError
from watcher.signing import parse_secret, verify

Say = Callable[[str], None]
SECRET_ENV = "WATCHER_DEMO_SECRET"  # noqa: S105 - the name of a variable, not a secret
BLOCK_TIME_S = 2
TX_INTERVAL_S = 3.0
ONE_ETHER = 10**18


class DemoError(WatcherError):
    """The demo could not start."""


CONFIG_TEMPLATE = """\
# Written by `watcher demo`: a complete configuration for the local dev chain.
store:
  path: {store}
log:
  level: warning
delivery:
  allow_networks: [127.0.0.1/32]   # the receiver runs on loopback
  retry_schedule_s: [1, 2, 5]
chains:
  - name: devnet
    kind: ethereum
    rpc_url: {rpc_url}
    chain_id: 31337
    poll_interval_s: 0.25
    start: 0
    confirmations: 3
subscriptions:
  - id: treasury
    chain: devnet
    addresses: [{watched}]
    events: [tx.pending, tx.mined, tx.confirmed, tx.reorged]
    url: http://127.0.0.1:{receiver_port}/hooks/treasury
    secret: ${{{secret_env}}}
"""


async def run_demo(*, anvil: str | None, max_webhooks: int, say: Say) -> None:
    """Run the demo until Ctrl-C (or until ``max_webhooks`` verified webhooks arrived)."""
    try:
        binary = find_anvil(anvil)
    except DevChainError as exc:
        raise DemoError(str(exc)) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    os.environ[SECRET_ENV] = secret
    received = 0

    def on_webhook(line: str) -> None:
        nonlocal received
        received += 1
        say(line)
        if max_webhooks and received >= max_webhooks:
            stop.set()

    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as workdir:
        async with Anvil(binary, block_time_s=BLOCK_TIME_S) as chain:
            accounts = await chain.accounts()
            receiver_port = free_port()
            runner = await _start_receiver(receiver_port, parse_secret(secret), on_webhook, say)
            try:
                config_path = Path(workdir) / "demo.yaml"
                config_path.write_text(
                    CONFIG_TEMPLATE.format(
                        store=Path(workdir) / "demo.db",
                        rpc_url=chain.rpc_url,
                        watched=accounts[1],
                        receiver_port=receiver_port,
                        secret_env=SECRET_ENV,
                    )
                )
                say(f"anvil dev chain at {chain.rpc_url}; receiver on port {receiver_port}")
                say(f"watching {accounts[1]} with this config ({config_path}):\n")
                say(config_path.read_text())
                daemon = Daemon(load_config(config_path), stop=stop)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(daemon.run(), name="daemon")
                    tasks.create_task(_traffic(chain, accounts, stop, say), name="traffic")
            finally:
                await runner.cleanup()
    say(f"demo finished: {received} verified webhook(s)")


async def _start_receiver(
    port: int, key: bytes, on_webhook: Callable[[str], None], say: Say
) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "0")
        signature = request.headers.get("webhook-signature", "")
        if not timestamp.isdigit() or not verify(key, msg_id, int(timestamp), body, signature):
            say(f"  receiver: REJECTED a webhook with a bad signature ({msg_id})")
            return web.Response(status=401)
        event = orjson.loads(body)
        data = event["data"]
        value_eth = int(data["value"]) / ONE_ETHER
        where = "mempool" if data["block_number"] is None else f"block {data['block_number']}"
        on_webhook(
            f"  webhook {event['type']:<13} {where:<10} "
            f"{data['direction']:>3} {value_eth:g} ETH  tx {data['tx_hash'][:18]}... "
            f"confirmations={data['confirmations']}  signature ok"
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _traffic(chain: Anvil, accounts: list[str], stop: asyncio.Event, say: Say) -> None:
    """Send a payment to, from and between other addresses, in turn, until stopped."""
    watched, other, third, fourth = accounts[1], accounts[0], accounts[2], accounts[3]
    plan = [
        (other, watched, ONE_ETHER, "in"),
        (watched, third, ONE_ETHER // 4, "out"),
        (third, fourth, ONE_ETHER // 2, "unwatched: no webhook expected"),
    ]
    step = 0
    while not stop.is_set():
        sender, to, value, label = plan[step % len(plan)]
        tx_hash = await chain.send(sender, to, value)
        amount = f"{value / ONE_ETHER:g} ETH"
        say(f"sent {amount} {sender[:10]}... -> {to[:10]}... ({label}) {tx_hash[:18]}...")
        step += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=TX_INTERVAL_S)
