"""/volunteer and /link in the chat dialogue (both languages, WeChat's keywords), and /link
end to end through the fake Telegram server."""

from __future__ import annotations

import uuid

import pytest

from bot.dialogue.engine import Dialogue
from bot.dialogue.io import Choice, Command, Person, Press, Text
from bot.dialogue.store import DbDialogueStore
from bot.wechat.adapter import text_input
from orgs.accounts.service import new_link_code
from orgs.registry import service as registry
from orgs.volunteers.models import Volunteer
from portal.cases.models import Identity
from portal.intake.throttle import Throttle, storage_for
from portal.web.keys import secret_key
from tests import orgs_setup
from tests.fake_telegram import TOKEN
from tests.test_dialogue import (
    LIFETIME,
    FakePorts,
    button,
    buttons,
    check_button_contract,
    press,
    text_of,
)
from tests.test_telegram import SECRET, Bot, new_user


@pytest.fixture
async def make_dialogue(settings):
    stores = []

    def make() -> Dialogue:
        stores.append(DbDialogueStore(LIFETIME))
        throttle = Throttle(storage_for(""), "5/10 minutes;20/day",
                            namespace=f"test-{uuid.uuid4().hex}")
        return Dialogue(settings, throttle, stores[-1])
    yield make
    for s in stores:
        await s.close()


@pytest.fixture
async def tg(settings, fake):
    bot = Bot(settings.model_copy(update={
        "telegram_bot_token": TOKEN, "telegram_webhook_secret": SECRET,
        "telegram_api_base": fake.base, "telegram_flood": "1000/second"}), fake)
    yield bot
    await bot.close_checked()


def chat(n: int, channel: str = "telegram", language: str | None = "zh-hans") -> Person:
    prefix = "tg" if channel == "telegram" else "wx"
    return Person(identity=f"{prefix}:{7000 + n}", channel=channel, language=language)


async def grids(n: int) -> list:
    street = await registry.add_area("HP", "黄浦街道", "Huangpu", "street")
    return [await registry.add_area(f"HP-G{i:02d}", f"黄浦第{i}网格", f"Huangpu grid {i}",
                                    "grid", parent=street) for i in range(1, n + 1)]


async def test_volunteer_in_chinese_with_paged_grids(make_dialogue):
    d: Dialogue = make_dialogue()
    who, ports = chat(1), FakePorts()
    areas = await grids(10)
    replies = await d.handle(who, Command("volunteer"), ports)
    assert "排行榜" in text_of(replies) and "/forget" in text_of(replies)
    check_button_contract(replies)
    replies = await d.handle(who, press(button(replies, "vol", "yes")), ports)
    assert "昵称" in text_of(replies) or "名称" in text_of(replies)
    replies = await d.handle(who, Text("x" * 40), ports)
    assert "32" in text_of(replies)
    replies = await d.handle(who, Text("河长老李"), ports)
    check_button_contract(replies)
    assert len([b for b in buttons(replies) if b.action == "vgrid"]) == 9  # 8 and "more"
    # Forged button data (a client can send any): the list again, never an error.
    for forged in ("p²", "²", "٣", "p" + "9" * 9):
        again = await d.handle(who, Press("vgrid", forged), ports)
        assert any(b.action == "vgrid" for b in buttons(again)), forged
    replies = await d.handle(who, press(button(replies, "vgrid", "p1")), ports)
    assert "黄浦第10网格" in [b.label for b in buttons(replies)]
    replies = await d.handle(who, press(button(replies, "vgrid", str(areas[9].id))), ports)
    assert "河长老李" in text_of(replies) and "黄浦第10网格" in text_of(replies)
    identity = await Identity.get(key=who.identity)
    v = await Volunteer.get(person_id=identity.person_id)
    assert (v.display_name, v.home_area_id, v.registered_via) == (
        "河长老李", areas[9].id, "telegram")
    # The conversation is back to reporting: a text is a report again.
    replies = await d.handle(who, Text("南京东路垃圾桶满了"), ports)
    assert not any(b.action == "vgrid" for b in buttons(replies))


async def test_volunteer_in_english_on_wechat_by_keyword(make_dialogue):
    d: Dialogue = make_dialogue()
    who, ports = chat(2, "wechat"), FakePorts()
    areas = await grids(2)
    assert text_input("志愿者") == Command("volunteer")
    await d.handle(who, Command("lang"), ports)
    await d.handle(who, Press("lang", "en"), ports)
    replies = await d.handle(who, text_input("志愿者"), ports)
    assert "leaderboard" in text_of(replies)
    # WeChat answers with the numbers of the buttons.
    replies = await d.handle(who, Choice(1), ports)
    assert "name" in text_of(replies)
    replies = await d.handle(who, Text("Amy"), ports)
    replies = await d.handle(who, Choice(2), ports)
    assert "registered as a volunteer" in text_of(replies)
    v = await Volunteer.get()
    assert (v.display_name, v.home_area_id, v.registered_via) == ("Amy", areas[1].id, "wechat")


async def test_volunteer_declined_or_cancelled_registers_nothing(make_dialogue):
    d: Dialogue = make_dialogue()
    who, ports = chat(3), FakePorts()
    await grids(1)
    replies = await d.handle(who, Command("volunteer"), ports)
    await d.handle(who, press(button(replies, "vol", "no")), ports)
    replies = await d.handle(who, Command("volunteer"), ports)
    await d.handle(who, press(button(replies, "vol", "yes")), ports)
    await d.handle(who, Command("cancel"), ports)
    replies = await d.handle(who, Text("老李"), ports)
    assert not any(b.action == "vgrid" for b in buttons(replies))
    assert not await Volunteer.exists()


async def test_link_codes_and_answers(make_dialogue, settings):
    d: Dialogue = make_dialogue()
    ports = FakePorts()
    secret = secret_key(settings)
    acct = await orgs_setup.account("linker", display_name="李四")
    other = await orgs_setup.account("other")
    who = chat(4, language="en")
    replies = await d.handle(who, Command("link", "000000"), ports)
    assert "wrong or has expired" in text_of(replies)
    replies = await d.handle(who, Command("link", ""), ports)
    assert "/link 482913" in text_of(replies)
    code = await new_link_code(acct, secret)
    replies = await d.handle(who, Command("link", code), ports)
    assert "李四" in text_of(replies)
    identity = await Identity.get(key=who.identity)
    assert identity.person_id == acct.person_id
    # The code works once.
    replies = await d.handle(who, Command("link", code), ports)
    assert "wrong or has expired" in text_of(replies)
    # This chat already belongs to an account: another account's code is refused.
    code = await new_link_code(other, secret)
    replies = await d.handle(who, Command("link", code), ports)
    assert "already linked to another account" in text_of(replies)
    # WeChat, in Chinese, by keyword.
    wx = chat(5, "wechat")
    assert text_input("绑定 123456") == Command("link", "123456")
    replies = await d.handle(wx, text_input("绑定 999999"), ports)
    assert "错误" in text_of(replies) or "过期" in text_of(replies)


async def test_link_is_throttled(make_dialogue, settings):
    d: Dialogue = make_dialogue()
    ports = FakePorts()
    acct = await orgs_setup.account("guessed")
    who = chat(6, language="en")
    for n in range(5):
        replies = await d.handle(who, Command("link", f"{n:06d}"), ports)
        assert "wrong or has expired" in text_of(replies)
    code = await new_link_code(acct, secret_key(settings))
    replies = await d.handle(who, Command("link", code), ports)
    assert "Too many tries" in text_of(replies)
    assert not await Identity.exists(key=who.identity)
    # Another chat is not held back.
    replies = await d.handle(chat(7, language="en"), Command("link", code), ports)
    assert "linked to the account" in text_of(replies)


async def test_link_through_telegram(tg: Bot):
    acct = await orgs_setup.account("tguser", display_name="王五")
    code = await new_link_code(acct, tg.app.state.secret_key)
    user = new_user("en")
    await tg.send(tg.fake.command(user, "link", "123"))
    assert "wrong or has expired" in tg.fake.last(user.id)["text"]
    await tg.send(tg.fake.command(user, "link", code))
    assert "王五" in tg.fake.last(user.id)["text"]
    identity = await Identity.get(key=f"tg:{user.id}")
    assert identity.person_id == acct.person_id
