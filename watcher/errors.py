"""The WatcherError tree.

Every error the daemon raises on purpose derives from :class:`WatcherError`, so that
``cli.py`` can turn it into a message and an exit code without catching unrelated bugs.
"""

from __future__ import annotations

from dataclasses import dataclass


class WatcherError(Exception):
    """Base of every error raised deliberately by watcher."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path or '<root>'}{where}: {self.message}"


class ConfigError(WatcherError):
    """The configuration is invalid; carries every issue found, not just the first."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: {len(issues)} configuration error(s)")


class NodeError(WatcherError):
    """A node could not be reached or answered something unusable; the caller retries."""

    def __init__(self, chain: str, method: str, reason: str, *, code: int | None = None) -> None:
        self.chain = chain
        self.method = method
        self.reason = reason
        self.code = code
        super().__init__(f"{chain}: {method}: {reason}")


class ChainMismatchError(WatcherError):
    """The node serves a different chain than the one the store was built from."""

    def __init__(self, chain: str, expected: int, actual: int) -> None:
        self.chain = chain
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{chain}: node reports chain id {actual}, the store was built from chain id {expected}"
        )


class StoreError(WatcherError):
    """The store could not be opened or is in an unexpected state."""


class NodeRpcError(NodeError):
    """The node understood the call and refused it; ``code`` is its JSON-RPC error code.

    ``http_status`` is the status the error came with: bcoin answers 200, Bitcoin Core
    500 (or 404 for an unknown method).
    """

    def __init__(
        self, chain: str, method: str, code: int | None, message: str, http_status: int
    ) -> None:
        self.message = message
        self.http_status = http_status
        where = f"HTTP {http_status}, " if http_status not in (None, 200) else ""
        super().__init__(chain, method, f"RPC error {code} ({where}{message})", code=code)
