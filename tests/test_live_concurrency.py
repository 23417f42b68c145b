"""Real concurrent Open311 requests to a real server: one problem reported at once makes one case.

Runs `gridlink serve` on SQLite (one process, its single writer) and on PostgreSQL (two worker
processes, so the advisory lock is what keeps them apart).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx

from tests.live import live_server

TEXTS = ["福州路300号门口井盖缺了一块，很危险", "福州路300号井盖破了，有人差点踩空",
         "福州路300号门前井盖破损，晚上看不见", "福州路300号的井盖坏了请尽快修",
         "福州路300号门口井盖缺失", "福州路300号井盖碎了", "福州路300号门口井盖塌了",
         "福州路300号附近井盖破损严重"]


def _apikey(url: str, cwd) -> str:
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "portal.cli", "migrate"], env=env, cwd=cwd,
                   check=True, capture_output=True, timeout=120)
    out = subprocess.run([sys.executable, "-m", "portal.cli", "apikey", "race", "--kind",
                          "open311"], env=env, cwd=cwd, check=True, capture_output=True,
                         text=True, timeout=120)
    return out.stdout.strip()


async def _post_all(base: str, key: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def post(n: int, text: str) -> httpx.Response:
            return await client.post("/open311/v2/requests.json", data={
                "api_key": key, "service_code": "manhole", "description": text,
                "lat": f"{31.2345 + n * 0.00002:.6f}", "long": "121.481000",
                "email": f"racer{n}@example.org"})
        return await asyncio.gather(*(post(n, t) for n, t in enumerate(TEXTS)))


def test_simultaneous_posts_of_one_problem_make_one_case(empty_database_url, tmp_path):
    key = _apikey(empty_database_url, tmp_path)
    workers = 2 if empty_database_url.startswith("postgres") else 1
    with live_server(empty_database_url, tmp_path, workers=workers) as base:
        responses = asyncio.run(_post_all(base, key))
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        codes = {r.json()[0]["service_request_id"] for r in responses}
        assert len(codes) == 1, codes
        listed = httpx.get(f"{base}/open311/v2/requests.json",
                           params={"service_code": "manhole"}).json()
        assert [item["service_request_id"] for item in listed] == list(codes)
