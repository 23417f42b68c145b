"""The chat dialogue, driven through Dialogue.handle as an adapter drives it: on SQLite and
PostgreSQL, with the dialogue state in the database and in Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from PIL import Image

from bot.dialogue.cases import rating_buttons
from bot.dialogue.engine import Dialogue
from bot.dialogue.io import (
    Button,
    Choice,
    Command,
    Link,
    Location,
    Person,
    Photo,
    PhotoUnavailable,
    Press,
    Say,
    Text,
)
from bot.dialogue.models import DialogueState
from bot.dialogue.store import Conflict, DbDialogueStore, RedisDialogueStore, sweep_expired
from feedback.models import Rating
from portal.cases.models import Case, Identity, Report, Status, Subscription
from portal.cases.models import Person as PersonRow
from portal.cases.people import forget_identity, link_identity
from portal.cases.service import change_status
from portal.intake.throttle import Throttle, storage_for
from tests.photos import jpeg_with_gps

LIFETIME = timedelta(days=7)


class FakePorts:
    """What an adapter gives: picture bytes by reference."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def add(self, ref: str, colour=(200, 30, 30)) -> str:
        self.files[ref] = jpeg_with_gps(size=(64, 48), color=colour)
        return ref

    async def fetch_photo(self, ref: str) -> bytes:
        self.fetched.append(ref)
        if ref not in self.files:
            raise PhotoUnavailable(ref)
        return self.files[ref]


@pytest.fixture
async def store(settings, state_url):
    if state_url:
        s = RedisDialogueStore(state_url, LIFETIME, prefix=f"test-dialogue-{uuid.uuid4().hex}")
    else:
        s = DbDialogueStore(LIFETIME)
    yield s
    if state_url:
        async for key in s.redis.scan_iter(match=f"{s.prefix}:*"):
            await s.redis.delete(key)
    await s.close()


@pytest.fixture
def make_dialogue(settings, store):
    def make(limits: str = "5/10 minutes;20/day", the_store=None) -> Dialogue:
        throttle = Throttle(storage_for(""), limits, namespace=f"test-{uuid.uuid4().hex}")
        return Dialogue(settings, throttle, the_store or store)
    return make


@pytest.fixture
def dialogue(make_dialogue) -> Dialogue:
    return make_dialogue()


def person(n: int = 1, language: str | None = "zh-hans") -> Person:
    return Person(identity=f"tg:{1000 + n}", channel="telegram", language=language)


def buttons(replies: list[Say]) -> list[Button]:
    return [b for r in replies for row in r.buttons for b in row if isinstance(b, Button)]


def button(replies: list[Say], action: str, arg_part: str = "") -> Button:
    found = [b for b in buttons(replies) if b.action == action and arg_part in b.arg]
    assert found, f"no {action} button in {[r.text for r in replies]}"
    return found[0]


def text_of(replies: list[Say]) -> str:
    return "\n".join(r.text for r in replies)


def press(b: Button) -> Press:
    return Press(b.action, b.arg)


async def agree(d: Dialogue, who: Person, ports) -> None:
    replies = await d.handle(who, Command("start"), ports)
    if any(b.action == "consent" for b in buttons(replies)):
        await d.handle(who, press(button(replies, "consent", "yes")), ports)


def check_button_contract(replies: list[Say]) -> None:
    for b in buttons(replies):
        assert b.action.isascii() and b.action.isalpha() and len(b.action) <= 8
        assert len(b.arg.encode()) <= 40 and ":" not in b.arg


# ------------------------------------------------------------------------------ reporting


async def test_whole_report_flow_in_chinese(dialogue, settings):
    who, ports = person(), FakePorts()
    replies = await dialogue.handle(who, Command("start"), ports)
    assert "您好" in text_of(replies) and "/forget" in text_of(replies)
    assert "7 天" in text_of(replies)  # how long a draft is kept
    replies = await dialogue.handle(who, press(button(replies, "consent", "yes")), ports)
    replies = await dialogue.handle(who, Text("小区门口的垃圾桶满了，好几天没人清运"), ports)
    assert "垃圾" in text_of(replies)
    check_button_contract(replies)
    replies = await dialogue.handle(who, press(button(replies, "cat", "garbage")), ports)
    assert replies[-1].ask_location
    replies = await dialogue.handle(who, Location(31.2304, 121.4737), ports)
    assert "请核对" in text_of(replies)
    replies = await dialogue.handle(who, Photo(ports.add("f1"), unique="u1"), ports)
    assert "1" in text_of(replies)
    replies = await dialogue.handle(who, press(button(replies, "send")), ports)
    case = await Case.get()
    assert case.code in text_of(replies) and case.category == "garbage"
    assert any(isinstance(b, Link) and case.code in b.url for r in replies for row in r.buttons
               for b in row)
    report = await Report.get(case_id=case.id)
    assert report.identity == who.identity and report.channel == "telegram"
    assert report.language == "zh-CN"
    # The stored photo has no EXIF (no GPS) any more.
    photo = await case.photos.all().first()
    with Image.open(settings.media_dir / photo.path) as img:
        assert not img.getexif()
    # The reporter follows their case.
    assert await Subscription.exists(case_id=case.id, identity=who.identity)


async def test_whole_report_flow_in_english(dialogue):
    who, ports = person(2, "en-GB"), FakePorts()
    replies = await dialogue.handle(who, Command("start"), ports)
    assert "Hello" in text_of(replies) and "Privacy" in text_of(replies)
    replies = await dialogue.handle(who, press(button(replies, "consent", "yes")), ports)
    replies = await dialogue.handle(who, Text("The street light is out"), ports)
    assert "Street light out" in text_of(replies)
    replies = await dialogue.handle(who, press(button(replies, "cat", "street_light")), ports)
    replies = await dialogue.handle(who, Text("1 Nanjing East Road"), ports)
    assert "Please check your report" in text_of(replies)
    replies = await dialogue.handle(who, press(button(replies, "send")), ports)
    case = await Case.get()
    assert f"received as case {case.code}" in text_of(replies)
    assert (await Report.get()).address == "1 Nanjing East Road"


async def test_report_before_start_asks_consent_and_keeps_what_was_sent(dialogue):
    who, ports = person(3), FakePorts()
    replies = await dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports)
    assert "同意" in text_of(replies)
    replies = await dialogue.handle(who, Photo(ports.add("early")), ports)
    assert ports.fetched == []  # nothing is downloaded before the person agrees
    replies = await dialogue.handle(who, press(button(replies, "consent", "yes")), ports)
    assert ports.fetched == ["early"]
    assert "垃圾" in text_of(replies)


async def test_declining_consent_files_nothing(dialogue):
    who, ports = person(4), FakePorts()
    replies = await dialogue.handle(who, Command("start"), ports)
    await dialogue.handle(who, Text("路灯不亮"), ports)
    replies = await dialogue.handle(who, press(button(replies, "consent", "no")), ports)
    assert "/case" in text_of(replies)
    assert await dialogue.store.load(who.identity) == ({}, 0)  # nothing kept
    replies = await dialogue.handle(who, Text("路灯不亮"), ports)
    assert "同意" in text_of(replies)
    assert not any(b.action == "send" for b in buttons(replies))
    assert await Report.all().count() == 0


async def test_one_line_report_asks_only_for_the_category(dialogue):
    who, ports = person(5), FakePorts()
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports)
    assert len(buttons(replies)) == 2  # yes, garbage / another category
    replies = await dialogue.handle(who, press(button(replies, "cat", "garbage")), ports)
    assert "南京东路100号" in text_of(replies)  # straight to the summary
    await dialogue.handle(who, press(button(replies, "send")), ports)
    report = await Report.get()
    assert report.address == "南京东路100号" and report.text == "南京东路100号门口垃圾满了"


async def test_any_order_photo_with_caption_then_location(dialogue):
    who, ports = person(6), FakePorts()
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, Location(31.23, 121.47, title="人民广场",
                                                  address="人民大道120号"), ports)
    assert "什么问题" in text_of(replies)
    replies = await dialogue.handle(
        who, Photo(ports.add("p"), caption="井盖不见了，很危险", unique="up"), ports)
    replies = await dialogue.handle(who, press(button(replies, "cat", "manhole")), ports)
    assert "人民广场" in text_of(replies) and "1" in text_of(replies)
    await dialogue.handle(who, press(button(replies, "send")), ports)
    report = await Report.get()
    assert report.category == "manhole" and report.raw_lat == 31.23
    assert await report.photos.all().count() == 1


async def test_two_people_one_problem_are_merged(dialogue):
    ports = FakePorts()
    for n, words in ((7, "南京东路100号门口垃圾满了，很臭"), (8, "南京东路100号的垃圾堆满了没人清理")):
        who = person(n)
        await agree(dialogue, who, ports)
        replies = await dialogue.handle(who, Text(words), ports)
        replies = await dialogue.handle(who, press(button(replies, "cat", "garbage")), ports)
        replies = await dialogue.handle(who, Location(31.2355, 121.4800), ports)
        replies = await dialogue.handle(who, press(button(replies, "send")), ports)
    case = await Case.get()
    assert case.reporter_count == 2
    assert case.code in text_of(replies) and "2" in text_of(replies)


async def test_throttled_report_keeps_the_draft(make_dialogue):
    dialogue = make_dialogue("1/10 minutes")
    who, ports = person(9), FakePorts()
    await agree(dialogue, who, ports)
    texts = ("虹口区四川北路1号路灯不亮", "静安区江宁路1083号井盖缺失")
    for n, words in enumerate(texts):
        replies = await dialogue.handle(who, Text(words), ports)
        replies = await dialogue.handle(who, press(buttons(replies)[0]), ports)
        replies = await dialogue.handle(who, Location(31.2 + n / 10, 121.4), ports)
        replies = await dialogue.handle(who, press(button(replies, "send")), ports)
    assert "分钟" in text_of(replies)  # when to try again
    again = button(replies, "send")
    assert await Report.all().count() == 1
    # The draft is still there: the summary comes back whole.
    replies = await dialogue.handle(who, Command("report"), ports)
    assert "江宁路1083号井盖缺失" in text_of(replies)
    assert button(replies, "send").arg == again.arg


async def test_a_repeated_send_files_once(dialogue):
    who, ports = person(10), FakePorts()
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports)
    replies = await dialogue.handle(who, press(button(replies, "cat", "garbage")), ports)
    send = press(button(replies, "send"))
    first, second = await asyncio.gather(dialogue.handle(who, send, ports),
                                         dialogue.handle(who, send, ports))
    code = (await Case.get()).code
    assert code in text_of(first) and code in text_of(second)
    assert await Report.all().count() == 1


async def test_a_text_only_channel_answers_with_numbers(dialogue):
    """WeChat: no buttons, a GCJ-02 point, no language hint (Chinese)."""
    who = Person(identity="wx:oAbCdEf123", channel="wechat")
    ports = FakePorts()
    replies = await dialogue.handle(who, Command("start"), ports)
    assert "您好" in text_of(replies)
    first = buttons(replies)[0]
    assert (first.action, first.arg) == ("consent", "yes")
    await dialogue.handle(who, Choice(1), ports)
    await dialogue.handle(who, Location(31.2336, 121.4845, crs="gcj02"), ports)
    replies = await dialogue.handle(who, Text("这里的路灯坏了，晚上一片漆黑"), ports)
    assert buttons(replies)[0].arg.endswith(".street_light")
    replies = await dialogue.handle(who, Choice(1), ports)
    assert "请核对" in text_of(replies)
    replies = await dialogue.handle(who, Choice(99), ports)
    assert "数字" in text_of(replies)
    await dialogue.handle(who, Choice(1), ports)
    report = await Report.get()
    assert report.channel == "wechat" and report.crs == "gcj02"
    # Stored in WGS-84, some 500 m from the GCJ-02 point it was sent as.
    assert abs(report.lng - 121.4845) > 0.003


async def test_consent_is_remembered_after_the_state_expired(make_dialogue, settings):
    who, ports = person(24), FakePorts()
    await _file(make_dialogue(), who, ports, "南京东路100号门口垃圾满了", 31.2355)
    later = make_dialogue(the_store=DbDialogueStore(timedelta(seconds=-1)))
    await later.store.forget(who.identity)
    replies = await later.handle(who, Text("四川北路1号路灯不亮"), ports)
    assert not any(b.action == "consent" for b in buttons(replies))


# ------------------------------------------------------------------------------ photos


async def test_album_is_answered_once_and_capped(dialogue):
    who, ports = person(11), FakePorts()
    await agree(dialogue, who, ports)
    await dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports)
    album = [Photo(ports.add(f"a{i}", (i * 50, 0, 0)), caption="垃圾" if i == 2 else None,
                   group="G1", unique=f"ua{i}") for i in range(5)]
    answers = await asyncio.gather(*(dialogue.handle(who, p, ports) for p in album))
    assert sum(1 for a in answers if a) == 1  # one reply for the whole album
    replies = await dialogue.handle(who, Press("cat", ""), ports)  # bogus: no draft id
    replies = await dialogue.handle(who, Command("report"), ports)
    replies = await dialogue.handle(who, press(button(replies, "cat", "garbage")), ports)
    assert "3 张" in text_of(replies)  # the summary says only three are kept
    await dialogue.handle(who, press(button(replies, "send")), ports)
    assert await (await Report.get()).photos.all().count() == 3


async def test_fourth_single_photo_is_refused_politely(dialogue):
    who, ports = person(12, "en"), FakePorts()
    await agree(dialogue, who, ports)
    for i in range(3):
        await dialogue.handle(who, Photo(ports.add(f"s{i}", (0, i * 60, 0)), unique=f"us{i}"),
                              ports)
    replies = await dialogue.handle(who, Photo(ports.add("s3"), unique="us3"), ports)
    assert "Only 3 photos" in text_of(replies)
    assert "s3" not in ports.fetched
    # The same photo again is recognised.
    replies = await dialogue.handle(who, Photo("s0", unique="us0"), ports)
    assert "already" in text_of(replies)


async def test_unavailable_or_broken_photo(dialogue):
    who, ports = person(13, "en"), FakePorts()
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, Photo("missing"), ports)
    assert "could not be downloaded" in text_of(replies)
    ports.files["junk"] = b"not a picture at all"
    replies = await dialogue.handle(who, Photo("junk"), ports)
    assert "not a photo we can read" in text_of(replies)


# ------------------------------------------------------------------------------ state


async def test_a_draft_survives_a_restart(make_dialogue, settings, state_url):
    who, ports = person(14), FakePorts()
    first = make_dialogue()
    await agree(first, who, ports)
    replies = await first.handle(who, Text("南京东路100号门口垃圾满了"), ports)
    cat = press(button(replies, "cat", "garbage"))
    # A new process: new store (new connection), new engine.
    if state_url:
        prefix = first.store.prefix
        await first.store.close()
        fresh = RedisDialogueStore(state_url, LIFETIME, prefix=prefix)
    else:
        fresh = DbDialogueStore(LIFETIME)
    second = make_dialogue(the_store=fresh)
    replies = await second.handle(who, cat, ports)
    await second.handle(who, press(button(replies, "send")), ports)
    assert (await Report.get()).text == "南京东路100号门口垃圾满了"
    await fresh.close()


async def test_concurrent_inputs_of_one_person_both_land(dialogue):
    who, ports = person(15), FakePorts()
    await agree(dialogue, who, ports)
    await asyncio.gather(dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports),
                         dialogue.handle(who, Location(31.2355, 121.48), ports),
                         dialogue.handle(who, Photo(ports.add("c1"), unique="uc1"), ports))
    state, _version = await dialogue.store.load(who.identity)
    d = state["draft"]
    assert d["text"] and d["lat"] == 31.2355 and len(d["photos"]) == 1


class LoadedTogether:
    """A store whose first two loads return only once both have read: two handle() calls
    then hold the same version, and one of the saves must lose."""

    def __init__(self, inner):
        self.inner, self.loads, self.conflicts = inner, 0, 0
        self.both = asyncio.Event()

    async def load(self, identity):
        found = await self.inner.load(identity)
        self.loads += 1
        if self.loads <= 2:
            if self.loads == 2:
                self.both.set()
            await self.both.wait()
        return found

    async def save(self, identity, state, version):
        try:
            return await self.inner.save(identity, state, version)
        except Conflict:
            self.conflicts += 1
            raise

    async def forget(self, identity):
        await self.inner.forget(identity)


async def test_a_lost_save_is_applied_again(make_dialogue, store):
    who, ports = person(25), FakePorts()
    await agree(make_dialogue(), who, ports)
    together = LoadedTogether(store)
    dialogue = make_dialogue(the_store=together)
    await asyncio.gather(dialogue.handle(who, Text("南京东路100号门口垃圾满了"), ports),
                         dialogue.handle(who, Location(31.2355, 121.48), ports))
    assert together.conflicts == 1
    state, _version = await store.load(who.identity)
    assert state["draft"]["text"] == "南京东路100号门口垃圾满了" and state["draft"]["lat"] == 31.2355


async def test_store_saves_compare_and_set(store):
    assert await store.load("tg:7") == ({}, 0)
    assert await store.save("tg:7", {"n": 1}, 0) == 1
    with pytest.raises(Conflict):
        await store.save("tg:7", {"n": "first save of someone who also loaded version 0"}, 0)
    assert await store.save("tg:7", {"n": 2}, 1) == 2
    with pytest.raises(Conflict):
        await store.save("tg:7", {"n": "stale"}, 1)
    assert await store.load("tg:7") == ({"n": 2}, 2)
    await store.forget("tg:7")
    assert await store.load("tg:7") == ({}, 0)


async def test_expired_drafts_are_swept(settings):
    store = DbDialogueStore(timedelta(seconds=-1))
    await store.save("tg:1", {"draft": {"text": "x"}}, 0)
    assert await store.load("tg:1") == ({}, 1)
    assert await sweep_expired() == 1
    # A process that saves sweeps by itself, at most hourly.
    await store.save("tg:2", {"draft": {"text": "y"}}, 0)
    fresh = DbDialogueStore(LIFETIME)
    await fresh.save("tg:3", {}, 0)
    assert await DialogueState.filter(identity="tg:2").count() == 0


# ------------------------------------------------------------------------------ cases


async def _file(dialogue, who, ports, words: str, lat: float) -> str:
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, Text(words), ports)
    replies = await dialogue.handle(who, press(buttons(replies)[0]), ports)
    replies = await dialogue.handle(who, Location(lat, 121.47), ports)
    await dialogue.handle(who, press(button(replies, "send")), ports)
    return (await Case.all().order_by("-id").first()).code


async def test_my_cases_are_paged_and_open_to_a_timeline(make_dialogue):
    dialogue = make_dialogue("50/10 minutes")
    who, ports = person(16, "en"), FakePorts()
    words = ["路灯不亮", "井盖缺失", "垃圾满了", "树枝断了", "噪音扰民", "道路坑洞", "漏水严重"]
    for n, w in enumerate(words):
        await _file(dialogue, who, ports, f"四川北路{n + 1}号{w}", 31.0 + n / 10)
    replies = await dialogue.handle(who, Command("my"), ports)
    assert len([b for b in buttons(replies) if b.action == "case"]) == 5
    replies = await dialogue.handle(who, press(button(replies, "my", "1")), ports)
    assert replies[0].replace
    cases = [b for b in buttons(replies) if b.action == "case"]
    assert len(cases) == 2
    replies = await dialogue.handle(who, press(cases[0]), ports)
    assert "Reported by 1 person." in text_of(replies)
    assert "Reported" in text_of(replies) and "received" in text_of(replies).lower()
    assert button(replies, "unfol")  # a reporter follows their case
    replies = await dialogue.handle(who, press(button(replies, "my")), ports)
    assert "page 1 of 2" in text_of(replies) and replies[0].replace
    replies = await dialogue.handle(who, Press("my", "99999"), ports)  # past the end: last page
    assert "page 2 of 2" in text_of(replies)


async def test_case_lookup_follow_and_unfollow(dialogue):
    ports = FakePorts()
    code = await _file(dialogue, person(17), ports, "南京东路100号门口垃圾满了", 31.2355)
    other = person(18, "en")
    replies = await dialogue.handle(other, Command("case", code.lower()), ports)
    assert code in text_of(replies) and "tg:" not in text_of(replies)
    follow = press(button(replies, "follow"))
    replies = await dialogue.handle(other, follow, ports)
    assert "agree" in text_of(replies)  # following keeps the chat ID: consent first
    replies = await dialogue.handle(other, press(button(replies, "consent", "yes")), ports)
    assert f"You follow case {code}" in text_of(replies)
    pid = await Identity.get(key=other.identity).values_list("person_id", flat=True)
    assert await Subscription.exists(person_id=pid, reason="follower")
    replies = await dialogue.handle(other, press(button(replies, "unfol")), ports)
    assert not await Subscription.exists(person_id=pid)
    replies = await dialogue.handle(other, Text(code), ports)  # a bare case number works too
    assert button(replies, "follow")
    replies = await dialogue.handle(other, Command("case", "GL-19990101-0001"), ports)
    assert "no case" in text_of(replies)


async def _resolve(code: str) -> None:
    case = await Case.get(code=code)
    for status in (Status.ACCEPTED, Status.IN_PROGRESS, Status.RESOLVED):
        await change_status(case.id, status, actor="test")


async def test_rating_with_comment_and_not_fixed(dialogue):
    who, ports = person(19), FakePorts()
    code = await _file(dialogue, who, ports, "南京东路100号门口垃圾满了", 31.2355)
    replies = await dialogue.handle(who, Press("rate", f"{code}.4"), ports)
    assert "待受理" in text_of(replies)  # not resolved yet
    await _resolve(code)
    replies = await dialogue.handle(who, Press("rate", f"{code}.4"), ports)
    await dialogue.handle(who, Text("清理得很干净，谢谢"), ports)
    rating = await Rating.get()
    assert (rating.score, rating.fixed, rating.comment) == (4, None, "清理得很干净，谢谢")
    # A later "not fixed" replaces it; skipping the comment leaves none.
    not_fixed = rating_buttons(code, "zh-CN")[-1][0]
    assert not_fixed.label == "尚未解决"
    replies = await dialogue.handle(who, press(not_fixed), ports)
    await dialogue.handle(who, press(button(replies, "skip")), ports)
    rating = await Rating.get()
    assert (rating.score, rating.fixed, rating.comment) == (1, False, None)
    assert await Rating.all().count() == 1
    # Someone who neither reported nor follows it cannot rate.
    replies = await dialogue.handle(person(20), Press("rate", f"{code}.5"), ports)
    assert await Rating.all().count() == 1 and code in text_of(replies)


async def test_forget_removes_the_identity_and_anonymises_reports(dialogue):
    who, ports = person(21), FakePorts()
    code = await _file(dialogue, who, ports, "南京东路100号门口垃圾满了", 31.2355)
    await PersonRow.all().update(email="a@example.com", phone="13800138000")
    await dialogue.handle(who, Text("还有一件事"), ports)  # an unfinished draft
    replies = await dialogue.handle(who, Command("forget"), ports)
    replies = await dialogue.handle(who, press(button(replies, "forget", "yes")), ports)
    assert "/start" in text_of(replies)
    assert not await Identity.exists(key=who.identity)
    assert not await Subscription.exists(identity=who.identity)
    report = await Report.get()
    assert report.identity == "forgotten" and (await Case.get(code=code)).report_count == 1
    row = await PersonRow.get(id=report.person_id)
    assert row.email is None and row.phone is None
    assert await dialogue.store.load(who.identity) == ({}, 0)


async def test_forget_also_removes_identities_that_spell_out_contact_details(dialogue):
    who, ports = person(26), FakePorts()
    await _file(dialogue, who, ports, "南京东路100号门口垃圾满了", 31.2355)
    row = await PersonRow.get()
    await link_identity(row, "web:a@example.com")
    await link_identity(row, "wx:oKeepMe")
    await forget_identity(who.identity)
    assert sorted(await Identity.all().values_list("key", flat=True)) == ["wx:oKeepMe"]
    assert await forget_identity("tg:never-seen") == 0


# ------------------------------------------------------------------------------ languages, hostile


async def test_language_switch(dialogue):
    who, ports = person(22), FakePorts()
    replies = await dialogue.handle(who, Command("start"), ports)
    replies = await dialogue.handle(who, press(button(replies, "lang", "en")), ports)
    assert "Privacy" in text_of(replies)  # the notice again, in the language chosen
    button(replies, "consent", "yes")
    replies = await dialogue.handle(who, Command("help"), ports)
    assert "/my" in text_of(replies) and "report a problem" in text_of(replies)


@pytest.mark.parametrize("inp", [
    Text("垃" * 100_000), Text("\x00\x00"), Text("a\x00b" * 10), Text(""),
    Command("nonsense"), Command("case", "'; DROP TABLE case_; --"), Command("case", "\x00"),
    Press("cat", "deadbeef.garbage"), Press("send", "x" * 500), Press("rate", "GL-1.9"),
    Press("rate", "..."), Press("rate", "GL-20261128-0001.5"), Press("my", "-1"),
    Press("rate", "GL-20261128-0001.²"), Press("my", "²"), Press("my", "٣"),
    Press("zzz", ""), Press("lang", "fr"), Press("consent", "maybe"), Press("forget", ""),
    Location(float("nan"), 121.0), Location(95.0, 200.0), Location(31.0, 121.0, crs="bd09"),
    Photo("nope", caption="\x00" * 10, group="\x00"), Choice(0), Choice(-5), Choice(10**9),
    Press("a" * 10_000, "b" * 10_000),
])
async def test_hostile_input_gets_a_polite_answer(dialogue, inp):
    who, ports = person(23), FakePorts()
    await agree(dialogue, who, ports)
    replies = await dialogue.handle(who, inp, ports)
    assert replies and all(r.text.strip() for r in replies)
    assert all("\x00" not in r.text for r in replies)
    check_button_contract(replies)
    assert await Report.all().count() == 0
