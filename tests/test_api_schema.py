"""The OpenAPI document is true: schemathesis drives the live API and finds no server error.

Schemathesis runs as its own process (its command line, as an operator would run it) against
an in-process daemon on anvil. It generates valid and invalid requests from the document at
``/api/openapi.json`` and checks every answer against it: documented status codes, content
types and response schemas, rejection of invalid input, and 401 without the token.

``positive_data_acceptance`` is left out: some rules cannot be written in JSON Schema (an
EIP-55 checksum, a condition's operand, the SSRF guard on callback URLs), so a request can
match the schema and still get its 422.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.api_kit import API_TOKEN, service_sections
from tests.conftest import Harness
from tests.receiver import Receiver
from watcher.devchain import Anvil

SCHEMATHESIS = Path(sys.executable).with_name("st")
RUN_TIMEOUT_S = 100


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    anvil: Anvil, receiver: Receiver, harness: Harness, tmp_path: Path
) -> None:
    accounts = await anvil.accounts()
    config = harness.write_config(
        anvil.rpc_url,
        [{"id": "from-file", "addresses": [accounts[1]], "url": receiver.url}],
        sections=service_sections(tmp_path),
    )
    async with harness.running(config) as daemon:
        assert daemon.api_url is not None
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{daemon.api_url}/api/openapi.json",
            "--header", f"Authorization: Bearer {API_TOKEN}",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "15", "--seed", "20261123", "--workers", "1",
            "--request-timeout", "10",
            "--report-dir", str(tmp_path / "report"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
            cwd=tmp_path,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=RUN_TIMEOUT_S)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report
