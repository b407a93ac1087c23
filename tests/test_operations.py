"""What operators rely on outside the API: JSON log lines only, and a private store file."""

from __future__ import annotations

import io
import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.conftest import reset_logging
from watcher.logs import configure_logging
from watcher.store import SQLiteStore


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        yield out
    finally:
        reset_logging()


def test_a_library_traceback_is_one_json_line_like_ours(json_log: io.StringIO) -> None:
    structlog.get_logger().info("watcher_started", chains=["dev"])
    try:
        raise ValueError("bad request line")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    logging.getLogger("aiohttp.server").info("below the library threshold")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["watcher_started", "Error handling request"]
    library = lines[1]
    assert (library["level"], library["logger"]) == ("error", "aiohttp.server")
    assert "ValueError: bad request line" in library["exception"]


async def test_a_new_store_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "state" / "watcher.db")
    await store.probe_write(1.0)
    await store.close()
    for path in (tmp_path / "state").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
