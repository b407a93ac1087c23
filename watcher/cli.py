"""Command line: the only place that prints for people or picks an exit code.

Exit codes (also used by the systemd unit, e.g. ``RestartPreventExitStatus=``):

* ``0``  (EXIT_OK): normal stop, including SIGTERM/SIGINT.
* ``1``  (EXIT_FAILURE): the daemon failed at run time (store, node identity, a crash).
* ``2``  (EXIT_CONFIG): the configuration is invalid; nothing was started.
  Operator commands (``deliveries``, ``subscriptions``, ``test-webhook``) exit 1 when what
  they name does not exist or, for ``test-webhook``, when the endpoint did not answer 2xx.
* ``64`` (EXIT_USAGE): the command line itself is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import structlog

from watcher import __version__
from watcher.config import WatcherConfig, load_config
from watcher.errors import ConfigError, WatcherError
from watcher.logs import configure_logging

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_USAGE = 64

DEFAULT_CONFIG = Path(os.environ.get("WATCHER_CONFIG", "/etc/watcher/config.yaml"))

_EPILOG = (
    "exit codes: 0 ok, 1 run-time failure, 2 invalid configuration (nothing started), "
    "64 bad command line"
)


class _Parser(argparse.ArgumentParser):
    """argparse with the usage-error exit code of this program (64, not 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``watcher`` command."""
    parser = _Parser(
        prog="watcher",
        description="Watch blockchain nodes and deliver signed webhooks.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"configuration file (default: $WATCHER_CONFIG or {DEFAULT_CONFIG})",
        )

    run = commands.add_parser("run", help="run the daemon in the foreground", epilog=_EPILOG)
    with_config(run)
    check = commands.add_parser(
        "check-config", help="validate a configuration file and exit", epilog=_EPILOG
    )
    with_config(check)
    demo = commands.add_parser(
        "demo", help="start a dev chain, a receiver and the daemon, and show webhooks arriving"
    )
    demo.add_argument("--anvil", help="path of the anvil binary (default: $WATCHER_ANVIL or PATH)")
    demo.add_argument(
        "--max-webhooks",
        type=int,
        default=0,
        help="exit after this many verified webhooks (default: run until Ctrl-C)",
    )
    _add_operator_commands(commands, with_config)
    return parser


def _add_operator_commands(commands: Any, with_config: Callable[[Any], None]) -> None:
    deliveries = commands.add_parser(
        "deliveries", help="inspect and re-queue webhook deliveries (safe while the daemon runs)"
    )
    what = deliveries.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = what.add_parser("list", help="list deliveries, newest last")
    with_config(listing)
    listing.add_argument("--subscription", help="only this subscription")
    listing.add_argument("--status", choices=["pending", "succeeded", "failed"])
    listing.add_argument(
        "--since", help="created since: 2026-11-23T10:00:00Z, or an age: 30m, 2h, 7d"
    )
    listing.add_argument("--limit", type=int, default=50, help="show the latest N (default 50)")
    show = what.add_parser("show", help="one delivery with its request body and attempts")
    with_config(show)
    show.add_argument("id", type=int)
    retry = what.add_parser("retry", help="send one delivery again now")
    with_config(retry)
    retry.add_argument("id", type=int)
    replay = what.add_parser("replay", help="re-queue every delivery that failed in a window")
    with_config(replay)
    replay.add_argument("--subscription", required=True)
    replay.add_argument("--since", required=True, help="failed since (time or age, as for list)")
    replay.add_argument("--until", help="failed before (default: now)")

    subs = commands.add_parser("subscriptions", help="subscription status, enable and disable")
    action = subs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    with_config(action.add_parser("list", help="status, error count and last success"))
    for name, text in (("enable", "enable and deliver the backlog"), ("disable", "stop sending")):
        cmd = action.add_parser(name, help=text)
        with_config(cmd)
        cmd.add_argument("subscription")
    test = commands.add_parser(
        "test-webhook", help="send a signed sample event to a subscription and show the answer"
    )
    with_config(test)
    test.add_argument("subscription")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``watcher`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "run":
        return _run(args.config)
    if args.command == "demo":
        return _demo(args.anvil, args.max_webhooks)
    return _operate(args)


def _operate(args: argparse.Namespace) -> int:
    """The operator commands: one action on the store (or one test request), then print."""
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    command = f"{args.command} {getattr(args, 'action', '')}".strip()
    try:
        ok, lines = asyncio.run(_operation(command, args, config))
    except ValueError as exc:  # a bad time on the command line
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WatcherError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for line in lines:
        print(line)
    return EXIT_OK if ok else EXIT_FAILURE


async def _operation(
    command: str, args: argparse.Namespace, config: WatcherConfig
) -> tuple[bool, list[str]]:
    from watcher import admin, reports

    now = time.time()
    if command == "deliveries list":
        since = None if args.since is None else admin.parse_when(args.since, now)
        rows = await admin.list_deliveries(
            config, subscription=args.subscription, status=args.status, since=since,
            limit=args.limit,
        )  # fmt: skip
        return True, reports.deliveries_table(rows)
    if command == "deliveries show":
        record, attempts = await admin.show_delivery(config, args.id)
        return True, reports.delivery_details(record, attempts)
    if command == "deliveries retry":
        await admin.retry_delivery(config, args.id)
        return True, [f"delivery {args.id} is due now"]
    if command == "deliveries replay":
        since = admin.parse_when(args.since, now)
        until = now if args.until is None else admin.parse_when(args.until, now)
        count = await admin.replay(config, args.subscription, since, until)
        return True, [f"re-queued {count} failed deliveries of {args.subscription}"]
    if command == "subscriptions list":
        return True, reports.subscriptions_table(await admin.subscriptions(config))
    if command in ("subscriptions enable", "subscriptions disable"):
        enable = args.action == "enable"
        changed = await admin.set_enabled(config, args.subscription, enable)
        state = "enabled" if enable else "disabled"
        return True, [f"{args.subscription} {state}" + ("" if changed else " (already)")]
    if command == "test-webhook":
        event, result = await admin.test_webhook(config, args.subscription)
        return result.ok, reports.test_webhook_result(event, result)
    raise AssertionError(command)


def _load(path: Path) -> WatcherConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: invalid configuration:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None


def _check_config(path: Path) -> int:
    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    addresses = sum(len(s.addresses) for s in config.subscriptions)
    print(
        f"{path}: ok ({len(config.chains)} chain(s), {len(config.subscriptions)} subscription(s), "
        f"{addresses} watched address(es))"
    )
    return EXIT_OK


def _run(path: Path) -> int:
    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    configure_logging(config.log.level, config.log.format)
    from watcher.daemon import serve

    failures: list[WatcherError] = []
    invalid: list[ConfigError] = []
    try:
        asyncio.run(serve(config))
    except* ConfigError as group:
        # Found only once the store is open, e.g. a file subscription reusing the id of
        # one created through the API: as invalid as any other configuration mistake.
        invalid = _leaves(group)
    except* WatcherError as group:
        failures = _leaves(group)
    for error in invalid:
        structlog.get_logger().error(
            "watcher_config_invalid", source=error.source, problems=[str(i) for i in error.issues]
        )
    for exc in failures:
        structlog.get_logger().error("watcher_failed", error=str(exc))
    if invalid:
        return EXIT_CONFIG
    return EXIT_FAILURE if failures else EXIT_OK


def _demo(anvil: str | None, max_webhooks: int) -> int:
    from watcher.demo import DemoError, run_demo

    configure_logging("warning", "auto")
    try:
        asyncio.run(run_demo(anvil=anvil, max_webhooks=max_webhooks, say=_say))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\ndemo stopped", file=sys.stderr)
    return EXIT_OK


def _say(line: str) -> None:
    print(line, flush=True)


_E = TypeVar("_E", bound=WatcherError)


def _leaves(group: BaseExceptionGroup[_E]) -> list[_E]:
    out: list[_E] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
