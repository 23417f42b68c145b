"""Property-based requests generated from the app's own OpenAPI schema: no input may give a 500.

A real `gridlink serve` runs on each engine with an Open311 key, a hotline key and a staff
account, so the generated requests reach past authentication as well as being refused by it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.live import live_server


def _cli(args: list[str], url: str, cwd) -> str:
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    from tests.conftest import PG_URL, _pg_execute, require_server

    workdir = tmp_path_factory.mktemp("fuzz")
    schema_name = None
    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        import asyncio

        schema_name = f"gl_fuzz_{os.getpid()}"
        asyncio.run(_pg_execute(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE; "
                                f"CREATE SCHEMA {schema_name};"))
        url = f"{PG_URL}?schema={schema_name}"
    else:
        url = f"sqlite://{workdir / 'fuzz.sqlite3'}"
    _cli(["migrate"], url, workdir)
    keys = {
        "open311": _cli(["apikey", "fuzz", "--kind", "open311"], url, workdir),
        "hotline": _cli(["apikey", "fuzz", "--kind", "hotline", "--line", "12345"], url, workdir),
    }
    _cli(["createuser", "fuzz-admin", "--role", "admin", "--password", "fuzz-password-1"],
         url, workdir)
    with live_server(url, workdir, env={"GRIDLINK_THROTTLE_NEW_REPORTS": "100000/minute"}) as base:
        login = httpx.post(f"{base}/api/v1/staff/login",
                           json={"username": "fuzz-admin", "password": "fuzz-password-1"})
        token = login.json().get("token") if login.status_code == 200 else None
        yield {"base": base, "keys": keys, "token": token,
               "schema": schemathesis.openapi.from_url(f"{base}/openapi.json")}
    if schema_name:
        import asyncio

        asyncio.run(_pg_execute(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE;"))


EXAMPLES = int(os.environ.get("GRIDLINK_FUZZ_EXAMPLES", "25"))


def _operations(api) -> list:
    return [result.ok() for result in api["schema"].get_all_operations()]


def test_no_input_gives_a_server_error(api):
    # Operations are walked by hand: schemathesis' pytest loader does not support pytest 9 yet.
    failures = []
    for operation in _operations(api):

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case):
            rng = random.Random(repr(case.body) + repr(case.query))
            headers = {}
            # Half the cases carry valid credentials, to reach the code behind the checks.
            if rng.random() < 0.5:
                if api["token"]:
                    headers["Authorization"] = f"Bearer {api['token']}"
                headers["X-Api-Key"] = api["keys"]["hotline"]
                for part in (case.body, case.query):
                    if isinstance(part, dict) and "api_key" in part:
                        part["api_key"] = api["keys"]["open311"]
            case.call_and_validate(base_url=api["base"], headers=headers,
                                   checks=[not_a_server_error])

        try:
            call()
        except Exception as exc:  # collect every failing operation, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
