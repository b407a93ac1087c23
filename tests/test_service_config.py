"""The ``api:`` and ``metrics:`` sections: off by default; tokens from the environment or a file."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tests.test_config import ENV, VALID, issues, load, where

TOKEN = "a-long-enough-api-token"


def with_sections(text: str) -> str:
    return VALID + text


def test_without_the_sections_neither_listener_is_configured(tmp_path: Path) -> None:
    config = load(tmp_path, VALID)
    assert config.api is None
    assert config.metrics is None


def test_api_token_from_the_environment_and_loopback_defaults(tmp_path: Path) -> None:
    text = with_sections(
        "api:\n  port: 8080\n  token: ${API_TOKEN}\nmetrics:\n  port: 9464\n"
        "  ready_max_lag_blocks: 5\n"
    )
    config = load(tmp_path, text, {**ENV, "API_TOKEN": TOKEN})
    assert config.api is not None
    assert (config.api.listen, config.api.port, config.api.token) == ("127.0.0.1", 8080, TOKEN)
    assert TOKEN not in repr(config.api)
    assert config.metrics is not None
    assert config.metrics.listen == ipaddress.IPv4Address("127.0.0.1")
    assert (config.metrics.port, config.metrics.ready_max_lag_blocks) == (9464, 5)


def test_api_token_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = load(tmp_path, with_sections("api:\n  port: 0\n  token_file: token\n"))
    assert config.api is not None
    assert config.api.token == TOKEN


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ("api:\n  port: 8080\n  token: inline-secret-token-1234\n", "api.token", "environment"),
        ("api:\n  port: 8080\n", "api.token", "exactly one of token or token_file"),
        ("api:\n  port: 8080\n  token_file: missing\n", "api.token_file", "cannot read"),
        ("api:\n  port: 8080\n  token: ${SHORT}\n", "api.token", "at least 16"),
        ("api:\n  port: 70000\n  token: ${API_TOKEN}\n", "api.port", "less than or equal"),
        ("api:\n  listen: localhost\n  port: 1\n  token: ${API_TOKEN}\n", "api.listen", "IP"),
        ("metrics:\n  ready_max_poll_age_s: 0\n", "metrics.port", "is required"),
        (
            "api:\n  port: 9000\n  token: ${API_TOKEN}\nmetrics:\n  port: 9000\n",
            "metrics.port",
            "same address and port",
        ),
    ],
)
def test_bad_listener_settings_name_their_key(
    tmp_path: Path, section: str, path: str, message: str
) -> None:
    found = issues(tmp_path, with_sections(section), {**ENV, "API_TOKEN": TOKEN, "SHORT": "short"})
    assert path in [p for p, _ in where(found)], found
    assert any(message in i.message for i in found if i.path == path), found
