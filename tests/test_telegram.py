"""The Telegram bot end to end: the real aiogram client talks to a fake Bot API server on
loopback (tests/fake_telegram.py), and updates reach the real app's webhook as Telegram sends
them, on SQLite and PostgreSQL (and with dialogue state in memory/DB or Redis where it matters)."""

from __future__ import annotations

import json
import logging
import random
import uuid

import httpx
import pytest
from PIL import Image

from bot.telegram.adapter import split_text
from bot.telegram.models import TelegramUpdate
from portal.app import create_app
from portal.cases.models import Case, Identity, Photo, Report
from portal.settings import Settings
from tests.fake_telegram import TOKEN, FakeTelegram, User
from tests.photos import has_exif_gps, jpeg_with_gps

SECRET = "test-secret_0123456789"
WEBHOOK = "http://testserver/bot/telegram/webhook"
# People's Square, and a place a few kilometres away.
SQUARE = (31.2304, 121.4737)
ELSEWHERE = (31.1900, 121.4400)


@pytest.fixture
def tg_settings(settings: Settings, fake: FakeTelegram) -> Settings:
    return settings.model_copy(update={
        "telegram_bot_token": TOKEN, "telegram_webhook_secret": SECRET,
        "telegram_api_base": fake.base, "telegram_flood": "1000/second"})


class Bot:
    """The app with its webhook, and the fake Telegram delivering to it."""

    def __init__(self, settings: Settings, fake: FakeTelegram):
        self.settings, self.fake = settings, fake
        self.expect_failures = False
        self.app = create_app(settings, manage_db=False)
        namespace = f"test-{uuid.uuid4().hex}"
        self.app.state.throttle.namespace = namespace
        gate = self.channel.gate
        for throttle in (gate.flood, gate.warn, gate.album):
            throttle.namespace = f"{namespace}-{throttle.namespace}"
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://testserver")
        fake.http, fake.webhook_url, fake.webhook_secret = self.client, WEBHOOK, SECRET

    @property
    def channel(self):
        return self.app.state.telegram

    async def send(self, *updates: dict) -> list[httpx.Response]:
        """Delivers each update and waits until the bot has handled it."""
        answers = []
        for update in updates:
            answers.append(await self.fake.deliver(update))
            await self.channel.drain()
        return answers

    async def close(self) -> None:
        await self.channel.close()
        await self.client.aclose()

    async def close_checked(self) -> None:
        """Closes, and fails the test if any update failed that it did not expect to."""
        await self.close()
        failed = await TelegramUpdate.filter(status="failed").values_list("update_id",
                                                                           "error_ref")
        assert failed == [], f"updates failed: {failed}"


@pytest.fixture
async def tg(tg_settings: Settings, fake: FakeTelegram):
    bot = Bot(tg_settings, fake)
    yield bot
    if bot.expect_failures:
        await bot.close()
    else:
        await bot.close_checked()


def new_user(lang: str = "zh-hans") -> User:
    # Random ids: Redis state outlives a test run.
    return User(random.randrange(10**8, 10**9), "Test", lang)


async def consent(tg: Bot, user: User) -> None:
    await tg.send(tg.fake.command(user, "start"))
    await tg.send(tg.fake.press(user, data="d:consent:yes"))


def markup_data(fake: FakeTelegram) -> list[str]:
    return [b["callback_data"] for _m, p in fake.calls for row in
            (p.get("reply_markup") or {}).get("inline_keyboard", []) for b in row
            if "callback_data" in b]


async def report_flow(tg: Bot, user: User, text: str, place=SQUARE) -> str:
    """Describe, confirm the category, share the location, send; the receipt's text."""
    fake = tg.fake
    await tg.send(fake.text(user, text))
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:cat:"))))
    assert fake.last(user.id)["reply_markup"]["keyboard"][0][0]["request_location"] is True
    await tg.send(fake.location(user, *place))
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:send:"))))
    return fake.last(user.id)["text"]


# The webhook and the inbox.

async def test_bot_is_off_without_a_token(settings: Settings, caplog):
    app = create_app(settings, manage_db=False)
    assert app.state.telegram is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        r = await client.post("/bot/telegram/webhook", json={"update_id": 1})
    assert r.status_code == 404
    with caplog.at_level(logging.INFO, logger="gridlink.telegram"):
        async with app.router.lifespan_context(app):
            pass
    assert [r.message for r in caplog.records if r.name == "gridlink.telegram"] == [
        "Telegram bot is off: GRIDLINK_TELEGRAM_BOT_TOKEN is not set."]


async def test_wrong_secret_is_refused_and_nothing_is_processed(tg: Bot):
    user = new_user()
    update = tg.fake.command(user, "start")
    for secret in ("", "wrong", SECRET + "x", "sécret".encode("latin-1"), b"\xff" * 22):
        r = await tg.fake.deliver(update, secret=secret)
        assert r.status_code == 401
    await tg.channel.drain()
    assert await TelegramUpdate.all().count() == 0
    assert tg.fake.sent(user.id) == []


async def test_hostile_bodies_get_a_4xx_never_a_500(tg: Bot):
    post = tg.client.post
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    cases = [
        (b"not json", 400), (b"[1, 2]", 400), (b"{}", 400), (b'{"update_id": "x"}', 400),
        (b'{"update_id": 99999999999999999999999}', 400), (b'{"update_id": -5}', 400),
        (b'{"update_id": 7, "message": {"text": 5}}', 400), (b"\xff\xfe", 400),
        (b'{"update_id": 1, "x": "' + b"a" * (1024 * 1024) + b'"}', 413),
    ]
    for body, status in cases:
        r = await post("/bot/telegram/webhook", content=body, headers=headers)
        assert r.status_code == status, body[:40]
        assert r.json()["ok"] is False
    await tg.channel.drain()
    assert await TelegramUpdate.all().count() == 0


async def test_an_update_delivered_twice_is_processed_once(tg: Bot):
    user = new_user()
    update = tg.fake.command(user, "start")
    first, second = await tg.send(update, update)
    assert first.status_code == second.status_code == 200
    assert second.json()["detail"] == "received before"
    assert len(tg.fake.sent(user.id)) == 1
    row = await TelegramUpdate.get(update_id=update["update_id"])
    assert (row.status, row.attempts) == ("done", 1)


async def test_a_burst_with_redeliveries_is_processed_once_each(tg: Bot):
    """Telegram delivers over parallel connections: claims arriving together share a
    statement, and a redelivery inside the same burst is still refused."""
    import asyncio

    users = [new_user() for _ in range(6)]
    updates = [tg.fake.command(u, "help") for u in users]
    answers = await asyncio.gather(*(tg.fake.deliver(u) for u in updates + updates[:3]))
    await tg.channel.drain()
    assert all(a.status_code == 200 for a in answers)
    assert sorted(a.json()["detail"] for a in answers) == ["accepted"] * 6 + [
        "received before"] * 3
    assert all(len(tg.fake.sent(u.id)) == 1 for u in users)
    assert await TelegramUpdate.filter(status="done").count() == 6


async def test_a_stale_pending_update_is_finished_by_the_sweep(tg: Bot):
    """A process died after claiming an update: the sweep of another one handles it."""
    from datetime import UTC, datetime, timedelta

    user = new_user()
    update = tg.fake.command(user, "start")
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    await TelegramUpdate.create(bot_id=123456, update_id=update["update_id"], payload=update,
                                status="pending", attempts=1, received_at=long_ago,
                                claimed_at=long_ago)
    assert await tg.channel.sweep() == 1
    await tg.channel.drain()
    assert len(tg.fake.sent(user.id)) == 1
    row = await TelegramUpdate.get(update_id=update["update_id"])
    assert (row.status, row.attempts) == ("done", 2)
    # Redelivered by Telegram afterwards: still nothing more.
    await tg.send(update)
    assert len(tg.fake.sent(user.id)) == 1


# Conversations.

async def test_the_whole_report_flow_in_chinese(tg: Bot):
    user = new_user("zh-hans")
    await tg.send(tg.fake.command(user, "start"))
    greeting = tg.fake.last(user.id)
    assert "隐私" in greeting["text"] and "/forget" in greeting["text"]
    assert "同意" in tg.fake.buttons(greeting)[0]
    await tg.send(tg.fake.press(user, data="d:consent:yes"))
    receipt = await report_flow(tg, user, "人民广场路灯坏了，晚上很黑")
    case = await Case.get()
    assert case.code in receipt
    assert "/cases/" + case.code in json.dumps(tg.fake.last(user.id)["reply_markup"])
    report = await Report.get()
    assert (report.identity, report.channel, report.language) == (f"tg:{user.id}",
                                                                  "telegram", "zh-CN")
    assert abs(report.lat - SQUARE[0]) < 1e-6
    # The case page shows it, without the reporter's chat id.
    page = await tg.client.get(f"/cases/{case.code}")
    assert page.status_code == 200 and "路灯" in page.text and str(user.id) not in page.text
    # Every callback query was answered; no callback data was over 64 bytes.
    assert tg.fake.pending_queries == tg.fake.answered
    data = markup_data(tg.fake)
    assert data and all(len(d.encode()) <= 64 for d in data)


async def test_the_whole_report_flow_in_english(tg: Bot):
    user = new_user("en")
    await tg.send(tg.fake.command(user, "start"))
    assert "Privacy" in tg.fake.last(user.id)["text"]
    await tg.send(tg.fake.press(user, data="d:consent:yes"))
    receipt = await report_flow(tg, user, "The street light at People's Square is broken")
    case = await Case.get()
    assert case.code in receipt and "case" in receipt.lower()
    assert (await Report.get()).language == "en"
    # The location keyboard was taken away once answered.
    assert any("remove_keyboard" in (p.get("reply_markup") or {})
               for p in tg.fake.calls_of("sendMessage"))


async def test_a_one_line_report_asks_only_for_what_is_missing(tg: Bot):
    user = new_user()
    fake = tg.fake
    await consent(tg, user)
    await tg.send(fake.text(user, "南京东路100号门口垃圾满了"))
    # Only the category is asked, suggested from the text.
    assert "垃圾" in fake.last(user.id)["text"]
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:cat:"))))
    # The address was in the line: no location keyboard, straight to the summary.
    summary = fake.last(user.id)
    assert "南京东路100号" in summary["text"] and "keyboard" not in summary["reply_markup"]
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:send:"))))
    case = await Case.get()
    assert case.code in fake.last(user.id)["text"]
    assert "南京东路100号" in (await Report.get()).address


async def test_a_report_of_the_same_problem_by_two_people_is_merged(tg: Bot):
    first, second = new_user(), new_user("en")
    await consent(tg, first)
    await report_flow(tg, first, "人民广场路灯坏了，晚上很黑")
    await consent(tg, second)
    receipt = await report_flow(tg, second, "人民广场路灯坏了，一直不亮")
    case = await Case.get()
    assert await Case.all().count() == 1
    assert case.code in receipt and "2" in receipt
    assert case.reporter_count == 2


async def test_a_throttled_report_keeps_the_draft(tg_settings: Settings, fake: FakeTelegram):
    tg = Bot(tg_settings.model_copy(update={"throttle_new_reports": "1/10 minutes"}), fake)
    try:
        user = new_user("en")
        await consent(tg, user)
        await report_flow(tg, user, "Broken street light at People's Square")
        said = await report_flow(tg, user, "Rubbish bins overflowing by the river", ELSEWHERE)
        assert await Case.all().count() == 1
        assert "kept" in said
        assert "d:send:" in json.dumps(fake.last(user.id)["reply_markup"])
    finally:
        await tg.close_checked()


async def test_a_photo_is_stored_without_its_exif_gps(tg: Bot):
    user = new_user("en")
    await consent(tg, user)
    original = jpeg_with_gps()
    assert has_exif_gps(original)
    await tg.send(tg.fake.photo(user, original, caption="Pothole on the pavement"))
    # The caption was the description: the bot asks about the category next, not for one.
    assert any(d.startswith("d:cat:") for d in markup_data(tg.fake))
    assert tg.fake.calls_of("getFile")
    await report_flow_rest(tg, user)
    photo = await Photo.get()
    stored = Image.open(tg.settings.media_dir / photo.path)
    assert not stored.getexif()


async def report_flow_rest(tg: Bot, user: User) -> None:
    fake = tg.fake
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:cat:"))))
    await tg.send(fake.location(user, *SQUARE))
    await tg.send(fake.press(user, data=next(
        d for d in reversed(markup_data(fake)) if d.startswith("d:send:"))))


async def test_a_photo_that_cannot_be_downloaded(tg: Bot, caplog):
    """Too large for the bot (a document image over GRIDLINK_MAX_PHOTO_BYTES), or gone at
    Telegram: the person is asked to send it again; no failure, no token in the log."""
    user = new_user("en")
    await consent(tg, user)
    big = b"\xff\xd8" + b"0" * (tg.settings.max_photo_bytes + 10)
    with caplog.at_level(logging.DEBUG):
        await tg.send(tg.fake.document(user, big, caption="Pothole on the pavement"))
        assert "could not be downloaded" in "\n".join(tg.fake.texts(user.id)[-2:])
        update = tg.fake.photo(user, jpeg_with_gps())
        tg.fake.gone.update(tg.fake.files)
        await tg.send(update)
    assert "could not be downloaded" in "\n".join(tg.fake.texts(user.id)[-2:])
    assert tg.fake.calls_of("getFile")
    assert TOKEN not in caplog.text and "/file/bot" not in caplog.text
    assert not await Photo.exists()


async def test_a_photo_larger_than_getfile_announced_is_cut_off(tg_settings: Settings,
                                                                fake: FakeTelegram):
    """getFile says 1 KB, the download goes on past the limit: the cap counts what arrives,
    stops there, and the person is asked to send the photo again."""
    tg = Bot(tg_settings.model_copy(update={"max_photo_bytes": 100_000}), fake)
    try:
        user = new_user("en")
        await consent(tg, user)
        big = b"\xff\xd8" + b"0" * 300_000
        await tg.send(fake.photo(user, big, caption="Pothole on the pavement", announce=1000))
        got, = [c for c in fake.calls_of("getFile")]
        assert got["file_id"] in fake.announced
        # Not "too large" nor "not a photo": those would come from the whole file, downloaded.
        assert "could not be downloaded" in "\n".join(fake.texts(user.id)[-2:])
        assert not await Photo.exists()
    finally:
        await tg.close_checked()


async def test_an_album_and_a_venue(tg: Bot):
    user = new_user("en")
    await consent(tg, user)
    await tg.send(*tg.fake.album(user, [jpeg_with_gps(color=c) for c in
                                        ("red", "green", "blue", "white")],
                                 caption="Graffiti on the wall"))
    await tg.send(tg.fake.press(user, data=next(
        d for d in reversed(markup_data(tg.fake)) if d.startswith("d:cat:"))))
    await tg.send(tg.fake.venue(user, *SQUARE, "People's Square", "120 Renmin Avenue"))
    await tg.send(tg.fake.press(user, data=next(
        d for d in reversed(markup_data(tg.fake)) if d.startswith("d:send:"))))
    case = await Case.get()
    assert await Photo.filter(report__case=case).count() == 3


async def test_a_user_who_blocked_the_bot(tg: Bot, caplog):
    user = new_user()
    tg.fake.fail(user.id, "blocked")
    with caplog.at_level(logging.INFO, logger="gridlink.telegram"):
        r, = await tg.send(tg.fake.command(user, "start"))
    assert r.status_code == 200
    row = await TelegramUpdate.get()
    assert (row.status, row.error_ref) == ("done", "blocked")
    assert any("blocked the bot" in rec.message for rec in caplog.records)
    # Unblocked: the next updates are answered.
    tg.fake.clear_faults()
    await tg.send(tg.fake.command(user, "start"))
    assert len(tg.fake.sent(user.id)) == 1


async def test_a_rate_limited_reply_fails_with_a_reference(tg: Bot, caplog):
    tg.expect_failures = True
    user = new_user()
    tg.fake.fail(user.id, "429", retry_after=7, times=1)
    with caplog.at_level(logging.ERROR, logger="gridlink.telegram"):
        await tg.send(tg.fake.command(user, "start"))
    row = await TelegramUpdate.get()
    assert row.status == "failed" and row.error_ref.startswith("E")
    assert row.error_ref in caplog.text
    # The fault was a single 429: the apology with the reference got through.
    assert row.error_ref in tg.fake.last(user.id)["text"]


async def test_a_short_rate_limit_is_waited_out(tg: Bot):
    user = new_user("en")
    tg.fake.fail(user.id, "429", retry_after=1, times=1, methods={"sendmessage"})
    await tg.send(tg.fake.command(user, "start"))
    assert "Privacy" in tg.fake.last(user.id)["text"]
    assert len(tg.fake.calls_of("sendMessage")) == 2  # refused once, then sent


async def test_a_handler_failure_shows_a_reference(tg: Bot, caplog):
    """The dialogue's store goes away mid-conversation (a database error inside the handler)."""
    tg.expect_failures = True
    user = new_user("en")
    store = tg.channel.dialogue.store

    async def broken(identity):
        raise RuntimeError("database gone")

    original, store.load = store.load, broken
    try:
        with caplog.at_level(logging.ERROR, logger="gridlink.telegram"):
            await tg.send(tg.fake.text(user, "hello"))
    finally:
        store.load = original
    row = await TelegramUpdate.get()
    assert row.status == "failed"
    said = tg.fake.last(user.id)["text"]
    assert row.error_ref in said and "went wrong" in said
    assert f"ref {row.error_ref}" in caplog.text and "database gone" in caplog.text


async def test_forget(tg: Bot):
    user = new_user("en")
    await consent(tg, user)
    await report_flow(tg, user, "Broken street light at People's Square")
    await tg.send(tg.fake.command(user, "forget"))
    await tg.send(tg.fake.press(user, data="d:forget:yes"))
    assert not await Identity.filter(key=f"tg:{user.id}").exists()
    report = await Report.get()
    assert str(user.id) not in report.identity
    # A new /start begins again with the privacy notice.
    await tg.send(tg.fake.command(user, "start"))
    assert "Privacy" in tg.fake.last(user.id)["text"]


async def test_unsupported_messages_get_a_hint(tg: Bot):
    user = new_user("en")
    await tg.send(tg.fake.sticker(user))
    assert "text, photos and locations" in tg.fake.last(user.id)["text"]


async def test_the_adapters_own_texts_follow_the_language_chosen_with_lang(
        tg_settings: Settings, fake: FakeTelegram):
    """Telegram says Chinese, the person chose English: the location button, the hint, the
    group answer, the apology and the flood warning are English too."""
    tg = Bot(tg_settings.model_copy(update={"telegram_flood": "8/minute"}), fake)
    tg.expect_failures = True
    try:
        user = new_user("zh-hans")
        group = {"id": -100987654321, "type": "supergroup", "title": "Residents"}
        await tg.send(fake.command(user, "start"))
        assert "隐私" in fake.last(user.id)["text"]
        await tg.send(fake.press(user, data="d:lang:en"))
        await tg.send(fake.press(user, data="d:consent:yes"))
        await tg.send(fake.sticker(user))
        assert "text, photos and locations" in fake.last(user.id)["text"]
        await tg.send(fake.command(user, "start", chat=group, mention="gridlink_test_bot"))
        answer = fake.last(group["id"])
        assert "private chat" in answer["text"]
        assert fake.buttons(answer) == ["Write to me privately"]
        await tg.send(fake.text(user, "The street light at People's Square is broken"))
        await tg.send(fake.press(user, data=next(
            d for d in reversed(markup_data(fake)) if d.startswith("d:cat:"))))
        keyboard = fake.last(user.id)["reply_markup"]["keyboard"]
        assert keyboard[0][0]["text"] == "📍 Send my location"
        fake.fail(user.id, "429", retry_after=7, times=1)
        await tg.send(fake.command(user, "help"))
        assert "went wrong" in fake.last(user.id)["text"]
        await tg.send(fake.text(user, "one too many"))  # the ninth in a minute
        assert "very fast" in fake.last(user.id)["text"]
    finally:
        await tg.close()


async def test_long_answers_are_split_within_the_limit():
    text = ("街道" * 1500 + "\n") * 3 + "😀" * 3000
    pieces = split_text(text)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in pieces)


# State shared by processes: memory/DB and Redis.

@pytest.fixture
def tg_state_settings(tg_settings: Settings, state_url: str) -> Settings:
    return tg_settings.model_copy(update={"redis_url": state_url})


async def test_a_restart_in_the_middle_of_a_report(tg_state_settings: Settings,
                                                   fake: FakeTelegram):
    user = new_user("en")
    first = Bot(tg_state_settings, fake)
    try:
        await consent(first, user)
        await first.send(fake.text(user, "Broken street light at People's Square"))
    finally:
        await first.close_checked()
    second = Bot(tg_state_settings, fake)
    try:
        await report_flow_rest(second, user)
        case = await Case.get()
        assert case.code in fake.last(user.id)["text"]
        assert "street light" in (await Report.get()).text
    finally:
        await second.close_checked()


async def test_flood_control_warns_once_and_drops_the_rest(tg_state_settings: Settings,
                                                          fake: FakeTelegram):
    tg = Bot(tg_state_settings.model_copy(update={"telegram_flood": "3/minute"}), fake)
    try:
        user = new_user("en")
        for n in range(8):
            await tg.send(fake.text(user, f"hello {n}"))
        texts = tg.fake.texts(user.id)
        warnings = [t for t in texts if "very fast" in t]
        assert len(warnings) == 1
        assert len(texts) == 3 + 1  # three answered, one warning, four dropped
        # A press past the limit is still answered (no spinning button).
        await consent_press_dropped(tg, user)
        assert await TelegramUpdate.filter(status="done").count() == 9
    finally:
        await tg.close_checked()


async def consent_press_dropped(tg: Bot, user: User) -> None:
    message = tg.fake.sent(user.id)[0]
    update = tg.fake.callback(user, message, "d:consent:yes")
    await tg.send(update)
    assert update["callback_query"]["id"] in tg.fake.answered


# Group chats.

async def test_in_a_group_only_commands_addressed_to_the_bot_are_answered(tg: Bot):
    user = new_user("en")
    group = {"id": -100123456789, "type": "supergroup", "title": "Residents"}
    fake = tg.fake
    await tg.send(fake.text(user, "rubbish everywhere", chat=group),
                  fake.command(user, "start", chat=group),
                  fake.command(user, "start", chat=group, mention="other_bot"))
    assert fake.sent(group["id"]) == []
    await tg.send(fake.command(user, "start", chat=group, mention="Gridlink_Test_Bot"))
    answer, = fake.sent(group["id"])
    assert "private" in answer["text"]
    url = answer["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url == "https://t.me/gridlink_test_bot?start=group"
    # Nothing said in the group reached the dialogue.
    assert fake.sent(user.id) == []


async def test_my_cases_page_in_place(tg_settings: Settings, fake: FakeTelegram):
    """Six cases: /my shows five and "Older ›"; the paging buttons edit that same message,
    nothing new is sent, and every press is answered."""
    tg = Bot(tg_settings.model_copy(update={"throttle_new_reports": "50/10 minutes"}), fake)
    try:
        user = new_user("en")
        await consent(tg, user)
        problems = ["The street light is out", "A manhole cover is missing",
                    "Rubbish is piled up", "A tree branch fell", "A pothole in the road",
                    "A water pipe is leaking"]
        for n, problem in enumerate(problems):
            await report_flow(tg, user, problem, (31.0 + n / 10, 121.47))
        assert await Case.all().count() == 6
        await tg.send(fake.command(user, "my"))
        listing = fake.last(user.id)
        sent_before = len(fake.sent(user.id))

        def case_buttons(message):
            return [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
                    for b in row if b["callback_data"].startswith("d:case:")]

        first_page = case_buttons(listing)
        assert len(first_page) == 5 and "page 1 of 2" in listing["text"]
        await tg.send(fake.press(user, label="Older"))
        assert len(fake.sent(user.id)) == sent_before  # edited, not sent again
        edited = fake.last(user.id)
        assert edited["message_id"] == listing["message_id"]
        assert "page 2 of 2" in edited["text"]
        second_page = case_buttons(edited)
        assert len(second_page) == 1 and not set(second_page) & set(first_page)
        assert "Older" not in " ".join(fake.buttons(edited))
        await tg.send(fake.press(user, label="Newer"))
        back = fake.last(user.id)
        assert (back["message_id"], len(fake.sent(user.id))) == (listing["message_id"],
                                                                  sent_before)
        assert "page 1 of 2" in back["text"] and case_buttons(back) == first_page
        assert len(fake.calls_of("editMessageText")) == 2
        # A case opens as a new message with its timeline.
        await tg.send(fake.press(user, data=first_page[0]))
        assert len(fake.sent(user.id)) == sent_before + 1
        assert first_page[0].split(":")[2] in fake.last(user.id)["text"]
        assert fake.pending_queries == fake.answered
    finally:
        await tg.close_checked()


async def test_buttons_and_the_location_button_in_one_answer(tg: Bot):
    """Telegram gives a message one keyboard: the text comes with its choices, then one short
    line carries the "send my location" keyboard; the text is not repeated."""
    from bot.dialogue.io import Button as DialogueButton
    from bot.dialogue.io import Say
    from bot.telegram.adapter import render

    user = new_user("zh-hans")
    await tg.send(tg.fake.command(user, "help"))
    before = len(tg.fake.sent(user.id))
    text = "Where is it? Type the address, or tap one of these."
    await render(tg.channel.bot, user.id, [Say(text, [[DialogueButton("Home", "place", "h")]],
                                              ask_location=True, language="en")], "zh-hans")
    choices, location = tg.fake.sent(user.id)[before:]
    assert choices["text"] == text and tg.fake.buttons(choices) == ["Home"]
    markup = tg.fake.calls_of("sendMessage")[-1]["reply_markup"]
    assert markup["keyboard"][0][0] == {"text": "📍 Send my location", "request_location": True}
    assert location["text"] == "Or send your location with the button below."


async def test_callback_data_of_every_button_fits_in_64_bytes(tg: Bot):
    user = new_user("en")
    await consent(tg, user)
    await report_flow(tg, user, "Broken street light at People's Square " + "x" * 300)
    await tg.send(tg.fake.command(user, "my"))
    await tg.send(tg.fake.command(user, "lang"))
    data = markup_data(tg.fake)
    assert len(data) > 5
    assert all(0 < len(d.encode()) <= 64 for d in data)
    # The fake refuses longer data (BUTTON_DATA_INVALID): no call was refused for it.
    assert not any("BUTTON" in description for _m, description in tg.fake.refused)


# The commands.

async def _gridlink(settings: Settings, *args: str, env: dict | None = None):
    import asyncio
    import os
    import sys

    full_env = {**os.environ, "GRIDLINK_DATABASE_URL": settings.database_url,
                "GRIDLINK_MEDIA_DIR": str(settings.media_dir),
                "GRIDLINK_TELEGRAM_BOT_TOKEN": settings.telegram_bot_token,
                "GRIDLINK_TELEGRAM_API_BASE": settings.telegram_api_base, **(env or {})}
    # A subprocess the loop does not wait on: the fake answers it from this very loop.
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portal.cli", "telegram", *args, env=full_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def test_set_webhook_registers_the_url_with_the_secret(tg_settings: Settings,
                                                             fake: FakeTelegram):
    proc = await _gridlink(tg_settings, "set-webhook", "https://example.org/bot/telegram/webhook",
                           env={"GRIDLINK_TELEGRAM_WEBHOOK_SECRET": SECRET})
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, out
    assert "https://example.org/bot/telegram/webhook" in out
    call, = fake.calls_of("setWebhook")
    assert call["secret_token"] == SECRET
    assert call["allowed_updates"] == ["message", "callback_query"]
    # The command menu, in Chinese by default and in English.
    zh, en = fake.calls_of("setMyCommands")
    assert "language_code" not in zh and en["language_code"] == "en"
    assert {"command": "my", "description": "我的案件"} in zh["commands"]
    assert {"command": "my", "description": "My cases"} in en["commands"]
    # Without a secret it refuses to register a webhook that would refuse every update.
    proc = await _gridlink(tg_settings, "set-webhook", "https://example.org/x",
                           env={"GRIDLINK_TELEGRAM_WEBHOOK_SECRET": ""})
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 1 and "SECRET" in out


async def test_polling_feeds_the_same_inbox(tg_settings: Settings, fake: FakeTelegram):
    import asyncio
    import signal
    import time

    fake.webhook_url = "https://example.org/set-by-someone-earlier"
    user = new_user("en")
    proc = await _gridlink(tg_settings, "poll")
    try:
        deadline = time.monotonic() + 60
        # The poller takes the webhook down first (getUpdates is refused while one is set).
        while not fake.calls_of("deleteWebhook"):
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.05)
        await fake.deliver(fake.command(user, "start"))
        while not fake.sent(user.id):
            assert time.monotonic() < deadline, "the poller did not answer"
            assert proc.returncode is None
            await asyncio.sleep(0.05)
        assert "Privacy" in fake.last(user.id)["text"]
        row = await TelegramUpdate.get()
        assert row.status in ("pending", "done")
    finally:
        proc.send_signal(signal.SIGINT)
        out = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    assert proc.returncode == 0, out
    assert "Traceback" not in out


async def test_a_real_server_answers_through_the_webhook(empty_database_url: str, tmp_path,
                                                         fake: FakeTelegram):
    """`gridlink serve` with the bot on (two worker processes on PostgreSQL, so either takes
    the next step of a conversation; SQLite has one writer): real HTTP deliveries, and the
    server stops cleanly."""
    import asyncio
    import time

    from tests.live import live_server

    env = {"GRIDLINK_TELEGRAM_BOT_TOKEN": TOKEN, "GRIDLINK_TELEGRAM_WEBHOOK_SECRET": SECRET,
           "GRIDLINK_TELEGRAM_API_BASE": fake.base,
           # A script answers faster than a person: flood control would drop its steps.
           "GRIDLINK_TELEGRAM_FLOOD": "1000/second"}
    user = new_user("en")
    workers = 2 if empty_database_url.startswith("postgres") else 1
    with live_server(empty_database_url, tmp_path, workers=workers, env=env) as base:
        fake.webhook_url, fake.webhook_secret = f"{base}/bot/telegram/webhook", SECRET

        async def step(update: dict, done) -> None:
            r = await fake.deliver(update)
            assert r.status_code == 200
            deadline = time.monotonic() + 30
            while not (fake.sent(user.id) and done(fake.last(user.id))):
                assert time.monotonic() < deadline, fake.texts(user.id)
                await asyncio.sleep(0.02)

        def has(prefix):
            return lambda m: prefix in json.dumps(m.get("reply_markup"))

        await step(fake.command(user, "start"), lambda m: "Privacy" in m["text"])
        await step(fake.press(user, data="d:consent:yes"), lambda m: "Describe" in m["text"])
        await step(fake.text(user, "Broken street light at People's Square"), has("d:cat:"))
        await step(fake.press(user, data=next(
            d for d in reversed(markup_data(fake)) if d.startswith("d:cat:"))),
            has("request_location"))
        await step(fake.location(user, *SQUARE), has("d:send:"))
        await step(fake.press(user, data=next(
            d for d in reversed(markup_data(fake)) if d.startswith("d:send:"))),
            lambda m: "case GL-" in m["text"])
        code = fake.last(user.id)["text"].split("case ")[1].split(".")[0]
        page = await fake.http.get(f"{base}/cases/{code}")
        assert page.status_code == 200 and "street light" in page.text
        wrong = await fake.deliver(fake.command(user, "my"), secret="nope")
        assert wrong.status_code == 401
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "Traceback" not in log and "ERROR" not in log
    assert "Unclosed client session" not in log
