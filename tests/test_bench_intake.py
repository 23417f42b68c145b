"""bench/intake.py keeps working as the schema grows: a small run, fill to HTTP, on both engines.

The figures themselves are not asserted (benchmarks print them; see bench/README.md): a run
that fills a database the migrations made, files submissions and answers every request of
both endpoints with 200 is what is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_small_intake_bench_runs_from_fill_to_http(engine, tmp_path):
    if engine == "sqlite":
        url = f"sqlite://{tmp_path / 'bench.sqlite3'}"
    else:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        url = f"postgres://postgres@127.0.0.1:5432/gridlink_bench_smoke_{os.getpid()}"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "intake.py"), "--database-url", url,
         "--cases", "3000", "--open", "400", "--submits", "40", "--warmup", "5",
         "--requests", "100", "--concurrency", "4", "--fill-workers", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^fill [\d.]+s \(\w+, 3000 cases, 400 open\)$", out, re.M), out
    assert re.search(r"^submit p50=[\d.]+ms .* p99=[\d.]+ms", out, re.M), out
    assert re.search(r"bare insert .*\{200: 100\}", out), out
    assert re.search(r"open311 POST .*\{200: 100\}", out), out
    assert re.search(r"^open311 rps=\d+ bare rps=\d+ ratio=[\d.]+", out, re.M), out
