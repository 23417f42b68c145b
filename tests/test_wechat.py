"""The WeChat message server end to end: messages signed (and in safe mode encrypted) exactly as
WeChat does (wechatpy's WeChatCrypto, tests/fake_wechat.py) reach the real app's /bot/wechat;
the API the server calls back (media, customer-service messages, the token) is the fake on
loopback. On SQLite and PostgreSQL, and with the dialogue state in Redis where it matters."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.wechat.adapter import MESSAGE_BYTES, split
from bot.wechat.models import WeChatContact, WeChatMessage
from portal.app import create_app
from portal.cases.models import Case, Identity, Photo, Report
from portal.cases.service import add_note
from portal.intake.geo import distance_m, wgs84_to_gcj02
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.logs import redact
from portal.settings import Settings
from tests import fake_wechat as wx
from tests.photos import has_exif_gps, jpeg_with_gps

TOKEN = "gridlinkWxToken"
# An EncodingAESKey: 43 characters, the base64 of 32 bytes without its "=".
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SERVER = "http://testserver/bot/wechat"
# People's Square (WGS-84).
SQUARE = (31.2304, 121.4737)


class SlowWeChat(wx.FakeWeChat):
    """The fake, with media downloads that take `delay` seconds (a slow network)."""

    delay = 0.0

    async def _media_get(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return await super()._media_get(request)


@pytest.fixture
async def fake():
    f = SlowWeChat()
    await f.start()
    yield f
    await f.stop()


def wx_settings(settings: Settings, fake: wx.FakeWeChat, mode: str = "plain",
                **extra) -> Settings:
    return settings.model_copy(update={
        "wechat_token": TOKEN, "wechat_app_id": wx.APP_ID, "wechat_app_secret": wx.APP_SECRET,
        "wechat_aes_key": AES_KEY if mode == "safe" else "", "wechat_api_base": fake.base,
        **extra})


class Account:
    """The app serving the Official Account, and WeChat delivering to it."""

    def __init__(self, settings: Settings, fake: wx.FakeWeChat):
        self.settings, self.fake = settings, fake
        self.aes = settings.wechat_aes_key
        self.app = create_app(settings, manage_db=False)
        self.app.state.throttle.namespace = f"test-{uuid.uuid4().hex}"
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://testserver")
        fake.http = self.client

    @property
    def channel(self):
        return self.app.state.wechat

    async def post(self, xml: str, openid: str) -> tuple[httpx.Response, str]:
        """Delivers one message as WeChat does: the response and what the person sees of the
        passive reply ("" for "success")."""
        res, reply = await self.fake.deliver(SERVER, xml, openid, TOKEN, self.aes)
        return res, wx.reply_text(reply)

    async def say(self, xml: str, openid: str) -> str:
        res, seen = await self.post(xml, openid)
        assert res.status_code == 200, res.text
        return seen


@pytest.fixture(params=["plain", "safe"])
async def account(request, settings: Settings, fake: SlowWeChat):
    acc = Account(wx_settings(settings, fake, request.param), fake)
    async with acc.app.router.lifespan_context(acc.app):
        yield acc
    await acc.client.aclose()
    assert await WeChatMessage.filter(status="failed").count() == 0


def new_openid() -> str:
    # Random: Redis state outlives a test run.
    return "oTest" + uuid.uuid4().hex[:23]


async def agree(acc: Account, openid: str) -> None:
    seen = await acc.say(wx.event(openid, "subscribe"), openid)
    assert "隐私" in seen and "回复 1：同意" in seen
    assert "谢谢" in await acc.say(wx.text(openid, "1"), openid)


def option(seen: str, label: str) -> str:
    """The number to reply with for the numbered line that starts with `label`
    ("回复 2：其他类别")."""
    for line in seen.splitlines():
        number, _sep, text = line.removeprefix("回复 ").partition("：")
        if line.startswith("回复 ") and text.startswith(label):
            return number
    raise AssertionError(f"no option {label!r} in {seen!r}")


# The endpoint.

async def test_the_account_is_off_without_a_token(settings: Settings, caplog):
    app = create_app(settings, manage_db=False)
    assert app.state.wechat is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        assert (await client.get("/bot/wechat")).status_code == 404
        assert (await client.post("/bot/wechat", content=b"<xml/>")).status_code == 404
    with caplog.at_level(logging.INFO, logger="gridlink.wechat"):
        async with app.router.lifespan_context(app):
            pass
    assert [r.message for r in caplog.records if r.name == "gridlink.wechat"] == [
        "WeChat Official Account is off: GRIDLINK_WECHAT_TOKEN is not set."]


async def test_url_verification_echoes_only_a_signed_handshake(account: Account):
    params = {"timestamp": "1795842995", "nonce": "271828", "echostr": "echo-6180339887"}
    good = wx.signature(TOKEN, params["timestamp"], params["nonce"])
    r = await account.client.get("/bot/wechat", params={**params, "signature": good})
    assert (r.status_code, r.text) == (200, "echo-6180339887")
    for bad in ({**params, "signature": "0" * 40}, params,
                {**params, "signature": good, "nonce": "314159"}):
        r = await account.client.get("/bot/wechat", params=bad)
        assert r.status_code == 403
        assert "echo" not in r.text


async def test_a_report_in_chinese_from_follow_to_receipt(account: Account):
    """Follow, agree, describe, a photo (stored without EXIF), a GCJ-02 location, send."""
    fake, me = account.fake, new_openid()
    await agree(account, me)
    seen = await account.say(wx.text(me, "人民广场东门的路灯坏了，晚上一片漆黑"), me)
    assert "路灯" in seen
    seen = await account.say(wx.text(me, option(seen, "是，路灯故障")), me)
    assert "问题在哪里" in seen and "位置" in seen
    original = jpeg_with_gps()
    assert has_exif_gps(original)
    seen = await account.say(wx.image(me, fake.add_media(original)), me)
    assert "照片已收到" in seen
    glat, glng = wgs84_to_gcj02(*SQUARE)
    seen = await account.say(wx.location(me, glat, glng, label="上海市黄浦区人民广场"), me)
    assert "请核对" in seen and "人民广场" in seen and "照片：1 张" in seen
    seen = await account.say(wx.text(me, option(seen, "提交上报")), me)
    assert "案件编号为 GL-" in seen and "/cases/GL-" in seen

    report = await Report.get()
    assert (report.channel, report.crs, report.raw_lat) == ("wechat", "gcj02", glat)
    assert distance_m(report.lat, report.lng, *SQUARE) < 1
    assert await Identity.exists(key=f"wx:{me}")
    photo = await Photo.get()
    stored = Image.open(account.settings.media_dir / photo.path)
    assert not stored.getexif()
    contact = await WeChatContact.get(openid=me)
    assert contact.subscribed and contact.last_inbound_at is not None
    # Every step was a passive reply: nothing needed the customer-service API.
    assert fake.sent(me) == []


async def test_voice_menu_and_events(account: Account):
    me = new_openid()
    await agree(account, me)
    # Voice: WeChat's speech recognition is the text; without it, a hint.
    seen = await account.say(wx.voice(me, "人民广场的垃圾桶满了。"), me)
    assert "垃圾" in seen and "回复 1" in seen
    assert "语音" in await account.say(wx.voice(me, None), me)
    # Menu clicks are commands.
    assert "/my" in await account.say(wx.click(me, "HELP"), me)
    assert "您还没有" in await account.say(wx.click(me, "MY"), me)
    seen = await account.say(wx.click(me, "REPORT"), me)
    assert "什么类型" in seen or "属于" in seen  # the draft goes on: its category is asked
    # A location report (WeChat sends one when the person opens the chat) is answered with
    # nothing, and offered where a place is asked.
    glat, glng = wgs84_to_gcj02(*SQUARE)
    assert await account.say(wx.location_event(me, glat, glng), me) == ""
    seen = await account.say(wx.text(me, "1"), me)
    assert "问题在哪里" in seen and "回复 0" in seen
    seen = await account.say(wx.text(me, "0"), me)
    assert "请核对" in seen
    # Someone who had not agreed to the privacy notice yet: their place was not kept.
    stranger = new_openid()
    assert await account.say(wx.location_event(stranger, glat, glng), stranger) == ""
    await agree(account, stranger)
    seen = await account.say(wx.text(stranger, "人民广场的垃圾桶满了"), stranger)
    seen = await account.say(wx.text(stranger, option(seen, "是，垃圾堆放")), stranger)
    assert "问题在哪里" in seen and "回复 0" not in seen
    # Unfollowing: nothing to answer, nothing sent to them afterwards.
    assert await account.say(wx.event(me, "unsubscribe"), me) == ""
    assert not (await WeChatContact.get(openid=me)).subscribed
    # Other kinds get a hint; menu links and unknown keys nothing.
    assert "/help" in await account.say(wx.message_xml(me, "video", {
        "MediaId": "v1", "ThumbMediaId": "t1", "MsgId": 99}), me)
    assert await account.say(wx.event(me, "VIEW", EventKey="http://x"), me) == ""
    assert await account.say(wx.click(me, "NOSUCHKEY", create_time=1), me) == ""


async def test_commands_typed_as_text(account: Account):
    me = new_openid()
    await agree(account, me)
    assert "/cancel" in await account.say(wx.text(me, "/help"), me)
    assert "/cancel" in await account.say(wx.text(me, "帮助"), me)
    assert "没有" in await account.say(wx.text(me, "取消"), me)
    seen = await account.say(wx.text(me, "/lang"), me)
    seen = await account.say(wx.text(me, option(seen, "English")), me)
    assert "English" in seen
    assert "Reply with" not in seen
    seen = await account.say(wx.text(me, "/my"), me)
    assert "no cases" in seen.lower() or "not reported" in seen.lower()


# Retries and time.

async def test_a_retry_is_processed_once_and_answered_the_same(
        settings: Settings, fake: SlowWeChat, state_url: str):
    acc = Account(wx_settings(settings, fake, "safe", redis_url=state_url), fake)
    async with acc.app.router.lifespan_context(acc.app):
        me = new_openid()
        await agree(acc, me)
        seen = await acc.say(wx.text(me, "南京东路100号门口垃圾满了"), me)
        seen = await acc.say(wx.text(me, option(seen, "是，垃圾堆放")), me)
        send = wx.text(me, option(seen, "提交上报"))
        first = await acc.say(send, me)
        again = await acc.say(send, me)  # WeChat did not get the first answer
        assert "案件编号为 GL-" in first and again == first
        assert await Report.all().count() == 1
        # Events have no MsgId: the sender and the time tell a retry.
        follow = wx.event(me, "subscribe", create_time=1795842995)
        assert await acc.say(follow, me) == await acc.say(follow, me) != ""
        # (agree()'s and this one, each once)
        assert await WeChatMessage.filter(openid=me, key__startswith="ev:").count() == 2
    await acc.client.aclose()


async def test_a_slow_answer_goes_by_customer_service(settings: Settings, fake: SlowWeChat):
    """The photo download takes longer than the server may keep WeChat waiting: WeChat gets
    "success" in time, and the answer follows through the customer-service API."""
    acc = Account(wx_settings(settings, fake), fake)
    async with acc.app.router.lifespan_context(acc.app):
        me = new_openid()
        await agree(acc, me)
        await acc.say(wx.text(me, "人民广场的井盖丢了"), me)
        acc.channel.budget = 0.2
        fake.delay = 1.0
        photo = wx.image(me, fake.add_media(jpeg_with_gps()))
        assert await acc.say(photo, me) == ""
        assert await acc.say(photo, me) == ""  # WeChat's retry while it is still in progress
        assert fake.sent(me) == []
    # Shutting down finishes what is in progress: the answer goes out before the API closes.
    sent = [m["text"] for m in fake.sent(me)]
    assert len(sent) == 1 and "照片已收到" in sent[0]
    assert len(fake.calls_of("media_get")) == 1
    assert (await WeChatContact.get(openid=me)).sent_since_inbound == 1
    await acc.client.aclose()


def test_long_answers_are_cut_within_wechats_limit():
    text = ("街道" * 700 + "\n") * 3 + "😀" * 600
    pieces = split(text)
    assert all(len(p.encode()) <= MESSAGE_BYTES for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert pieces[0].endswith("街道") and pieces[1].startswith("街道")


async def test_an_answer_too_long_for_one_message_continues_by_customer_service(
        account: Account):
    """A case whose public timeline holds long notes: the passive reply carries the first
    2048 bytes, the rest follows through the customer-service API, in order."""
    receipt = await submit(Submission(
        reporter="tg:424242", channel="telegram", text="人民广场东门的路灯坏了",
        category="street_light", lat=SQUARE[0], lng=SQUARE[1]),
        throttle=None, settings=account.settings)
    notes = [f"第{i}次进展：" + "维修人员已到现场查看线路并更换灯具。" * 10 for i in range(1, 7)]
    for note in notes:
        await add_note(receipt.case_id, actor="staff:test", public_note=note, internal_note=None)
    me = new_openid()
    seen = await account.say(wx.text(me, f"/case {receipt.case_code}"), me)
    rest = [m["text"] for m in account.fake.sent(me)]
    assert rest, "the answer fit in one message"
    assert all(len(p.encode()) <= MESSAGE_BYTES for p in [seen, *rest])
    whole = "\n".join([seen, *rest])
    assert receipt.case_code in seen
    assert all(note[:200] in whole for note in notes)
    assert "回复 1：查看案件进展" in rest[-1]  # the follow button, last


# Across channels.

async def test_a_gcj02_location_joins_a_case_reported_on_telegram(account: Account):
    first = await submit(Submission(
        reporter="tg:424242", channel="telegram", text="南京东路100号门口垃圾堆了好几天没人清运",
        category="garbage", lat=SQUARE[0], lng=SQUARE[1], crs="wgs84"),
        throttle=None, settings=account.settings)
    me = new_openid()
    await agree(account, me)
    seen = await account.say(wx.text(me, "门口垃圾堆了好几天了，没人清运"), me)
    seen = await account.say(wx.text(me, option(seen, "是，垃圾堆放")), me)
    glat, glng = wgs84_to_gcj02(*SQUARE)
    assert distance_m(glat, glng, *SQUARE) > 300  # the datums differ by hundreds of metres
    seen = await account.say(wx.location(me, glat, glng), me)
    seen = await account.say(wx.text(me, option(seen, "提交上报")), me)
    assert first.case_code in seen
    assert await Case.all().count() == 1
    assert (await Case.get()).report_count == 2


# Hostile input.

BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
                            for i in range(1, 10))
                  + ']><xml><ToUserName>a</ToUserName><FromUserName>o1</FromUserName>'
                  '<CreateTime>1</CreateTime><MsgType>text</MsgType>'
                  '<Content>&lol9;</Content><MsgId>1</MsgId></xml>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            '<xml><ToUserName>a</ToUserName><FromUserName>o1</FromUserName>'
            '<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&e;</Content>'
            '<MsgId>2</MsgId></xml>')


async def test_hostile_deliveries_are_refused_without_work(account: Account):
    client, me = account.client, "o1"
    aes = account.aes

    async def post(body: str | bytes, params: dict | None = None) -> int:
        if params is None:
            params, body = wx.signed(body, me, TOKEN, aes)
        data = body.encode() if isinstance(body, str) else body
        return (await client.post("/bot/wechat", params=params, content=data)).status_code

    assert await post(BILLION_LAUGHS) == 400
    assert await post(EXTERNAL) == 400
    assert await post("this is not XML") == 400
    assert await post("<html><body>hi</body></html>") == 400
    assert await post(wx.text(me, "hi").replace("<MsgId>", "<MsgId>x")) == 400
    assert await post(wx.text(me, "hi", msg_id=2**70)) == 400
    assert await post(wx.message_xml(me, "text", {"Content": "hi", "MsgId": 4},
                                     create_time=10**15)) == 400
    assert await post(wx.message_xml(me, "text", {"Content": "hi", "MsgId": 3}).replace(
        f"<FromUserName><![CDATA[{me}]]></FromUserName>",
        "<FromUserName><a>b</a></FromUserName>")) == 400
    params, body = wx.signed(wx.text(me, "hi"), me, TOKEN, aes)
    assert await post(body, {**params, "signature": "0" * 40}) == 403
    assert await post(body, {k: v for k, v in params.items() if k != "signature"}) == 403
    # A delivery signed long ago (replayed): refused, though the signature is right.
    old = {**params, "timestamp": "1700000000",
           "signature": wx.signature(TOKEN, "1700000000", params["nonce"])}
    assert await post(body, old) == 403
    big = wx.text(me, "很长" * 20000)
    assert await post(big) == 413
    if aes:
        # Encrypted for another account, or a ciphertext the msg_signature does not cover.
        assert await post(*reversed(wx.signed(wx.text(me, "hi"), me, TOKEN, aes,
                                              app_id="wxAnotherAccount0"))) == 403
        assert await post(body, {**params, "msg_signature": "0" * 40}) == 403
        # Plain text where safe mode expects ciphertext.
        plain_params, plain = wx.signed(wx.text(me, "hi"), me, TOKEN)
        assert await post(plain, plain_params) == 403
        assert await post(BILLION_LAUGHS.replace("<Content>&lol9;</Content>", ""), params) == 400
    assert await WeChatMessage.all().count() == 0
    assert await WeChatContact.all().count() == 0


async def test_a_failure_is_answered_with_a_reference(settings: Settings, fake: SlowWeChat,
                                                       caplog):
    """The dialogue's store (Redis) is down: the person is told, with a reference that is in
    the log and on the message's row."""
    acc = Account(wx_settings(settings, fake, redis_url="redis://127.0.0.1:9/15"), fake)
    async with acc.app.router.lifespan_context(acc.app):
        me = new_openid()
        message = wx.text(me, "人民广场的路灯坏了")
        with caplog.at_level(logging.ERROR, logger="gridlink.wechat"):
            seen = await acc.say(message, me)
        assert "出了问题" in seen
        assert await acc.say(message, me) == seen  # WeChat's retry: the same answer
        ref = seen.rsplit("：", 1)[-1].strip().rstrip("。")
        assert any(ref in r.getMessage() for r in caplog.records)
        row = await WeChatMessage.get(openid=me)
        assert (row.status, row.reply) == ("failed", seen)
    await acc.client.aclose()


def test_openids_in_query_strings_are_kept_out_of_logs():
    line = 'POST /bot/wechat?signature=ab&timestamp=1&nonce=2&openid=oAbCdEf123456 HTTP/1.1'
    assert "oAbCdEf123456" not in redact(line)


# A real server.

async def test_a_real_server_files_a_report_while_wechat_delivers_each_message_twice(
        empty_database_url: str, tmp_path, fake: SlowWeChat):
    """`gridlink serve` (two workers on PostgreSQL) in safe mode: every message is posted twice
    at once, as WeChat's retry can reach another process; each is handled once (one photo
    download, one case) and one of the two gets the passive reply. Then the case page shows
    the report."""
    from tests.live import live_server

    env = {"GRIDLINK_WECHAT_TOKEN": TOKEN, "GRIDLINK_WECHAT_APP_ID": wx.APP_ID,
           "GRIDLINK_WECHAT_APP_SECRET": wx.APP_SECRET, "GRIDLINK_WECHAT_AES_KEY": AES_KEY,
           "GRIDLINK_WECHAT_API_BASE": fake.base}
    me = new_openid()
    workers = 2 if empty_database_url.startswith("postgres") else 1
    with live_server(empty_database_url, tmp_path, workers=workers, env=env) as base:
        async with httpx.AsyncClient() as http:
            fake.http = http

            async def say(xml: str) -> str:
                both = await asyncio.gather(*(fake.deliver(f"{base}/bot/wechat", xml, me, TOKEN,
                                                           AES_KEY) for _ in range(2)))
                assert [r.status_code for r, _reply in both] == [200, 200]
                seen = [wx.reply_text(reply) for _r, reply in both]
                # The other one: "success" while the first is in progress, or the same reply.
                assert "" in seen or seen[0] == seen[1], seen
                return max(seen, key=len)

            assert "回复 1：同意" in await say(wx.event(me, "subscribe"))
            assert "谢谢" in await say(wx.text(me, "1"))
            seen = await say(wx.text(me, "人民广场东门的路灯坏了，晚上一片漆黑"))
            seen = await say(wx.text(me, option(seen, "是，路灯故障")))
            assert "照片已收到" in await say(wx.image(me, fake.add_media(jpeg_with_gps())))
            seen = await say(wx.location(me, *wgs84_to_gcj02(*SQUARE)))
            seen = await say(wx.text(me, option(seen, "提交上报")))
            code = seen.split("案件编号为 ")[1][:16]
            assert code.endswith("-0001")
            page = await http.get(f"{base}/cases/{code}")
            assert page.status_code == 200 and "路灯坏了" in page.text
            assert len(fake.calls_of("media_get")) == 1
            bad = await http.post(f"{base}/bot/wechat", content=BILLION_LAUGHS.encode(),
                                  params=wx.signed("<xml/>", me, TOKEN)[0])
            assert bad.status_code == 400
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "Traceback" not in log and "ERROR" not in log
    assert me not in log
