"""Telegram webhook: updates per second and p99 latency of POST /bot/telegram/webhook for a mix of
conversation steps, next to a bare aiogram echo bot fed the same updates the same way.

    .venv/bin/python bench/telegram_webhook.py [--users 200] [--concurrency 50]
        [--database-url URL]

Both bots run in this process with the real aiogram client, talking over loopback HTTP to the
fake Bot API server of tests/fake_telegram.py (in a thread of its own). Updates are POSTed
through the ASGI interface (httpx's ASGITransport), in waves: every user sends one step, the
bot finishes them all, then the next step. A user's conversation: /start, "I agree", a one-line
description, the suggested category, the location, "Send the report" (the intake files a case),
/my. The bare bot is a FastAPI route that parses the update and hands it to a Dispatcher task
(no inbox), whose handlers answer each message with its text and each button press with an
answer: the same updates (replayed with fresh update ids), the same waves.

Prints, per bot: updates per second (all updates / wall time including handling) and the
webhook's p50/p99 answer time (the POST alone: Gridlink claims the update in the inbox before
answering). Without --database-url a fresh SQLite file in a temporary directory is used; a
PostgreSQL URL names a dedicated database that is dropped and created.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.types import CallbackQuery, Message, Update  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from intake import prepare_database  # noqa: E402

from bot.telegram.models import TelegramUpdate  # noqa: E402
from portal import db, logs  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.cases.models import Case  # noqa: E402
from portal.settings import Settings  # noqa: E402
from tests.fake_telegram import TOKEN, FakeTelegram, User  # noqa: E402

SECRET = "bench-secret"
ROADS = ["南京东路", "南京西路", "西藏中路", "福州路", "广东路", "九江路", "汉口路", "延安东路"]
PROBLEMS = ["门口垃圾满了", "路灯不亮", "人行道有个大坑", "窨井盖松动", "共享单车乱停放"]


def start_fake() -> FakeTelegram:
    fake = FakeTelegram()
    ready = threading.Event()

    def run():
        async def serve():
            await fake.start()
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(serve())

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return fake


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def echo_app(fake: FakeTelegram) -> tuple[FastAPI, Bot, set]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base)))
    dp = Dispatcher(disable_fsm=True)
    tasks: set[asyncio.Task] = set()

    @dp.message()
    async def echo(message: Message):
        await message.answer(message.text or message.caption or "ok")

    @dp.callback_query()
    async def pressed(query: CallbackQuery):
        await query.answer()

    app = FastAPI()

    @app.post("/bot/telegram/webhook")
    async def webhook(request: Request):
        update = Update.model_validate(await request.json(), context={"bot": bot})
        task = asyncio.create_task(dp.feed_update(bot, update))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return {"ok": True}

    return app, bot, tasks


async def drain(tasks: set) -> None:
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


async def post_wave(client: httpx.AsyncClient, updates: list[dict], concurrency: int,
                    latencies: list[float]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(update: dict):
        async with gate:
            t0 = time.perf_counter()
            r = await client.post("/bot/telegram/webhook", json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"webhook answered {r.status_code}: {r.text}")

    await asyncio.gather(*(one(u) for u in updates))


def newest_data(fake: FakeTelegram, user: User, prefix: str) -> str:
    for message in reversed(fake.sent(user.id)):
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button.get("callback_data", "").startswith(prefix):
                    return button["callback_data"]
    raise LookupError(f"no {prefix} button for user {user.id}")


async def run_gridlink(settings: Settings, fake: FakeTelegram, users: list[User],
                       concurrency: int, rng: random.Random):
    app = create_app(settings, manage_db=False)
    ns = f"bench-{uuid.uuid4().hex}"
    app.state.throttle.namespace = ns
    channel = app.state.telegram
    latencies: list[float] = []
    sent: list[dict] = []
    steps = [
        lambda u: fake.command(u, "start"),
        lambda u: fake.press(u, data="d:consent:yes"),
        lambda u: fake.text(u, f"{rng.choice(ROADS)}{rng.randrange(1, 900)}号"
                               f"{rng.choice(PROBLEMS)}"),
        lambda u: fake.press(u, data=newest_data(fake, u, "d:cat:")),
        lambda u: fake.location(u, 31.20 + rng.random() * 0.1, 121.40 + rng.random() * 0.1),
        lambda u: fake.press(u, data=newest_data(fake, u, "d:send:")),
        lambda u: fake.command(u, "my"),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        t0 = time.perf_counter()
        for step in steps:
            wave = []
            for user in users:
                try:
                    wave.append(step(user))
                except LookupError:
                    pass  # the one-line report went on differently for this user
            sent.extend(wave)
            await post_wave(client, wave, concurrency, latencies)
            await channel.drain()
        elapsed = time.perf_counter() - t0
    await channel.close()
    return len(sent) / elapsed, latencies, sent


async def run_echo(fake: FakeTelegram, updates: list[dict], users: int, concurrency: int):
    app, bot, tasks = echo_app(fake)
    latencies: list[float] = []
    fresh = 10**9
    replay = []
    for update in updates:
        fresh += 1
        replay.append({**update, "update_id": fresh})
    waves = [replay[i:i + users] for i in range(0, len(replay), users)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        t0 = time.perf_counter()
        for wave in waves:
            await post_wave(client, wave, concurrency, latencies)
            await drain(tasks)
        elapsed = time.perf_counter() - t0
    await bot.session.close()
    return len(replay) / elapsed, latencies


async def main_async(args) -> None:
    import logging

    logs.setup(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="gl-tg-bench-"))
    url = args.database_url or f"sqlite://{tmp / 'bench.sqlite3'}"
    # A PostgreSQL database dropped and created; migrated, the categories and departments in.
    await prepare_database(url)
    await db.init_db(url)
    fake = start_fake()
    settings = Settings(database_url=url, media_dir=tmp / "media", telegram_bot_token=TOKEN,
                        telegram_webhook_secret=SECRET, telegram_api_base=fake.base,
                        telegram_flood="100000/second", redis_url=args.redis_url)
    rng = random.Random(args.seed)
    # Fresh ids each run: dialogue state and flood counters in Redis outlive a run.
    first = random.SystemRandom().randrange(10**8, 9 * 10**8)
    users = [User(first + i, "U", "zh-hans") for i in range(args.users)]
    try:
        g_rate, g_lat, updates = await run_gridlink(settings, fake, users, args.concurrency, rng)
        e_rate, e_lat = await run_echo(fake, updates, len(users), args.concurrency)
        cases = await Case.all().count()
        failed = await TelegramUpdate.filter(status="failed").count()
    finally:
        await db.close_db()
    engine = "postgres" if url.startswith("postgres") else "sqlite"
    state = "redis" if args.redis_url else "db"
    for name, rate, lat in (("gridlink", g_rate, g_lat), ("bare echo", e_rate, e_lat)):
        print(f"{name:9s} updates/s={rate:7.0f}  webhook p50={quantile(lat, .5) * 1000:.2f}ms "
              f"p99={quantile(lat, .99) * 1000:.2f}ms  ({len(lat)} updates)")
    print(f"ratio updates/s gridlink/bare={g_rate / e_rate:.2f}  ({engine}, state {state}, "
          f"{args.users} users, concurrency {args.concurrency})")
    print(f"check: {cases} cases filed by {args.users} users, {failed} updates failed")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} (others' processes share "
          f"them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=40,
                        help="parallel webhook POSTs (Telegram's default max_connections is 40)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="", help="dialogue state and throttles in Redis")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
