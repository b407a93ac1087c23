"""Helpers for tests of the admin API and the metrics listener: config sections and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

API_TOKEN = "test-api-token-0123456789abcdef"


def service_sections(tmp_path: Path, **metrics: Any) -> dict[str, Any]:
    """``api`` and ``metrics`` sections on free loopback ports, the token in a file."""
    token_file = tmp_path / "api-token"
    token_file.write_text(API_TOKEN + "\n")
    return {
        "api": {"port": 0, "token_file": str(token_file)},
        "metrics": {"port": 0, **metrics},
    }


class ApiClient:
    """A bearer-token client of one daemon's API; answers are (status, JSON or None)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        async with self._session.request(
            method,
            self.base_url + path,
            json=json,
            data=data,
            headers=self.headers if headers is None else headers,
        ) as response:
            body = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, body.decode() or None


@asynccontextmanager
async def api_client(base_url: str | None, token: str = API_TOKEN) -> AsyncIterator[ApiClient]:
    assert base_url is not None, "the daemon has no API listener"
    async with aiohttp.ClientSession() as session:
        yield ApiClient(session, base_url, token)
