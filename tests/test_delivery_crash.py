"""One progress update to a few thousand Telegram followers survives a delivery worker killed
with SIGKILL half way: every follower gets it, once (but for a request in flight at the kill,
see below). And a chat that Telegram holds back (429)
or that blocked the bot (403) does not hold up the others.

The worker is the real `gridlink worker` command in a process of its own; the fake Bot API
server runs in the test's process and keeps Telegram's broadcast limits (raised, so that the
test takes seconds: the worker's rate and the fake's per-second ceiling are set high, one
message a second per chat is kept). Each test runs on SQLite and on PostgreSQL.

What "once" can mean. The worker takes a message (a lease) just before sending it and records
the outcome right after Telegram answers. Killed between the two, it leaves the message taken;
when the lease ends the restarted worker sends it again. If the request had reached Telegram,
that person gets it twice: no platform offers an idempotency key, and nothing on our side can
tell whether a request cut off by the kill arrived. Those requests, and only those, are the
ones "in flight" at the kill: accepted by Telegram, not yet recorded as sent. The worker has at
most `SLOTS` requests open per channel, so there are at most that many.

So the worker is killed twice, at moments chosen two ways:
1. The natural way: as soon as some hundreds are recorded, requests in flight. After the kill
   the test reads the in-flight set from the fake (what it accepted) and the database (what was
   recorded): at most SLOTS chats, usually none or one.
2. With nothing in flight: Telegram holds the bot back (429 to every message, as it does to a
   bot that floods) while the worker records what it had sent; the kill comes once everything
   Telegram accepted is recorded, while requests still go out and are refused, and messages
   are still taken (leased) by the worker.
Then everyone must have the update; exactly the chats in flight at the first kill have it
twice, and everyone else exactly once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from feedback.models import Delivery, Unreachable
from feedback.worker import SLOTS
from portal.cases.models import Case, Identity, Person, Status, Subscription
from portal.cases.service import change_status, utcnow
from portal.settings import Settings
from tests.fake_telegram import TOKEN, FakeTelegram, Limits
from tests.updates import until

FOLLOWERS = 2000
FIRST_CHAT = 8_000_000_001
LEASE_S = 2
# The worker's pace and the fake's ceiling, both raised so that 2,000 messages take seconds;
# the fake's stays above the worker's, one message a second per chat as Telegram.
RATE = 1000
CEILING = 2000


def gridlink() -> list[str]:
    """The `gridlink` console script of this venv (pyproject's [project.scripts]), else the
    one on PATH, else the module."""
    script = Path(sys.executable).with_name("gridlink")
    if script.exists():
        return [str(script)]
    found = shutil.which("gridlink")
    return [found] if found else [sys.executable, "-m", "portal.cli"]


def chat_of(address: str) -> int:
    return int(address.removeprefix("tg:"))


async def case_with_followers(n: int) -> Case:
    """A case followed by n people on Telegram (bulk rows: the intake is not needed)."""
    now = utcnow()
    case = await Case.create(code="GL-20261128-0001", category="garbage",
                             summary="南京东路100号门口垃圾堆了好几天没人清运", lat=31.2304,
                             lng=121.4737, first_reported_at=now, last_reported_at=now)
    ids = range(1, n + 1)
    await Person.bulk_create([Person(id=i, language="zh-CN" if i % 2 else "en") for i in ids],
                             batch_size=500)
    await Identity.bulk_create([Identity(key=f"tg:{FIRST_CHAT + i - 1}", kind="telegram",
                                         person_id=i) for i in ids], batch_size=500)
    await Subscription.bulk_create([Subscription(case_id=case.id, person_id=i,
                                                 identity=f"tg:{FIRST_CHAT + i - 1}",
                                                 reason="follower") for i in ids],
                                   batch_size=500)
    return case


class WorkerProcess:
    """`gridlink worker` as an operator runs it, its output in a log file."""

    def __init__(self, settings: Settings, fake: FakeTelegram, workdir: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLINK_")}
        self.env.update({
            "GRIDLINK_DATABASE_URL": settings.database_url,
            "GRIDLINK_MEDIA_DIR": str(workdir / "media"),
            "GRIDLINK_SECRET_KEY": "crash-test",
            "GRIDLINK_PUBLIC_BASE_URL": "https://gridlink.example.org",
            "GRIDLINK_TELEGRAM_BOT_TOKEN": TOKEN,
            "GRIDLINK_TELEGRAM_API_BASE": fake.base,
            "GRIDLINK_TELEGRAM_RATE": str(RATE),
            "GRIDLINK_DELIVERY_LEASE_SECONDS": str(LEASE_S),
            "GRIDLINK_UPDATES_SETTLE_SECONDS": "0",
            "GRIDLINK_QUIET_HOURS": "",
        })
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        self.log = self.workdir / f"worker-{self.runs}.log"
        with self.log.open("wb") as out:
            # Not waited on by the loop: the fake answers it from this very loop.
            self.proc = await asyncio.create_subprocess_exec(
                *gridlink(), "worker", env=self.env, cwd=self.workdir, stdout=out,
                stderr=asyncio.subprocess.STDOUT)

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    def alive(self) -> bool:
        assert self.proc.returncode is None, \
            f"the worker exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}"
        return True


async def sent_count(case: Case) -> int:
    return await Delivery.filter(case_id=case.id, status="sent").count()


async def recorded(case: Case) -> set[int]:
    return {chat_of(a) for a in await Delivery.filter(case_id=case.id, status="sent")
            .values_list("address", flat=True)}


async def everyone_done(case: Case, fake: FakeTelegram) -> bool:
    return len({chat for _t, chat in fake.accepted}) == FOLLOWERS and not await Delivery.filter(
        case_id=case.id, status__in=("pending", "sending")).exists()


@pytest.fixture
async def fake():
    f = FakeTelegram(limits=Limits(per_second=CEILING, per_chat_s=1.0))
    f.add_chats(range(FIRST_CHAT, FIRST_CHAT + FOLLOWERS))
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def worker(settings: Settings, fake: FakeTelegram, tmp_path: Path):
    w = WorkerProcess(settings, fake, tmp_path)
    yield w
    await w.stop()


async def test_killed_twice_every_follower_gets_the_update_once_but_those_in_flight(
        settings, fake, worker):
    case = await case_with_followers(FOLLOWERS)
    everyone = set(range(FIRST_CHAT, FIRST_CHAT + FOLLOWERS))
    await worker.start()
    await change_status(case.id, Status.ACCEPTED, actor="op", public_note="已受理，正在派遣")

    # 1. Killed mid-batch, with requests in flight.
    await until(lambda: _at_least(case, 300), 60, worker.alive)
    await worker.kill()
    # What the dead worker had sent is now either answered or cut off.
    await until(fake.idle, 10)
    accepted = {chat for _t, chat in fake.accepted}
    done = await recorded(case)
    assert done <= accepted
    in_flight = accepted - done
    assert len(in_flight) <= SLOTS
    assert await Delivery.filter(case_id=case.id, status="pending").exists(), \
        "killed after the end: nothing was interrupted"

    # 2. Restarted, then killed again while Telegram holds the bot back (429 to every
    # message) and everything it accepted is recorded: nothing is in flight.
    await worker.start()
    await until(lambda: _at_least(case, 1000), 60, worker.alive)
    fake.flood = 1
    await until(lambda: _all_recorded(case, fake), 30, worker.alive)
    refused = fake.errors[429]
    await until(lambda: fake.errors[429] > refused, 30, worker.alive)
    # Killed while it holds messages: refused ones wait for their retry_after, so between
    # rounds the worker may hold none (a loaded CI machine showed it); wait for a round.
    await until(lambda: _leased(case), 30, worker.alive)
    await worker.kill()
    await until(fake.idle, 10)
    fake.flood = None
    # Messages taken (leased) by the dead worker: the restarted one sends them, once. (The
    # round can end between the look and the kill; then the lease path is the first kill's.)
    leased = {chat_of(a) for a in await Delivery.filter(case_id=case.id, status="sending")
              .values_list("address", flat=True)}

    await worker.start()
    await until(lambda: everyone_done(case, fake), 120, worker.alive)
    got = Counter(chat for _t, chat in fake.accepted)
    assert set(got) == everyone
    # Twice: exactly those in flight at the first kill; nobody from the second.
    assert {chat for chat, n in got.items() if n > 1} == in_flight
    assert all(got[chat] == 2 for chat in in_flight)
    assert all(got[chat] == 1 for chat in leased - in_flight)
    assert await Delivery.filter(case_id=case.id).exclude(status="sent").count() == 0
    # Each got the update itself, in their language.
    zh, en = fake.sent(FIRST_CHAT), fake.sent(FIRST_CHAT + 1)
    assert case.code in zh[0]["text"] and "已受理，正在派遣" in zh[0]["text"]
    assert "accepted" in en[0]["text"].lower()


async def _at_least(case: Case, n: int) -> bool:
    return await sent_count(case) >= n


async def _leased(case: Case) -> bool:
    return await Delivery.filter(case_id=case.id, status="sending").exists()


async def _all_recorded(case: Case, fake: FakeTelegram) -> bool:
    return {chat for _t, chat in fake.accepted} <= await recorded(case)


@pytest.fixture
async def inline_worker(settings: Settings, fake: FakeTelegram):
    """The worker in the test's process, giving up after 3 tries of a failing message."""
    from portal.delivery import build_worker

    w = build_worker(settings.model_copy(update={
        "telegram_bot_token": TOKEN, "telegram_api_base": fake.base, "telegram_rate": RATE,
        "updates_settle_seconds": 0.0, "quiet_hours": "", "delivery_max_attempts": 3,
        "public_base_url": "https://gridlink.example.org", "secret_key": "crash-test"}))
    yield w
    await w.close()


async def test_a_held_back_chat_and_a_blocked_one_do_not_hold_up_the_others(
        settings, fake, inline_worker):
    """One chat answered 429 for a while (longer than the tries a failing message gets), one
    that blocked the bot (403): everyone else gets the update meanwhile; the blocked one is
    marked unreachable and not tried again; the held back one gets it once, after."""
    n = 300
    case = await case_with_followers(n)
    held, blocked = FIRST_CHAT + 7, FIRST_CHAT + 8
    fake.fail(held, "429", retry_after=1)
    fake.fail(blocked, "blocked")
    others = set(range(FIRST_CHAT, FIRST_CHAT + n)) - {held, blocked}
    inline_worker.start()
    await change_status(case.id, Status.ACCEPTED, actor="op")
    await until(lambda: {chat for _t, chat in fake.accepted} >= others, 60)
    gone = await Delivery.get(case_id=case.id, address=f"tg:{blocked}")
    assert gone.status == "dropped"
    assert await Unreachable.exists(address=f"tg:{blocked}")
    # The held back chat waits its turn, asked again each time Telegram said to.
    await until(lambda: len(_tried(fake, held)) > 3, 30)
    assert not fake.sent(held)
    waiting = await Delivery.get(case_id=case.id, address=f"tg:{held}")
    assert waiting.status in ("pending", "sending")

    fake.clear_faults()
    await until(lambda: fake.sent(held), 30)
    await until(lambda: _settled(case), 30)
    assert len(fake.sent(held)) == 1
    assert not fake.sent(blocked)
    # Asked once: a person who blocked the bot is not tried again.
    assert len(_tried(fake, blocked)) == 1
    got = Counter(chat for _t, chat in fake.accepted)
    assert len(got) == n - 1 and set(got.values()) == {1}


def _tried(fake: FakeTelegram, chat: int) -> list[dict]:
    return [p for p in fake.calls_of("sendMessage") if int(p["chat_id"]) == chat]


async def _settled(case: Case) -> bool:
    return not await Delivery.filter(case_id=case.id, status__in=("pending", "sending")).exists()
