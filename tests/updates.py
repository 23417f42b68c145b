"""Shared by the progress-update tests: the fake Bot API, settings that send at once, the
real delivery worker, Telegram users, and polling until something happened."""

from __future__ import annotations

import asyncio

import pytest

from feedback.models import Delivery
from portal.cases.models import Outbox
from portal.settings import Settings
from tests.fake_telegram import TOKEN, FakeTelegram, User


@pytest.fixture
async def fake():
    f = FakeTelegram()
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
def up_settings(settings: Settings, fake: FakeTelegram) -> Settings:
    return settings.model_copy(update={
        "telegram_bot_token": TOKEN, "telegram_api_base": fake.base,
        "updates_settle_seconds": 0.0, "telegram_rate": 1000,
        "public_base_url": "https://gridlink.example.org", "quiet_hours": ""})


@pytest.fixture
async def worker(up_settings: Settings):
    from portal.delivery import build_worker

    w = build_worker(up_settings)
    yield w
    await w.close()


def chat(fake: FakeTelegram, user_id: int, lang: str = "zh-hans") -> User:
    """A Telegram user who has talked to the bot (Telegram only lets bots write to those)."""
    user = User(user_id, "Test", lang)
    fake.text(user, "/start")
    return user


async def until(check, seconds: float = 15.0, alive=None):
    """Poll `check` (sync or async) until it is truthy; fail after `seconds`, or as soon as
    `alive()` (a process the test waits on) fails."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if alive is not None:
            alive()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds} s: {check}")
        await asyncio.sleep(0.05)


async def settled() -> bool:
    """Nothing left to fan out or send (now)."""
    return not await Outbox.exists() and not await Delivery.filter(
        status__in=("pending", "sending")).exists()
