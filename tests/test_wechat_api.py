"""The WeChat API side of the Official Account: the shared access token, the update sender,
media downloads and the menu command, against the fake WeChat API (tests/fake_wechat.py) on
loopback, on both databases and with the token in the database or in Redis."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import sys
from datetime import timedelta

import httpx
import pytest

from bot.wechat.client import NETWORK, NOT_AN_IMAGE, TOO_LARGE, WeChatApi, WeChatApiError
from bot.wechat.models import WeChatContact
from bot.wechat.sender import (
    REPLIES_PER_INBOUND,
    record_inbound,
    record_unsubscribed,
    send_update,
)
from bot.wechat.tokens import token_store_for
from portal.cases.service import utcnow
from portal.settings import Settings
from tests.fake_wechat import APP_SECRET, FakeWeChat

TEMPLATE = "TPL_case_progress_0001"
FIELDS = {"thing1": "南京东路100号门口的垃圾桶满了好几天没人清理", "phrase2": "处理中",
          "character_string3": "GL-20261128-0042"}


def jpeg(size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def fake():
    # An app id of its own per test keeps Redis keys apart.
    f = FakeWeChat(app_id=f"wx{secrets.token_hex(8)}")
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def wx_settings(settings: Settings, fake: FakeWeChat, state_url: str) -> Settings:
    s = settings.model_copy(update={
        "redis_url": state_url, "wechat_app_id": fake.app_id, "wechat_app_secret": APP_SECRET,
        "wechat_token": "T0ken", "wechat_api_base": fake.base, "wechat_http_timeout": 5.0,
        "wechat_update_template_id": TEMPLATE})
    yield s
    if state_url:
        import redis.asyncio as redis

        r = redis.Redis.from_url(state_url)
        keys = [k async for k in r.scan_iter(f"gridlink:wechat:{fake.app_id}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


@pytest.fixture
async def api(wx_settings: Settings):
    a = WeChatApi(wx_settings, token_store_for(wx_settings))
    yield a
    await a.close()


async def test_two_processes_share_one_token_and_one_refresh(wx_settings, fake, caplog):
    caplog.set_level(logging.INFO)
    # Two processes' worth: each its own client and its own connection to the token store.
    first = WeChatApi(wx_settings, token_store_for(wx_settings))
    second = WeChatApi(wx_settings, token_store_for(wx_settings))
    try:
        await asyncio.gather(*(a.send_text(f"o{n}", f"hello {n}")
                               for n, a in enumerate([first, second] * 3)))
        assert len(fake.calls_of("stable_token")) == 1
        assert not fake.calls_of("token")
        assert len(fake.tokens) == 1

        # The token expires at WeChat while both are sending: one refresh, nobody fails.
        fake.expire_tokens()
        await asyncio.gather(*(a.send_text(f"o{n}", f"again {n}")
                               for n, a in enumerate([first, second] * 3)))
        refreshes = fake.calls_of("stable_token")
        assert len(refreshes) == 2 and not any(c["force_refresh"] for c in refreshes)
        for n in range(6):
            assert [m["text"] for m in fake.sent(f"o{n}")] == [f"hello {n}", f"again {n}"]
    finally:
        await first.close()
        await second.close()
    for token in fake.tokens:
        assert token not in caplog.text
    assert APP_SECRET not in caplog.text


async def test_a_token_invalidated_mid_use_is_replaced_once(api, fake, caplog):
    caplog.set_level(logging.INFO)
    await api.send_text("oA", "one")
    old = fake.stable
    # Someone forces a new stable token (an operator's tool): ours gets 40001 from now on.
    async with httpx.AsyncClient() as http:
        forced = (await http.post(f"{fake.base}/cgi-bin/stable_token", json={
            "grant_type": "client_credential", "appid": fake.app_id, "secret": APP_SECRET,
            "force_refresh": True})).json()["access_token"]
    await api.send_text("oA", "two")
    assert [m["text"] for m in fake.sent("oA")] == ["one", "two"]
    assert fake.stable == forced != old
    # The refused call and its single retry; the refresh asked without forcing (it got the
    # token WeChat already had).
    assert len(fake.calls_of("custom_send")) == 3
    assert [c["force_refresh"] for c in fake.calls_of("stable_token")] == [False, True, False]
    assert "40001" in caplog.text and old not in caplog.text and forced not in caplog.text


async def test_errors_never_show_the_secret_or_the_token(wx_settings, fake, caplog):
    caplog.set_level(logging.INFO)
    wrong = wx_settings.model_copy(update={"wechat_app_secret": "the-wrong-secret-42"})
    api = WeChatApi(wrong, token_store_for(wrong))
    try:
        with pytest.raises(WeChatApiError) as refused:
            await api.send_text("oB", "hi")
        assert refused.value.errcode == 40125
        assert "the-wrong-secret-42" not in str(refused.value)
    finally:
        await api.close()

    api = WeChatApi(wx_settings, token_store_for(wx_settings))
    try:
        await api.send_text("oB", "hi")
        token = fake.stable
        # WeChat goes away: the request URL (which carries the token) is not in the error.
        await fake.stop()
        with pytest.raises(WeChatApiError) as gone:
            await api.send_text("oB", "hi again")
        assert gone.value.errcode == NETWORK
        assert token not in str(gone.value) and token not in repr(gone.value)
        assert gone.value.__cause__ is None and gone.value.__suppress_context__
    finally:
        await api.close()
    assert token not in caplog.text and APP_SECRET not in caplog.text
    assert "the-wrong-secret-42" not in caplog.text


async def test_debug_logs_through_the_production_filter_show_no_token(api, fake, caplog):
    # At DEBUG the HTTP library logs each request line, access_token included: the filter
    # that portal.logs.setup() puts on every handler masks it. (Tortoise's DEBUG log of SQL
    # parameters would show the stored token, as it shows any row: it stays at INFO.)
    from portal.logs import RedactingFilter

    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level(logging.INFO)
    for name in ("urllib3", "wechatpy", "gridlink", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    await api.send_text("oL", "hi")
    fake.expire_tokens()
    await api.send_text("oL", "again")
    assert "/cgi-bin/message/custom/send" in caplog.text
    for token in fake.tokens:
        assert token not in caplog.text
    assert APP_SECRET not in caplog.text


async def test_a_slow_wechat_is_given_up_after_the_timeout(wx_settings, fake):
    quick = wx_settings.model_copy(update={"wechat_http_timeout": 0.2})
    api = WeChatApi(quick, token_store_for(quick))
    try:
        await api.send_text("oK", "first")
        fake.stall = 1.0
        with pytest.raises(WeChatApiError) as slow:
            await api.send_text("oK", "second")
        assert slow.value.errcode == NETWORK and "Timeout" in slow.value.errmsg
    finally:
        fake.stall = 0.0
        await api.close()


async def test_media_download_is_bounded_and_images_only(api, fake):
    photo = jpeg()
    media_id = fake.add_media(photo)
    assert await api.download_media(media_id, max_bytes=len(photo)) == photo
    with pytest.raises(WeChatApiError) as big:
        await api.download_media(media_id, max_bytes=len(photo) - 1)
    assert big.value.errcode == TOO_LARGE
    with pytest.raises(WeChatApiError) as unknown:
        await api.download_media("no-such-media", max_bytes=10**6)
    assert unknown.value.errcode == 40007
    sound = fake.add_media(b"#!AMR\n" + b"\0" * 100, content_type="audio/amr")
    with pytest.raises(WeChatApiError) as not_image:
        await api.download_media(sound, max_bytes=10**6)
    assert not_image.value.errcode == NOT_AN_IMAGE
    # A download refused for its token is retried with a fresh one, like any call.
    fake.expire_tokens()
    assert await api.download_media(media_id, max_bytes=len(photo)) == photo


async def test_updates_go_as_text_within_48_hours_and_as_templates_after(api, fake):
    await record_inbound("oNew", utcnow() - timedelta(hours=47))
    await record_inbound("oOld", utcnow() - timedelta(hours=49))
    url = "http://127.0.0.1:8000/cases/GL-20261128-0042"

    fresh = await send_update(api, "oNew", "案件 GL-20261128-0042 正在处理。",
                              template_fields=FIELDS, url=url)
    assert fresh.sent and fresh.via == "text"
    assert fake.sent("oNew")[0]["text"] == "案件 GL-20261128-0042 正在处理。"

    old = await send_update(api, "oOld", "案件 GL-20261128-0042 正在处理。",
                            template_fields=FIELDS, url=url)
    assert old.sent and old.via == "template"
    [message] = fake.sent("oOld")
    assert message["kind"] == "template" and message["template_id"] == TEMPLATE
    assert message["url"] == url
    values = {k: v["value"] for k, v in message["data"].items()}
    assert all(len(v) <= 20 for v in values.values())
    assert values["thing1"] == FIELDS["thing1"][:19] + "…"
    assert values["phrase2"] == "处理中" and values["character_string3"] == "GL-20261128-0042"

    # Nobody known: never wrote, so only a template can reach them.
    stranger = await send_update(api, "oStranger", "x", template_fields=FIELDS, url=url)
    assert stranger.via == "template"


async def test_only_a_handful_of_texts_per_message_then_templates(api, fake):
    await record_inbound("oC")
    outcomes = [await send_update(api, "oC", f"update {n}", template_fields=FIELDS, url=None)
                for n in range(REPLIES_PER_INBOUND + 1)]
    assert [o.via for o in outcomes] == ["text"] * REPLIES_PER_INBOUND + ["template"]
    # Their next message opens the window again.
    await record_inbound("oC")
    assert (await send_update(api, "oC", "again", template_fields=FIELDS, url=None)).via == "text"


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_refused_texts_fall_back_to_the_template(api, fake, errcode):
    await record_inbound("oD")
    fake.fail("oD", errcode)
    outcome = await send_update(api, "oD", "update", template_fields=FIELDS, url=None)
    assert outcome.sent and outcome.via == "template"
    assert [m["kind"] for m in fake.sent("oD")] == ["template"]


async def test_an_unfollower_is_marked_and_not_tried_again(api, fake):
    await record_inbound("oE")
    fake.fail("oE", 43004)
    outcome = await send_update(api, "oE", "update", template_fields=FIELDS, url=None)
    assert outcome.status == "unreachable" and outcome.errcode == 43004
    assert not (await WeChatContact.get(openid="oE")).subscribed
    assert not fake.calls_of("template_send")
    calls = len(fake.calls)
    again = await send_update(api, "oE", "update", template_fields=FIELDS, url=None)
    assert again.status == "unreachable" and len(fake.calls) == calls
    # Unfollowing told by the message server, then following again.
    await record_unsubscribed("oF")
    assert (await send_update(api, "oF", "x", template_fields=FIELDS, url=None)).status == \
        "unreachable"
    await record_inbound("oF")
    assert (await send_update(api, "oF", "x", template_fields=FIELDS, url=None)).via == "text"


async def test_other_failures_are_worth_retrying(api, fake):
    await record_inbound("oG")
    fake.fail("oG", 45009)  # the account's daily API quota
    outcome = await send_update(api, "oG", "update", template_fields=FIELDS, url=None)
    assert outcome.status == "retry" and outcome.errcode == 45009 and not fake.sent("oG")


async def _gridlink(*args: str, env: dict) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portal.cli", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_menu_command_installs_the_menu(empty_database_url, tmp_path):
    # The fake serves while the command runs in its own process.
    fake = FakeWeChat()
    await fake.start()
    env = {"GRIDLINK_DATABASE_URL": empty_database_url, "GRIDLINK_REDIS_URL": "",
           "GRIDLINK_WECHAT_APP_ID": fake.app_id, "GRIDLINK_WECHAT_APP_SECRET": APP_SECRET,
           "GRIDLINK_WECHAT_API_BASE": fake.base, "GRIDLINK_MEDIA_DIR": str(tmp_path)}
    try:
        code, out, err = await _gridlink("wechat", "menu", env=env)
        assert code == 0, err
        assert "REPORT" in out
        assert [(b["type"], b["key"]) for b in fake.menu["button"]] == [
            ("click", "REPORT"), ("click", "MY"), ("click", "HELP")]
        assert [b["name"] for b in fake.menu["button"]] == ["反映问题", "我的案件", "帮助"]

        # The token fetched by the first run is in the database: the second run uses it.
        code, out, err = await _gridlink("wechat", "menu", env=env)
        assert code == 0, err
        assert len(fake.calls_of("stable_token")) == 1 and len(fake.calls_of("menu_create")) == 2

        # Once it has expired, a new one is needed, which the wrong secret does not get.
        fake.expire_tokens()
        code, out, err = await _gridlink("wechat", "menu",
                                         env={**env, "GRIDLINK_WECHAT_APP_SECRET": "wrong-42"})
        assert code == 1 and "40125" in err and "wrong-42" not in err + out

        code, out, err = await _gridlink("wechat", "menu",
                                         env={**env, "GRIDLINK_WECHAT_APP_ID": ""})
        assert code == 1 and "GRIDLINK_WECHAT_APP_ID" in err
    finally:
        await fake.stop()


async def test_a_token_near_its_end_is_refreshed_by_one_and_used_by_the_others(wx_settings,
                                                                                 fake):
    # WeChat's stable token stays the same while it is valid: the early refresh gets it back,
    # and is not asked again for every call.
    fake.token_ttl = 200
    first = WeChatApi(wx_settings, token_store_for(wx_settings))
    second = WeChatApi(wx_settings, token_store_for(wx_settings))
    other = token_store_for(wx_settings)
    try:
        await first.send_text("oH", "1")
        assert len(fake.calls_of("stable_token")) == 1
        # Another process is refreshing right now: the old token, still valid, is used.
        assert await other.lease(fake.app_id, utcnow() + timedelta(seconds=30))
        await second.send_text("oH", "2")
        assert len(fake.calls_of("stable_token")) == 1
        await other.release(fake.app_id)
        for n in range(3):
            await second.send_text("oH", f"3.{n}")
        assert len(fake.calls_of("stable_token")) == 2
        assert len(fake.sent("oH")) == 5 and len(fake.tokens) == 1
    finally:
        await first.close()
        await second.close()
        await other.close()


async def test_a_late_message_does_not_move_the_window_back(settings):
    now = utcnow()
    await record_inbound("oI", now)
    await record_inbound("oI", now - timedelta(hours=50))
    assert (await WeChatContact.get(openid="oI")).last_inbound_at == now
    await record_unsubscribed("oI")
    await record_inbound("oI", now + timedelta(seconds=1))
    contact = await WeChatContact.get(openid="oI")
    assert contact.subscribed and contact.last_inbound_at == now + timedelta(seconds=1)


@pytest.mark.parametrize("aes", [False, True])
def test_the_fake_signs_and_encrypts_as_wechat_does(aes):
    """What the fake posts passes wechatpy's own checks, and it reads wechatpy's replies."""
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    from tests import fake_wechat as fw

    token, aes_key = "T0ken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" if aes else ""
    xml = fw.text("oJ", "路灯坏了 ]]> <b>")
    params, body = fw.signed(xml, "oJ", token, aes_key)
    check_signature(token, params["signature"], params["timestamp"], params["nonce"])
    crypto = WeChatCrypto(token, aes_key, fw.APP_ID) if aes else None
    if aes:
        assert params["encrypt_type"] == "aes" and "路灯" not in body
        body = crypto.decrypt_message(body, params["msg_signature"], params["timestamp"],
                                      params["nonce"])
    message = parse_message(body)
    assert (message.type, message.source, message.content) == ("text", "oJ", "路灯坏了 ]]> <b>")

    reply = TextReply(content="收到", message=message).render()
    if aes:
        reply = crypto.encrypt_message(reply, params["nonce"], params["timestamp"])
    assert fw.reply_text(fw.read_reply(reply, token, aes_key)) == "收到"
    assert fw.read_reply("success", token, aes_key) is None
    photo = parse_message(fw.image("oJ", "m1"))
    assert (photo.type, photo.media_id) == ("image", "m1")
    place = parse_message(fw.location("oJ", 31.23, 121.47, label="人民广场"))
    assert (place.type, tuple(map(float, place.location)), place.label) == (
        "location", (31.23, 121.47), "人民广场")
    spoken = parse_message(fw.voice("oJ", "垃圾满了"))
    assert (spoken.type, spoken.recognition) == ("voice", "垃圾满了")
    assert parse_message(fw.voice("oJ", None)).recognition is None
    pressed = parse_message(fw.click("oJ", "REPORT"))
    assert (pressed.event, pressed.key) == ("click", "REPORT")
    assert parse_message(fw.event("oJ", "subscribe")).event == "subscribe"
    assert parse_message(fw.event("oJ", "unsubscribe")).event == "unsubscribe"
    reported = parse_message(fw.location_event("oJ", 31.23, 121.47))
    assert (reported.event, float(reported.latitude), float(reported.longitude)) == (
        "location", 31.23, 121.47)
