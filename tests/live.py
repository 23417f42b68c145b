"""A real `gridlink serve` process on loopback, for tests that need real HTTP and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(database_url: str, workdir: Path, *, workers: int = 1, env: dict | None = None,
                deadline_s: float = 60.0):
    """Yields the base URL once /healthz answers; stops the server afterwards."""
    port = free_port()
    full_env = {**os.environ, "GRIDLINK_DATABASE_URL": database_url,
                "GRIDLINK_MEDIA_DIR": str(workdir / "media"), **(env or {})}
    log = open(workdir / f"server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        cwd=workdir, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + deadline_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(workdir / log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise RuntimeError("server did not start in time")
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
