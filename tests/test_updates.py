"""Progress updates: from a change of a case to one message per person and channel, through
the real delivery worker and the real aiogram client talking to the fake Bot API, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest

from feedback.fanout import fan_out, quiet_until
from feedback.models import Delivery, Survey, Unreachable
from portal.cases.models import Case, Person, Status
from portal.cases.service import add_note, change_status, utcnow
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.settings import Settings
from tests.updates import chat, settled, until

SQUARE = (31.2304, 121.4737)
# 10:00 in Shanghai, and 23:30.
DAY = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)


async def report(user_id: int, settings: Settings, text="南京东路100号门口垃圾堆了好几天没人清运",
                 category="garbage", language="zh-CN", at=None) -> Case:
    receipt = await submit(Submission(
        reporter=f"tg:{user_id}", channel="telegram", text=text, category=category,
        lat=SQUARE[0], lng=SQUARE[1], language=language, received_at=at),
        throttle=None, settings=settings)
    return await Case.get(code=receipt.case_code)


async def test_resolution_reaches_every_reporter_once_with_rating_buttons(
        up_settings, fake, worker):
    a, b = chat(fake, 501), chat(fake, 502, "en")
    case = await report(a.id, up_settings)
    again = await report(b.id, up_settings, language="en")
    assert again.id == case.id
    worker.start()
    for status in (Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS):
        await change_status(case.id, status, actor="op")
    await until(lambda: fake.sent(a.id) and fake.sent(b.id))
    await until(settled)
    before = {a.id: len(fake.sent(a.id)), b.id: len(fake.sent(b.id))}
    await change_status(case.id, Status.RESOLVED, actor="op", public_note="已清运完毕")
    await until(lambda: len(fake.sent(a.id)) > before[a.id] and
                len(fake.sent(b.id)) > before[b.id])
    await until(settled)
    for user, word in ((a, "已处置"), (b, "resolved")):
        new = fake.sent(user.id)[before[user.id]:]
        assert len(new) == 1, new
        assert word in new[0]["text"].lower() and case.code in new[0]["text"]
        data = [btn.get("callback_data") for row in new[0]["reply_markup"]["inline_keyboard"]
                for btn in row]
        assert f"d:rate:{case.code}.5" in data and f"d:rate:{case.code}.0" in data
    assert "已清运完毕" in fake.sent(a.id)[-1]["text"]
    # Every change reached each of them in exactly one message.
    for user in (a, b):
        told = [e for d in await Delivery.filter(address=f"tg:{user.id}", status="sent")
                for e in d.event_ids]
        assert len(told) == len(set(told)) == 4
    assert await Survey.filter(case_id=case.id).count() == 2


async def test_changes_made_while_an_update_waits_go_out_as_one_message(up_settings, fake):
    from portal.delivery import build_worker

    a = chat(fake, 511)
    case = await report(a.id, up_settings)
    held = up_settings.model_copy(update={"updates_settle_seconds": 3600.0})
    await change_status(case.id, Status.ACCEPTED, actor="op")
    await add_note(case.id, actor="op", public_note="明天上午安排清运", internal_note=None)
    await change_status(case.id, Status.DISPATCHED, actor="op")
    while await fan_out(held, {"telegram"}):
        pass
    waiting = await Delivery.filter(address=f"tg:{a.id}")
    assert len(waiting) == 1 and len(waiting[0].event_ids) == 3
    # The hour passes.
    await Delivery.filter(id=waiting[0].id).update(due_at=utcnow())
    worker = build_worker(up_settings)
    worker.start()
    try:
        await until(settled)
    finally:
        await worker.close()
    (message,) = fake.sent(a.id)
    assert "明天上午安排清运" in message["text"] and "已派遣" in message["text"]


async def test_quiet_hours_hold_updates_until_morning_unless_urgent_or_chosen(
        up_settings, fake):
    night = up_settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    a, b = chat(fake, 521), chat(fake, 522)
    garbage = await report(a.id, night, at=NIGHT)
    manhole = await report(b.id, night, text="淮海中路200号井盖没了，很危险", category="manhole",
                           at=NIGHT)
    owl = chat(fake, 523)
    await report(owl.id, night, text="南京东路100号门口垃圾堆了好几天没人清运", at=NIGHT)
    await Person.filter(identities__key=f"tg:{owl.id}").update(updates_at_night=True)
    for case in (garbage, manhole):
        await change_status(case.id, Status.ACCEPTED, actor="op", now=NIGHT)
    while await fan_out(night, {"telegram"}, now=NIGHT):
        pass
    due = {d.address: d.due_at for d in await Delivery.all()}
    morning = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert due[f"tg:{a.id}"] == morning
    assert due[f"tg:{b.id}"] == NIGHT  # a missing manhole cover is urgent
    assert due[f"tg:{owl.id}"] == NIGHT  # they chose updates at night


def test_quiet_hours_across_midnight():
    quiet = (time(22, 0), time(8, 0))
    assert quiet_until(DAY, quiet) is None
    assert quiet_until(NIGHT, quiet) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    early = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # 05:00 the next morning in Shanghai
    assert quiet_until(early, quiet) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert quiet_until(NIGHT, None) is None


async def test_a_blocked_chat_is_not_tried_again_until_the_person_writes_again(
        up_settings, fake, worker):
    from bot.dialogue.engine import Dialogue
    from bot.dialogue.io import Command
    from bot.dialogue.io import Person as ChatPerson
    from bot.dialogue.store import store_for

    a, b = chat(fake, 531), chat(fake, 532)
    case = await report(a.id, up_settings)
    await report(b.id, up_settings)
    fake.fail(a.id, "blocked")
    worker.start()
    await change_status(case.id, Status.ACCEPTED, actor="op")
    await until(lambda: fake.sent(b.id))
    await until(settled)
    assert await Unreachable.exists(address=f"tg:{a.id}")
    calls = len(fake.calls_of("sendMessage"))
    await add_note(case.id, actor="op", public_note="已通知环卫所", internal_note=None)
    await until(lambda: len(fake.sent(b.id)) == 2)
    await until(settled)
    # No message was even tried for the person who blocked the bot.
    assert len(fake.calls_of("sendMessage")) == calls + 1
    # They unblock and write to the bot: the next change reaches them.
    fake.clear_faults()
    dialogue = Dialogue(up_settings, None, store_for(up_settings))
    await dialogue.handle(ChatPerson(f"tg:{a.id}", "telegram"), Command("help"), ports=None)
    await dialogue.store.close()
    assert not await Unreachable.exists(address=f"tg:{a.id}")
    await change_status(case.id, Status.DISPATCHED, actor="op")
    await until(lambda: fake.sent(a.id) and "已派遣" in fake.sent(a.id)[-1]["text"])


async def test_a_merge_tells_the_reporters_of_the_merged_case_where_it_went(
        up_settings, fake, worker):
    from portal.cases.service import merge_cases

    a, b = chat(fake, 541), chat(fake, 542)
    first = await report(a.id, up_settings)
    other = await report(b.id, up_settings, text="西藏中路口红绿灯旁路灯不亮", category="street_light")
    assert other.id != first.id
    worker.start()
    await merge_cases(other.id, first.id, actor="op")
    await until(lambda: fake.sent(b.id))
    assert first.code in fake.sent(b.id)[-1]["text"] and other.code in fake.sent(b.id)[-1]["text"]
    await until(settled)
    told = [e for d in await Delivery.filter(address=f"tg:{b.id}") for e in d.event_ids]
    assert len(told) == len(set(told))


async def test_wechat_followers_are_told_and_rate_by_replying_with_a_number(settings):
    from feedback.models import Rating
    from portal.delivery import build_worker
    from tests import fake_wechat as wx
    from tests.test_wechat import Account, agree, new_openid, wx_settings

    fake = wx.FakeWeChat()
    await fake.start()
    try:
        acc_settings = wx_settings(settings, fake, updates_settle_seconds=0.0, quiet_hours="",
                                   wechat_update_template_id="TPL-update")
        acc = Account(acc_settings, fake)
        inside, outside = new_openid(), new_openid()
        async with acc.app.router.lifespan_context(acc.app):
            await agree(acc, inside)  # wrote just now: the reply window is open
            case = None
            for openid in (inside, outside):
                receipt = await submit(Submission(
                    reporter=f"wx:{openid}", channel="wechat", text="南京东路100号门口垃圾堆了好几天",
                    category="garbage", lat=SQUARE[0], lng=SQUARE[1]),
                    throttle=None, settings=acc_settings)
                case = await Case.get(code=receipt.case_code)
            worker = build_worker(acc_settings)
            worker.start()
            try:
                await change_status(case.id, Status.ACCEPTED, actor="op")
                await change_status(case.id, Status.IN_PROGRESS, actor="op")
                await change_status(case.id, Status.RESOLVED, actor="op",
                                    public_note="已清运完毕")
                await until(lambda: any("已清运完毕" in wx.sent_text(m)
                                        for m in fake.sent(inside)))
                await until(lambda: any("[template]" in wx.sent_text(m)
                                        for m in fake.sent(outside)))
                await until(settled)
            finally:
                await worker.close()
            text = [wx.sent_text(m) for m in fake.sent(inside)][-1]
            assert "回复 5：★★★★★" in text and "回复 6：尚未解决" in text, text
            # Outside the window: the template, opening the signed rating page.
            template = [m for m in fake.sent(outside) if m["kind"] == "template"][-1]
            assert "/rate/" in template["url"] and case.code in wx.sent_text(template)
            # "5" answers the rating's numbers.
            await acc.say(wx.text(inside, "5"), inside)
            rating = await Rating.get(case_id=case.id)
            assert rating.score == 5 and rating.channel == "wechat"
        await acc.client.aclose()
    finally:
        await fake.stop()


async def test_a_worker_in_another_process_wakes_the_tracking_page_through_redis(
        up_settings, fake, clean_db, tmp_path):
    """The server polls only every 60 s here: the change can reach its open page before the
    stream ends (25 s) only through the Redis message the worker publishes."""
    import json
    import threading

    import httpx

    from feedback.live import LiveBus
    from portal.delivery import build_worker
    from tests.conftest import REDIS_URL, require_server
    from tests.live import live_server

    require_server("Redis", "127.0.0.1", 6379)
    a = chat(fake, 551)
    case = await report(a.id, up_settings)
    env = {"GRIDLINK_REDIS_URL": REDIS_URL, "GRIDLINK_LIVE_POLL_SECONDS": "60",
           "GRIDLINK_WORKER_IN_SERVER": "false"}
    with live_server(clean_db, tmp_path, env=env) as base:
        ready = threading.Event()

        def listen() -> dict:
            with httpx.stream("GET", f"{base}/cases/{case.code}/events", timeout=30) as res:
                event = None
                for line in res.iter_lines():
                    if line.startswith(": gridlink") or line.startswith("event: case"):
                        ready.set()
                    if line.startswith("data:"):
                        message = json.loads(line[5:])
                        if message["status"] == "accepted":
                            return message
                    event = line or event
            raise AssertionError("the stream ended without the change")

        listening = asyncio.create_task(asyncio.to_thread(listen))
        await asyncio.to_thread(ready.wait, 20)
        live = LiveBus(REDIS_URL)
        worker = build_worker(up_settings, live)
        worker.start()
        try:
            await change_status(case.id, Status.ACCEPTED, actor="op", public_note="马上处理")
            message = await listening
        finally:
            await worker.close()
            await live.close()
    assert [e["note"] for e in message["entries"]] == ["马上处理"]


async def test_a_person_who_asks_to_be_forgotten_while_an_update_waits_does_not_get_it(up_settings, fake):
    from bot.dialogue.engine import Dialogue
    from bot.dialogue.io import Command
    from bot.dialogue.io import Person as ChatPerson
    from bot.dialogue.store import store_for
    from portal.delivery import build_worker

    a = chat(fake, 561)
    case = await report(a.id, up_settings)
    await change_status(case.id, Status.ACCEPTED, actor="op")
    while await fan_out(up_settings, {"telegram"}):
        pass
    assert await Delivery.exists(address=f"tg:{a.id}", status="pending")
    dialogue = Dialogue(up_settings, None, store_for(up_settings))
    await dialogue.handle(ChatPerson(f"tg:{a.id}", "telegram"), Command("forget"), ports=None)
    from bot.dialogue.io import Press

    await dialogue.handle(ChatPerson(f"tg:{a.id}", "telegram"), Press("forget", "yes"),
                          ports=None)
    await dialogue.store.close()
    worker = build_worker(up_settings)
    worker.start()
    try:
        await until(settled)
    finally:
        await worker.close()
    assert fake.sent(a.id) == []
    # Forgotten: not even the messages keep their chat id.
    assert not await Delivery.exists(address=f"tg:{a.id}")


@pytest.mark.parametrize("hours", ["24:00-08:00", "08:00-08:00", "22-8"])
def test_quiet_hours_that_cannot_work_are_refused_at_start(hours):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(quiet_hours=hours)


async def test_one_address_gets_one_message_even_as_reporter_and_follower(up_settings):
    """A web reporter who left an e-mail and also follows by that e-mail is two people to
    us; the address gets one message."""
    from tortoise import connections

    from portal.cases.service import subscribe
    from portal.intake.service import person_for

    receipt = await submit(Submission(
        reporter="web:browser:" + "a" * 40, channel="web", text="南京东路100号门口垃圾堆了好几天没人清运",
        category="garbage", lat=SQUARE[0], lng=SQUARE[1], email="li.na@example.org"),
        throttle=None, settings=up_settings)
    case = await Case.get(code=receipt.case_code)
    follower = await person_for("web:li.na@example.org", "zh-CN", email="li.na@example.org")
    await subscribe(case, follower, "web:li.na@example.org", connections.get("default"),
                    reason="follower")
    await change_status(case.id, Status.ACCEPTED, actor="op")
    while await fan_out(up_settings, {"email"}):
        pass
    assert await Delivery.filter(address="li.na@example.org").count() == 1


async def test_an_update_waiting_when_its_case_is_merged_still_goes(up_settings, fake):
    from portal.cases.service import merge_cases
    from portal.delivery import build_worker

    a, b = chat(fake, 571), chat(fake, 572)
    first = await report(a.id, up_settings)
    other = await report(b.id, up_settings, text="西藏中路口红绿灯旁路灯不亮", category="street_light")
    await add_note(other.id, actor="op", public_note="已安排周二维修", internal_note=None)
    held = up_settings.model_copy(update={"updates_settle_seconds": 3600.0})
    while await fan_out(held, {"telegram"}):
        pass
    await merge_cases(other.id, first.id, actor="op")
    await Delivery.filter(status="pending").update(due_at=utcnow())
    worker = build_worker(up_settings)
    worker.start()
    try:
        await until(lambda: any("已安排周二维修" in t for t in fake.texts(b.id)))
        await until(settled)
    finally:
        await worker.close()


def test_a_long_wechat_update_keeps_its_rating_numbers_and_link():
    from bot.wechat.adapter import MESSAGE_BYTES
    from bot.wechat.notify import WeChatSender
    from feedback.channels import Notice

    notice = Notice(case_code="GL-20261128-0001", language="zh-CN", title="案件",
                    body="处置说明：" + "已清运" * 600, url="https://gridlink.example.org/cases/x",
                    status="已处置", when="2026-11-28 10:00", ask_rating=True)
    _say, text = WeChatSender._render(notice)
    assert len(text.encode()) <= MESSAGE_BYTES
    assert "回复 6：尚未解决" in text and "https://gridlink.example.org/cases/x" in text


async def test_finished_messages_are_forgotten_after_the_keeping_period(up_settings, fake,
                                                                        worker):
    from feedback.worker import prune

    a = chat(fake, 581)
    case = await report(a.id, up_settings)
    await change_status(case.id, Status.ACCEPTED, actor="op")
    while await fan_out(up_settings, {"telegram"}):
        pass
    await Delivery.filter(address=f"tg:{a.id}").update(status="sent")
    await change_status(case.id, Status.IN_PROGRESS, actor="op")
    while await fan_out(up_settings, {"telegram"}):
        pass
    first, second = await Delivery.filter(address=f"tg:{a.id}").order_by("id")
    keep = timedelta(days=up_settings.delivery_keep_days)
    # Not yet: within the keeping period nothing goes, and a waiting message never does.
    assert await prune(up_settings, now=utcnow() + keep - timedelta(hours=1)) == 0
    assert await prune(up_settings, now=utcnow() + keep + timedelta(hours=1)) == 1
    assert await Delivery.filter(address=f"tg:{a.id}").values_list("id", flat=True) == [
        second.id]
