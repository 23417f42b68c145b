"""The `gridlink` command as an operator uses it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import live_server

GRIDLINK = [sys.executable, "-m", "portal.cli"]


def run(args: list[str], url: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url}
    return subprocess.run(GRIDLINK + args, env=env, cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_seed_demo_prints_the_admin_password_once(empty_database_url, tmp_path):
    first = run(["seed-demo"], empty_database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Admin account: admin / " in first.stdout
    second = run(["seed-demo"], empty_database_url, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Admin account" not in second.stdout and "already existed" in second.stdout


def test_createuser_and_apikey(empty_database_url, tmp_path):
    assert run(["migrate"], empty_database_url, tmp_path).returncode == 0
    ok = run(["createuser", "li.operator", "--role", "operator", "--password",
              "a-long-password"], empty_database_url, tmp_path)
    assert ok.returncode == 0 and "Created operator account li.operator" in ok.stdout
    taken = run(["createuser", "li.operator", "--role", "operator", "--password",
                 "a-long-password"], empty_database_url, tmp_path)
    assert taken.returncode == 1 and "taken" in taken.stderr
    short = run(["createuser", "wang", "--role", "operator", "--password", "short"],
                empty_database_url, tmp_path)
    assert short.returncode == 1 and "at least 10" in short.stderr
    dept = run(["createuser", "roads", "--role", "department", "--department", "nowhere",
                "--password", "a-long-password"], empty_database_url, tmp_path)
    assert dept.returncode == 1 and "No department" in dept.stderr
    key = run(["apikey", "12345 system", "--kind", "hotline", "--line", "12345"],
              empty_database_url, tmp_path)
    assert key.returncode == 0 and len(key.stdout.strip()) >= 30
    no_line = run(["apikey", "x", "--kind", "hotline"], empty_database_url, tmp_path)
    assert no_line.returncode == 1 and "12345" in no_line.stderr


def test_apikeys_lists_the_keys_without_them_and_deactivates_one(empty_database_url, tmp_path):
    assert run(["migrate"], empty_database_url, tmp_path).returncode == 0
    empty = run(["apikeys"], empty_database_url, tmp_path)
    assert empty.returncode == 0 and "No API keys yet" in empty.stdout
    hotline = run(["apikey", "12319 城建热线", "--kind", "hotline", "--line", "12319"],
                  empty_database_url, tmp_path).stdout.strip()
    app = run(["apikey", "随手拍", "--kind", "open311"], empty_database_url, tmp_path).stdout.strip()
    listed = run(["apikeys"], empty_database_url, tmp_path)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert "open311" in lines[0] and "active" in lines[0] and "随手拍" in lines[0]
    assert "hotline line 12319" in lines[1] and "12319 城建热线" in lines[1]
    assert hotline not in listed.stdout and app not in listed.stdout
    first_id = lines[1].split()[0]

    off = run(["apikeys", "deactivate", first_id], empty_database_url, tmp_path)
    assert off.returncode == 0 and "deactivated" in off.stdout
    after = run(["apikeys"], empty_database_url, tmp_path).stdout.splitlines()
    assert "deactivated" in after[1] and " active " in after[0]
    missing = run(["apikeys", "deactivate", "999"], empty_database_url, tmp_path)
    assert missing.returncode == 1 and "no API key" in missing.stderr
    bad = run(["apikeys", "deactivate", "0"], empty_database_url, tmp_path)
    assert bad.returncode == 2


def test_two_workers_start_on_a_fresh_sqlite_file(tmp_path):
    """`serve` migrates and seeds once before uvicorn starts its workers: they only read the
    reference data (seeding it at the same moment, they failed with "database is locked")."""
    url = f"sqlite://{tmp_path / 'fresh.sqlite3'}"
    with live_server(url, tmp_path, workers=2) as base:
        log = next(tmp_path.glob("server-*.log"))
        deadline = time.monotonic() + 60
        # Both workers, not just the one that answered first.
        while log.read_text().count("Application startup complete") < 2:
            assert "Traceback" not in log.read_text() and time.monotonic() < deadline
            time.sleep(0.05)
        services = httpx.get(f"{base}/open311/v2/services.json").json()
        assert {s["service_code"] for s in services} >= {"garbage", "manhole"}
    assert "Traceback" not in log.read_text() and "locked" not in log.read_text()


def test_workers_start_while_another_process_writes(tmp_path):
    """A worker starting while another one holds SQLite's write lock (a long write, or the
    other worker's own start) reads the reference data and needs no lock."""
    path = tmp_path / "busy.sqlite3"
    url = f"sqlite://{path}"
    assert run(["migrate"], url, tmp_path).returncode == 0
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        assert writer.execute("SELECT count(*) FROM category").fetchone()[0] > 0
        writer.execute("BEGIN IMMEDIATE")
        with live_server(url, tmp_path, workers=2) as base:
            assert httpx.get(f"{base}/healthz").status_code == 200
        writer.execute("ROLLBACK")
    finally:
        writer.close()
