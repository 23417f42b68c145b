"""Notices (messages about no case, written by orgs.notify): to the person's chat through the
fake Bot API, else by mail through a real local SMTP server, else only in the account's inbox
page; sent by the real delivery worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.wechat.sender import record_inbound
from feedback.models import Delivery, PersonNotice, Unreachable
from feedback.notices import fan_out_notices
from orgs import notify
from orgs.accounts.models import Account
from portal.cases.models import Identity, Person
from portal.cases.service import utcnow
from portal.settings import Settings
from tests import orgs_setup, smtp
from tests.fake_wechat import APP_SECRET, FakeWeChat
from tests.smtp import Mailbox
from tests.updates import chat, settled, until

mailbox = smtp.mailbox  # the local SMTP server, a fixture

# 23:30 in Shanghai, and 08:00 the next morning.
NIGHT = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
MORNING = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
BASE = "https://gridlink.example.org"
HTML = {"Accept": "text/html"}


@pytest.fixture
def both_settings(up_settings: Settings, mailbox: Mailbox) -> Settings:
    """Telegram (the fake Bot API) and e-mail (the local SMTP server) both on."""
    return up_settings.model_copy(update={
        "smtp_url": f"smtp://127.0.0.1:{mailbox.port}", "email_rate": 1000,
        "mail_from": "Gridlink <noreply@gridlink.example.org>"})


@pytest.fixture
async def delivering(both_settings: Settings):
    from portal.delivery import build_worker

    w = build_worker(both_settings)
    w.start()
    yield w
    await w.close()


async def result_notice(account: Account, ref: str = "result:GT-2026-00012:org:5", **kw) -> int:
    return await notify.to_people(
        [account.person_id], topic="tender.result", ref=ref, code="GT-2026-00012",
        title="Tender {tender}: your bid won", body="Your bid scored {score} and came first.",
        url="/orgs/tenders/GT-2026-00012", link="Result page (test)", tender="GT-2026-00012",
        score="91.50", **kw)


async def with_chat(account: Account, user_id: int) -> None:
    await Identity.create(key=f"tg:{user_id}", kind="tg", person_id=account.person_id)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_notice_reaches_the_linked_chat_once_with_its_link_and_no_rating(
        fake, delivering):
    user = chat(fake, 601)
    account = await orgs_setup.account("lead601")
    await with_chat(account, user.id)
    assert await result_notice(account) == 1
    (message,) = await until(lambda: fake.sent(user.id))
    assert "Tender GT-2026-00012: your bid won" in message["text"]
    assert "91.50" in message["text"]
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [{"text": "Result page (test)",
                        "url": f"{BASE}/orgs/tenders/GT-2026-00012"}]
    # The same change told again (a sweep run twice): no second notice, no second message.
    assert await result_notice(account) == 0
    await until(settled)
    assert await fan_out_notices(delivering.settings, {"telegram"}) == 0
    assert len(fake.sent(user.id)) == 1
    assert await PersonNotice.filter(person_id=account.person_id).count() == 1
    (delivery,) = await Delivery.all()
    assert (delivery.kind, delivery.case_id, delivery.status) == ("notice", None, "sent")


async def test_a_notice_goes_by_mail_without_a_chat_and_points_to_the_account(
        mailbox, delivering):
    account = await orgs_setup.account("lead602")
    await Person.filter(id=account.person_id).update(email="li.ming@example.org")
    await result_notice(account)
    (mail,) = await until(lambda: mailbox.to("li.ming@example.org"))
    assert mail["Subject"] == "Tender GT-2026-00012: your bid won"
    content = mail.get_content()
    assert f"Result page (test): {BASE}/orgs/tenders/GT-2026-00012" in content
    assert f"{BASE}/account" in content
    # Not a one-click unsubscribe: the account page says what the person hears.
    assert mail["List-Unsubscribe"] is None


async def test_a_notice_in_the_persons_language_else_in_chinese(fake, delivering):
    en, zh = chat(fake, 611, "en"), chat(fake, 612)
    english = await orgs_setup.account("lead611")
    chinese = await orgs_setup.account("lead612")
    await Person.filter(id=english.person_id).update(language="en")
    await with_chat(english, en.id)
    await with_chat(chinese, zh.id)
    texts = {"zh-CN": {"title": "投标结果", "body": "您的投标中标。", "link": "查看结果"},
             "en": {"title": "Tender result", "body": "Your bid won.", "link": "See it"}}
    for account in (english, chinese):
        await PersonNotice.create(person_id=account.person_id, topic="tender.result",
                                  ref="r1", texts=texts, url="/orgs", created_at=utcnow())
    await until(lambda: fake.sent(en.id) and fake.sent(zh.id))
    assert "Your bid won." in fake.sent(en.id)[0]["text"]
    assert "您的投标中标。" in fake.sent(zh.id)[0]["text"]
    only_chinese = {"zh-CN": texts["zh-CN"]}
    await PersonNotice.create(person_id=english.person_id, topic="tender.result", ref="r2",
                              texts=only_chinese, url="/orgs", created_at=utcnow())
    await until(lambda: len(fake.sent(en.id)) == 2)
    assert "您的投标中标。" in fake.sent(en.id)[1]["text"]


async def test_quiet_hours_hold_a_notice_unless_urgent(up_settings):
    night = up_settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    calm, urgent = await orgs_setup.account("calm"), await orgs_setup.account("urgent")
    await with_chat(calm, 621)
    await with_chat(urgent, 622)
    await result_notice(calm)
    await result_notice(urgent, urgent=True)
    assert await fan_out_notices(night, {"telegram"}, now=NIGHT) == 2
    due = {d.address: d.due_at for d in await Delivery.all()}
    assert due == {"tg:621": MORNING, "tg:622": NIGHT}


async def test_a_chat_that_refuses_us_leaves_the_notice_in_the_inbox_only(
        up_settings, app):
    account = await orgs_setup.account("lead631")
    await with_chat(account, 631)
    await Unreachable.create(address="tg:631", channel="telegram", reason="blocked",
                             since=utcnow())
    await result_notice(account)
    assert await fan_out_notices(up_settings, {"telegram", "email"}) == 1
    assert not await Delivery.exists()
    async with await orgs_setup.member_client(app, account) as browser:
        page = await browser.get("/account/notices?lang=en", headers=HTML)
    assert "Tender GT-2026-00012: your bid won" in text_of(page.text)


async def test_an_older_chat_is_used_when_the_newest_refuses_us(up_settings):
    account = await orgs_setup.account("lead641")
    await with_chat(account, 641)
    await with_chat(account, 642)
    await Unreachable.create(address="tg:642", channel="telegram", reason="blocked",
                             since=utcnow())
    await result_notice(account)
    await fan_out_notices(up_settings, {"telegram"})
    assert await Delivery.all().values_list("address", flat=True) == ["tg:641"]


async def test_without_chat_or_mail_the_notice_waits_in_the_inbox_for_its_person_only(
        up_settings, app):
    mine, other = await orgs_setup.account("lead651"), await orgs_setup.account("other652")
    await result_notice(mine)
    assert await fan_out_notices(up_settings, {"telegram", "email"}) == 1
    assert not await Delivery.exists()
    async with await orgs_setup.member_client(app, mine) as browser:
        page = await browser.get("/account/notices?lang=en", headers=HTML)
        assert page.status_code == 200
        shown = text_of(page.text)
        assert "Tender GT-2026-00012: your bid won" in shown and "91.50" in shown
        assert 'href="/orgs/tenders/GT-2026-00012"' in page.text
        assert 'class="badge new"' in page.text
        # Seen once, it is read.
        again = await browser.get("/account/notices?lang=en", headers=HTML)
        assert "your bid won" in again.text and 'class="badge new"' not in again.text
    async with await orgs_setup.member_client(app, other) as browser:
        page = await browser.get("/account/notices", headers=HTML)
        assert "your bid won" not in page.text and "暂无通知。" in text_of(page.text)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as anonymous:
        page = await anonymous.get("/account/notices", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/account/login?next=%2Faccount%2Fnotices"
        posted = await anonymous.post("/account/notices/read-all", headers=HTML)
        assert posted.status_code == 303 and "/account/login" in posted.headers["location"]


async def test_the_inbox_pages_marks_all_read_and_refuses_bad_input(app):
    account = await orgs_setup.account("lead661")
    for n in range(25):
        await result_notice(account, ref=f"result:{n}")
    async with await orgs_setup.member_client(app, account) as browser:
        first = await browser.get("/account/notices?lang=en", headers=HTML)
        assert text_of(first.text).count("your bid won") == 20 and "Older" in first.text
        assert "Mark all as read" in first.text  # five are still unread on the next page
        token = await orgs_setup.csrf_of(browser, "/account/notices?lang=en")
        done = await browser.post("/account/notices/read-all", data={"csrf_token": token})
        assert done.status_code == 303
        assert not await PersonNotice.filter(read_at__isnull=True).exists()
        second = await browser.get("/account/notices?page=2&lang=en", headers=HTML)
        assert text_of(second.text).count("your bid won") == 5
        assert 'class="badge new"' not in second.text
        for junk in ("0", "-1", "abc", "9" * 40, "2.5"):
            bad = await browser.get(f"/account/notices?page={junk}&lang=en", headers=HTML)
            assert bad.status_code == 404, junk
            assert "There is no such page." in bad.text
        forged = await browser.post("/account/notices/read-all", data={"csrf_token": "x"})
        assert 400 <= forged.status_code < 500


async def test_a_notice_read_in_the_inbox_while_it_waits_is_not_sent(
        up_settings, fake, app):
    from portal.delivery import build_worker

    night = up_settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    user = chat(fake, 671)
    account = await orgs_setup.account("lead671")
    await with_chat(account, user.id)
    await result_notice(account)
    await fan_out_notices(night, {"telegram"}, now=NIGHT)
    async with await orgs_setup.member_client(app, account) as browser:
        await browser.get("/account/notices", headers=HTML)
    # The morning comes.
    await Delivery.all().update(due_at=utcnow())
    worker = build_worker(up_settings)
    worker.start()
    try:
        await until(settled)
    finally:
        await worker.close()
    assert fake.sent(user.id) == []
    assert await Delivery.all().values_list("status", flat=True) == ["dropped"]


async def test_workers_fanning_out_at_once_make_one_message_per_notice(up_settings):
    account = await orgs_setup.account("lead681")
    await with_chat(account, 681)
    for n in range(30):
        await result_notice(account, ref=f"result:{n}")
    claimed = await asyncio.gather(*(fan_out_notices(up_settings, {"telegram"}, limit=7)
                                     for _worker in range(6)))
    while more := await fan_out_notices(up_settings, {"telegram"}, limit=7):
        claimed.append(more)
    assert sum(claimed) == 30
    firsts = await Delivery.all().values_list("first_event_id", flat=True)
    assert sorted(firsts) == sorted(await PersonNotice.all().values_list("id", flat=True))


@pytest.fixture
async def wechat():
    f = FakeWeChat(app_id=f"wx{secrets.token_hex(8)}")
    await f.start()
    yield f
    await f.stop()


async def test_a_notice_reaches_wechat_as_text_in_the_window_else_as_the_template(
        settings, wechat):
    from portal.delivery import build_worker

    wx = settings.model_copy(update={
        "wechat_app_id": wechat.app_id, "wechat_app_secret": APP_SECRET,
        "wechat_token": "T0ken", "wechat_api_base": wechat.base,
        "wechat_update_template_id": "TPL_progress", "updates_settle_seconds": 0.0,
        "quiet_hours": "", "public_base_url": BASE})
    talking, silent = await orgs_setup.account("wx691"), await orgs_setup.account("wx692")
    await Identity.create(key="wx:oTalking", kind="wx", person_id=talking.person_id)
    await Identity.create(key="wx:oSilent", kind="wx", person_id=silent.person_id)
    await record_inbound("oTalking", utcnow() - timedelta(hours=1))
    for account in (talking, silent):
        await result_notice(account)
    worker = build_worker(wx)
    worker.start()
    try:
        await until(lambda: wechat.sent("oTalking") and wechat.sent("oSilent"))
        await until(settled)
    finally:
        await worker.close()
    (text,) = wechat.sent("oTalking")
    assert text["kind"] == "custom" and "your bid won" in text["text"]
    assert "Result page (test)" in text["text"]
    assert text["text"].count(f"{BASE}/orgs/tenders/GT-2026-00012") == 1
    assert "回复" not in text["text"]  # no rating numbers offered
    (template,) = wechat.sent("oSilent")
    assert template["kind"] == "template"
    assert template["url"] == f"{BASE}/orgs/tenders/GT-2026-00012"
    values = {k: v["value"] for k, v in template["data"].items()}
    assert values["character_string1"] == "GT-2026-00012"


async def test_the_account_page_counts_unread_notices_until_they_are_seen(app):
    account = await orgs_setup.account("lead671")
    for n in range(3):
        await result_notice(account, ref=f"count:{n}")
    async with await orgs_setup.member_client(app, account) as browser:
        page = await browser.get("/account?lang=en", headers=HTML)
        assert page.status_code == 200 and "My notices" in page.text
        assert "3 unread" in text_of(page.text)
        zh = await browser.get("/account?lang=zh-CN", headers=HTML)
        assert "3 条未读" in text_of(zh.text)
        await browser.get("/account/notices?lang=en", headers=HTML)
        seen = await browser.get("/account?lang=en", headers=HTML)
        assert "My notices" in seen.text and "unread" not in text_of(seen.text)
