"""The `gridlink` command as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
