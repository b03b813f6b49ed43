"""Schemathesis 4 against `vjm up`: every check, all four phases, as an end user and as a service: 0 failures.

A real `vjm up` subprocess serves this test's own database (cloned from the migrated
template) on a free port. `st run` (the CLI, as anyone would run it) loads `/openapi.json`
with the caller's token, so it gets that caller's document (openapi_callers.py), then runs
every check (st's default) over the examples, coverage, fuzzing and stateful phases, the event
stream included (each event read is checked against the document). It is bounded for CI:
`--max-examples` per operation and a fixed `--seed`. tests/http/schemathesis.toml allows what
the document states but JSON Schema cannot (a body over the size limit, date_to before
date_from, an idempotency key reused for another body, a deleted job's readable history), as
`st explain ST201` / `ST202` / `ST301` say;
nothing else is relaxed, and a test holds the configuration to exactly that.

The JSON report must show every operation tested, each phase a success, no failure, no
error, and no pattern schemathesis could not read (it would skip what it cannot generate).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig

from tests.support.served import vjm_up
from videojobs import Settings
from videojobs.http import create_app
from videojobs.http.auth import SERVICE_ROLE, USER_ROLE, mint_token
from videojobs.http.openapi_callers import CALLERS as CALLER_DOCUMENTS

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 10
SEED = 1
PHASES = ("examples", "coverage", "fuzzing", "stateful")
CALLERS = {"end user": ("alice", USER_ROLE), "service": ("fleet-1", SERVICE_ROLE)}


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """`vjm up` on a free port against this test's database; yields the base URL (its output goes to a file)."""
    # A held claim or heartbeat answers within VJM_HTTP_MAX_WAIT (the document says the server may cap
    # `wait`): one second here, so that the cases which ask for up to 30 s keep the run bounded.
    async with vjm_up(database_url, tmp_path / "vjm-up.out", VJM_HTTP_MAX_WAIT="1") as url:
        yield url


def run_schemathesis(base_url: str, token: str, report: Path) -> dict:
    """`st run` over all phases with every check (st's default, as CONFIG leaves it); the parsed JSON report.

    Not `--checks all`: a check named on the command line overrides CONFIG's one exemption.
    """
    command = [str(BIN / "st"), "--config-file", str(CONFIG), "run", f"{base_url}/openapi.json",
               "--header", f"Authorization: Bearer {token}", "--phases", ",".join(PHASES), "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
               "--request-timeout", "30", "--no-color", "--report", "json", "--report-json-path", str(report)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=report.parent)
    print(result.stdout[-3000:], f"\nst run took {time.monotonic() - started:.0f}s")
    assert report.exists(), f"no report: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return json.loads(report.read_text())


def test_every_check_runs_on_every_operation_but_the_one_documented_exemption() -> None:
    config = SchemathesisConfig.from_path(str(CONFIG))
    app = create_app(settings=Settings(database_url="postgresql://unused/unused", jwt_secret="s" * 40))
    checks = CHECKS.get_all_names()
    for caller in CALLER_DOCUMENTS:
        schema = schemathesis.openapi.from_dict(app.openapi(caller), config=config)
        disabled = {(operation.label, name) for operation in (r.ok() for r in schema.get_all_operations())
                    for phase in PHASES for name in checks
                    if not schema.config.checks_config_for(operation=operation, phase=phase).get_by_name(
                        name=name).enabled}
        assert disabled == {("GET /api/v1/jobs/{job_id}/events", "use_after_free")}, caller
    assert len(checks) >= 14


@pytest.mark.slow
@pytest.mark.parametrize("caller", list(CALLERS))
def test_schemathesis_finds_no_failure(served: str, caller: str, tmp_path: Path) -> None:
    sub, role = CALLERS[caller]
    token = mint_token(os.environ["VJM_JWT_SECRET"], sub=sub, role=role, audience="authenticated")
    report = run_schemathesis(served, token, tmp_path / "report.json")
    assert report["failures"] == [] and report["errors"] == [], json.dumps(report["failures"] + report["errors"])[:4000]
    assert report["exit_code"] == 0 and report["complete"], report["stop_reason"]
    assert {phase: report["phases"][phase]["status"] for phase in PHASES} == dict.fromkeys(PHASES, "success")
    operations = report["operations"]
    assert operations["tested"] == operations["total"] >= 24 and operations["errored"] == 0, operations
    assert report["warnings"]["unsupported_regex"] == [], report["warnings"]["unsupported_regex"]
    assert report["test_cases"]["generated"] >= operations["total"] * MAX_EXAMPLES
