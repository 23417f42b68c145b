"""Fan-out: one progress update to N Telegram followers, through the real delivery worker and
the fake Bot API server keeping Telegram's broadcast limits.

    .venv/bin/python bench/fanout.py [--followers 10000] [--database-url URL]
        [--workers N --redis-url redis://127.0.0.1:6379/14]

1. Starts tests/fake_telegram.py as a process of its own (as Telegram is), with the limits on:
   at most 30 messages in any sliding second in all, one a second to one chat, 429 with
   retry_after when broken. Registers the N chats (people who started the bot).
2. Migrates a fresh database and writes one case with N followers (Person, Identity and
   Subscription rows in bulk; the intake is not needed to follow a case).
3. Runs the real delivery worker in this process (portal.delivery.build_worker: the aiogram
   sender, the settings' pace, telegram_rate 29 by default) with no settling delay and no quiet
   hours, changes the case's status once (portal.cases.service.change_status) and waits until
   every follower got the update, reading the fake's counts (GET /_fake/stats). With
   --workers N (N > 1) it runs N `gridlink worker` processes instead, sharing the pace
   through Redis (--redis-url), as a city would.

Prints progress every 10 s, then: the sustained rate (messages between the first and the last
one, over that time, at the fake's clock), the 429s the fake answered, chats that got the update
twice, the time from the change to the last message, and the deliveries' states in the
database. The last line reads `delivered=10000/10000 rate=28.9/s 429s=0 seconds=346.0`.

Goal (issue 6): at least 95% of the 30 messages a second ceiling (28.5/s), sustained, with no
429. Without --database-url a fresh SQLite file in a temporary directory is used; with a
PostgreSQL URL the bench works in a schema of its own (gl_bench_fanout_<pid>) in that database
and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from feedback.models import Delivery  # noqa: E402
from portal import db  # noqa: E402
from portal.cases.models import Case, Identity, Person, Status, Subscription  # noqa: E402
from portal.cases.service import change_status  # noqa: E402
from portal.delivery import build_worker  # noqa: E402
from portal.settings import Settings  # noqa: E402
from tests.fake_telegram import TOKEN  # noqa: E402

# Chat ids of the followers: first, first + 1, ...
FIRST_CHAT = 7_000_000_001
STALL_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_telegram", "--port", str(port),
                             "--limits"], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_fake/stats", timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the fake Telegram server did not start")
            time.sleep(0.1)


async def pg_schema(url: str, create: bool) -> str:
    """The URL with a schema of the bench's own (created or dropped)."""
    import asyncpg

    schema = f"gl_bench_fanout_{os.getpid()}"
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1).split("?")[0])
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    return f"{url.split('?')[0]}?schema={schema}"


async def fill(followers: int) -> Case:
    now = datetime.now(UTC)
    case = await Case.create(code="GL-20261128-0001", category="garbage", status=Status.NEW,
                             summary="南京东路100号门口垃圾堆了好几天没人清运",
                             lat=31.2304, lng=121.4737, first_reported_at=now,
                             last_reported_at=now, report_count=1, reporter_count=1)
    batch = 2000
    for start in range(0, followers, batch):
        ids = range(start + 1, min(start + batch, followers) + 1)
        await Person.bulk_create([Person(id=i, language="zh-CN" if i % 3 else "en")
                                  for i in ids])
        await Identity.bulk_create([Identity(key=f"tg:{FIRST_CHAT + i - 1}", kind="telegram",
                                             person_id=i) for i in ids])
        await Subscription.bulk_create([Subscription(case_id=case.id, person_id=i,
                                                     identity=f"tg:{FIRST_CHAT + i - 1}",
                                                     reason="follower") for i in ids])
    return case


def start_workers(n: int, url: str, fake_base: str, redis_url: str,
                  workdir: Path) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLINK_")}
    env.update({"GRIDLINK_DATABASE_URL": url, "GRIDLINK_TELEGRAM_BOT_TOKEN": TOKEN,
                "GRIDLINK_TELEGRAM_API_BASE": fake_base, "GRIDLINK_UPDATES_SETTLE_SECONDS": "0",
                "GRIDLINK_QUIET_HOURS": "", "GRIDLINK_REDIS_URL": redis_url,
                "GRIDLINK_SECRET_KEY": "bench-fanout", "GRIDLINK_MEDIA_DIR": str(workdir),
                "GRIDLINK_PUBLIC_BASE_URL": "https://gridlink.example.org"})
    script = Path(sys.executable).with_name("gridlink")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "portal.cli"]
    procs = []
    for i in range(n):
        with open(workdir / f"worker-{i}.log", "wb") as log:
            procs.append(subprocess.Popen([*command, "worker"], env=env, cwd=workdir,
                                          stdout=log, stderr=subprocess.STDOUT))
    return procs


def started(workdir: Path) -> bool:
    return all("delivering through telegram" in log.read_text()
               for log in workdir.glob("worker-*.log"))


async def run(followers: int, url: str, workers: int = 1, redis_url: str = "") -> int:
    port = free_port()
    fake_base = f"http://127.0.0.1:{port}"
    fake = start_fake(port)
    worker = None
    processes: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="fanout-"))
    try:
        async with httpx.AsyncClient(base_url=fake_base, timeout=30) as http:
            await http.post("/_fake/chats", json={"first": FIRST_CHAT, "count": followers})
            t = time.perf_counter()
            await db.migrate(url)
            await db.init_db(url)
            case = await fill(followers)
            engine = "postgres" if url.startswith("postgres") else "sqlite"
            print(f"fill {time.perf_counter() - t:.1f}s ({engine}, {followers} followers)",
                  flush=True)
            settings = Settings(database_url=url, telegram_bot_token=TOKEN,
                                telegram_api_base=fake_base, updates_settle_seconds=0.0,
                                quiet_hours="", public_base_url="https://gridlink.example.org",
                                redis_url="", secret_key="bench-fanout")
            if workers > 1:
                processes = start_workers(workers, url, fake_base, redis_url, workdir)
                # Until each has started (imports, migrations): the change finds them all
                # waiting.
                deadline = time.monotonic() + 120
                while not started(workdir):
                    if any(p.poll() is not None for p in processes) or \
                            time.monotonic() > deadline:
                        sys.exit(f"a worker did not start: see {workdir}")
                    await asyncio.sleep(0.2)
            else:
                worker = build_worker(settings)
                worker.start()
            changed = time.time()
            await change_status(case.id, Status.ACCEPTED, actor="bench")
            stats, progress_at, seen, seen_at = {}, changed + 10, -1, time.monotonic()
            while True:
                await asyncio.sleep(0.25)
                stats = (await http.get("/_fake/stats")).json()
                if stats["messages"] != seen:
                    seen, seen_at = stats["messages"], time.monotonic()
                if stats["chats"] >= followers:
                    break
                if time.monotonic() - seen_at > STALL_S:
                    print(f"no message for {STALL_S:.0f} s: giving up", flush=True)
                    break
                if time.time() >= progress_at:
                    progress_at += 10
                    span = (stats["last"] or 0) - (stats["first"] or 0)
                    print(f"  {time.time() - changed:6.1f}s  {stats['chats']:6d} chats  "
                          f"{(stats['messages'] - 1) / span if span > 0 else 0:5.1f}/s  "
                          f"429s={stats['429s']}", flush=True)
        if worker is not None:
            await worker.close()
            worker = None
        for proc in processes:
            proc.terminate()
            proc.wait()
        states = {}
        for status in ("pending", "sending", "sent", "failed", "dropped"):
            states[status] = await Delivery.filter(case_id=case.id, status=status).count()
        await db.close_db()
    finally:
        if worker is not None:
            await worker.close()
        fake.terminate()
        fake.wait()
        if not processes:
            shutil.rmtree(workdir, ignore_errors=True)
    span = (stats["last"] or 0) - (stats["first"] or 0)
    rate = (stats["messages"] - 1) / span if span > 0 else 0.0
    to_last = (stats["last"] or changed) - changed
    first = (stats["first"] or changed) - changed
    print(f"first message {first:.2f}s after the change; last {to_last:.1f}s after it")
    print(f"messages={stats['messages']} to {stats['chats']} chats, "
          f"{stats['repeated']} chats got it twice; overall "
          f"{stats['messages'] / to_last if to_last > 0 else 0:.1f}/s")
    print("deliveries: " + " ".join(f"{k}={v}" for k, v in states.items()))
    print(f"goal: >= 28.5/s with no 429 {'met' if rate >= 28.5 and not stats['429s'] else 'NOT met'}")
    if processes:
        print(f"{workers} worker processes, pace shared through Redis; logs in {workdir}")
    print(f"delivered={stats['chats']}/{followers} rate={rate:.1f}/s 429s={stats['429s']} "
          f"seconds={to_last:.1f}", flush=True)
    return 0 if stats["chats"] >= followers else 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL URL (a schema of its own is used); default: SQLite")
    parser.add_argument("--workers", type=int, default=1,
                        help="more than 1: that many `gridlink worker` processes")
    parser.add_argument("--redis-url", default="",
                        help="with --workers: the Redis the processes share the pace through")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers needs --redis-url: processes share the pace through Redis")
    logging.basicConfig(level=logging.WARNING)
    if args.database_url.startswith("postgres"):
        url = await pg_schema(args.database_url, create=True)
        try:
            return await run(args.followers, url, args.workers, args.redis_url)
        finally:
            await pg_schema(args.database_url, create=False)
    with tempfile.TemporaryDirectory() as tmp:
        return await run(args.followers, f"sqlite://{Path(tmp) / 'fanout.sqlite3'}",
                         args.workers, args.redis_url)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
