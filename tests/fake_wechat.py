"""A fake WeChat API server on loopback, for tests and for trying the Official Account by hand.

The API side speaks WeChat's wire format (JSON bodies, `{"errcode": …, "errmsg": …}` errors with
HTTP 200): /cgi-bin/token, /cgi-bin/stable_token, /cgi-bin/message/custom/send,
/cgi-bin/message/template/send, /cgi-bin/media/get, /cgi-bin/menu/create. It records every call,
checks the access token (40001 unknown, 42001 expired; tests expire tokens at will with
`expire_tokens()`), and fails sends to chosen users with WeChat's codes (45015 out of the reply
window, 45047 too many customer-service messages, 43004 not following).

The user side plays WeChat toward our message server: builders make the XML WeChat posts (text,
image, location, voice, events), `signed()` signs it and in safe mode encrypts it with wechatpy's
WeChatCrypto exactly as WeChat does, `read_reply()` checks and decrypts the passive reply, and
`FakeWeChat.deliver()` does all three against /bot/wechat.

By hand:

    python -m tests.fake_wechat --port 8082
    python -m tests.fake_wechat chat --server http://127.0.0.1:8000/bot/wechat --token T \
        [--aes-key K --app-id A]

then each typed line is a text message; `@31.2304,121.4737` a location, `!photo.jpg` an image,
`/menu REPORT` a menu click, `/voice words` a voice message with its recognition,
`/subscribe`, `/unsubscribe`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

APP_ID = "wx0123456789abcdef"
APP_SECRET = "fake-app-secret-0123456789abcdef"
ACCOUNT = "gh_gridlink0001"
# The fields of a template message show at most this many characters.
TEMPLATE_FIELD_CHARS = 20


def _ok(**extra) -> dict:
    return {"errcode": 0, "errmsg": "ok", **extra}


def _err(code: int, msg: str) -> dict:
    return {"errcode": code, "errmsg": f"{msg} rid: {secrets.token_hex(4)}"}


# The user side: messages as WeChat posts them.

def _cdata(value: str) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(openid: str, msg_type: str, fields: dict, *, account: str = ACCOUNT,
                create_time: int | None = None) -> str:
    """WeChat's XML: strings in CDATA, numbers bare."""
    parts = [f"<ToUserName>{_cdata(account)}</ToUserName>",
             f"<FromUserName>{_cdata(openid)}</FromUserName>",
             f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
             f"<MsgType>{_cdata(msg_type)}</MsgType>"]
    for name, value in fields.items():
        body = str(value) if isinstance(value, int | float) else _cdata(value)
        parts.append(f"<{name}>{body}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


_msg_ids = itertools.count(int(time.time()) * 1000)


def text(openid: str, content: str, msg_id: int | None = None) -> str:
    return message_xml(openid, "text", {"Content": content, "MsgId": msg_id or next(_msg_ids)})


def image(openid: str, media_id: str, pic_url: str = "http://mmbiz.qpic.cn/fake.jpg",
          msg_id: int | None = None) -> str:
    return message_xml(openid, "image", {"PicUrl": pic_url, "MediaId": media_id,
                                         "MsgId": msg_id or next(_msg_ids)})


def location(openid: str, lat: float, lng: float, label: str = "", scale: int = 15,
             msg_id: int | None = None) -> str:
    """A shared location: WeChat's coordinates are GCJ-02."""
    return message_xml(openid, "location", {"Location_X": lat, "Location_Y": lng,
                                            "Scale": scale, "Label": label,
                                            "MsgId": msg_id or next(_msg_ids)})


def voice(openid: str, recognition: str | None, media_id: str = "voice-media",
          msg_id: int | None = None) -> str:
    fields = {"MediaId": media_id, "Format": "amr"}
    if recognition is not None:
        fields["Recognition"] = recognition
    fields["MsgId"] = msg_id or next(_msg_ids)
    return message_xml(openid, "voice", fields)


def event(openid: str, name: str, create_time: int | None = None, **fields) -> str:
    """subscribe, unsubscribe, LOCATION (Latitude, Longitude, Precision), CLICK (EventKey)."""
    return message_xml(openid, "event", {"Event": name, **fields}, create_time=create_time)


def click(openid: str, key: str, create_time: int | None = None) -> str:
    return event(openid, "CLICK", create_time, EventKey=key)


def location_event(openid: str, lat: float, lng: float, precision: float = 30.0) -> str:
    return event(openid, "LOCATION", Latitude=lat, Longitude=lng, Precision=precision)


def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def signed(xml: str, openid: str, token: str, aes_key: str = "", app_id: str = APP_ID,
           account: str = ACCOUNT) -> tuple[dict, str]:
    """The query parameters and body WeChat posts: signed, and encrypted when there is an AES
    key (safe mode: the body carries only the account and the ciphertext)."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    params = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp,
              "nonce": nonce, "openid": openid}
    if not aes_key:
        return params, xml
    sealed = ET.fromstring(WeChatCrypto(token, aes_key, app_id)
                           .encrypt_message(xml, nonce, timestamp))
    encrypted = sealed.findtext("Encrypt")
    params.update(encrypt_type="aes", msg_signature=sealed.findtext("MsgSignature"))
    body = (f"<xml><ToUserName>{_cdata(account)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>")
    return params, body


def read_reply(body: str, token: str, aes_key: str = "", app_id: str = APP_ID) -> dict | None:
    """The passive reply as a dict of its elements (None for "success" or an empty body);
    in safe mode its signature is checked and it is decrypted, as WeChat does."""
    body = body.strip()
    if body in ("", "success"):
        return None
    root = ET.fromstring(body)
    if aes_key:
        plain = WeChatCrypto(token, aes_key, app_id).decrypt_message(
            body, root.findtext("MsgSignature"), root.findtext("TimeStamp"),
            root.findtext("Nonce"))
        root = ET.fromstring(plain)
    return _as_dict(root)


def _as_dict(el: ET.Element) -> dict:
    out: dict = {}
    for child in el:
        value = _as_dict(child) if len(child) else (child.text or "")
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def reply_text(reply: dict | None) -> str:
    """What the person sees of a passive reply."""
    if not reply:
        return ""
    if reply.get("MsgType") == "news":
        items = reply.get("Articles", {}).get("item", [])
        items = items if isinstance(items, list) else [items]
        return "\n".join(f"{a.get('Title', '')} {a.get('Url', '')}".strip() for a in items)
    return reply.get("Content", f"[{reply.get('MsgType')}]")


def sent_text(message: dict) -> str:
    """What the person sees of a message the server sent through the API."""
    if message["kind"] == "template":
        values = "; ".join(f"{k}: {v.get('value', '')}" for k, v in message["data"].items())
        return f"[template] {values}" + (f" {message['url']}" if message.get("url") else "")
    return message.get("text", f"[{message.get('msgtype')}]")


# The API side.

@dataclass
class FakeWeChat:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    # Seconds a new access token is valid for (WeChat: 7200).
    token_ttl: int = 7200
    calls: list[tuple[str, dict]] = field(default_factory=list)
    # openid -> errcode every send to them answers (tests set these with fail()).
    faults: dict[str, int] = field(default_factory=dict)
    # Seconds every send waits before answering (a WeChat that is slow to answer).
    stall: float = 0.0
    # For deliver(): tests hand in a client bound to the app (ASGI transport).
    http: httpx.AsyncClient | None = None
    base: str = ""

    def __post_init__(self):
        self.tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self.stable: str | None = None
        self.plain: str | None = None
        self.media: dict[str, tuple[bytes, str]] = {}
        self.menu: dict | None = None
        # openid -> what the server sent them through the API, oldest first.
        self.outbox: dict[str, list[dict]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        # For the chat at a terminal, which runs in another process.
        app.router.add_post("/_fake/media", self._fake_media)
        app.router.add_get("/_fake/sent", self._fake_sent)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # What tests look at and control.

    def calls_of(self, path: str) -> list[dict]:
        return [p for name, p in self.calls if name == path]

    def sent(self, openid: str) -> list[dict]:
        return self.outbox.get(openid, [])

    def fail(self, openid: str, errcode: int) -> None:
        self.faults[openid] = errcode

    def expire_tokens(self) -> None:
        """Every access token handed out so far stops working (42001), as after 2 hours."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def add_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        media_id = f"media-{next(self._ids):04d}-{secrets.token_hex(6)}"
        self.media[media_id] = (data, content_type)
        return media_id

    # The user side, delivered to our server.

    async def deliver(self, server: str, xml: str, openid: str, token: str,
                      aes_key: str = "", app_id: str = APP_ID) -> tuple[httpx.Response, dict | None]:
        """Post a message as WeChat does; the response and the passive reply read from it."""
        http = self.http or httpx.AsyncClient()
        params, body = signed(xml, openid, token, aes_key, app_id)
        try:
            res = await http.post(server, params=params, content=body.encode(),
                                  headers={"Content-Type": "text/xml"}, timeout=10)
        finally:
            if self.http is None:
                await http.aclose()
        reply = read_reply(res.text, token, aes_key, app_id) if res.status_code == 200 else None
        return res, reply

    # The API.

    def _issue(self) -> str:
        token = f"ACCESS_{next(self._ids):04d}_{secrets.token_urlsafe(24)}"
        self.tokens[token] = time.time() + self.token_ttl
        return token

    def _credentials(self, appid: str | None, secret: str | None) -> dict | None:
        if appid != self.app_id:
            return _err(40013, "invalid appid")
        if secret != self.app_secret:
            return _err(40125, "invalid appsecret")
        return None

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        self.calls.append(("token", {"appid": q.get("appid")}))
        refused = self._credentials(q.get("appid"), q.get("secret"))
        if refused:
            return web.json_response(refused)
        # A plain fetch invalidates the plain token fetched before, whoever holds it (stable
        # tokens are a separate kind, untouched).
        if self.plain:
            self.tokens.pop(self.plain, None)
        token = self.plain = self._issue()
        return web.json_response({"access_token": token, "expires_in": self.token_ttl})

    async def _stable_token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(_err(47001, "data format error"))
        force = bool(body.get("force_refresh"))
        self.calls.append(("stable_token", {"appid": body.get("appid"), "force_refresh": force}))
        if body.get("grant_type") != "client_credential":
            return web.json_response(_err(40002, "invalid grant_type"))
        refused = self._credentials(body.get("appid"), body.get("secret"))
        if refused:
            return web.json_response(refused)
        now = time.time()
        if not force and self.stable and self.tokens.get(self.stable, 0) > now:
            return web.json_response({"access_token": self.stable,
                                      "expires_in": int(self.tokens[self.stable] - now)})
        if force and self.stable:
            # The token handed out before stops working for whoever holds it.
            self.tokens.pop(self.stable, None)
        self.stable = self._issue()
        return web.json_response({"access_token": self.stable, "expires_in": self.token_ttl})

    def _check_token(self, request: web.Request) -> dict | None:
        token = request.query.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        if token not in self.tokens:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if self.tokens[token] <= time.time():
            return _err(42001, "access_token expired")
        return None

    async def _json(self, request: web.Request, name: str) -> tuple[dict, dict | None]:
        if self.stall:
            await asyncio.sleep(self.stall)
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        self.calls.append((name, body if isinstance(body, dict) else {}))
        refused = self._check_token(request)
        if refused is None and not isinstance(body, dict):
            refused = _err(47001, "data format error")
        return body or {}, refused

    async def _custom_send(self, request: web.Request) -> web.Response:
        body, refused = await self._json(request, "custom_send")
        if refused:
            return web.json_response(refused)
        openid = body.get("touser", "")
        if openid in self.faults:
            return web.json_response(_err(self.faults[openid], {
                45015: "response out of time limit or subscription is canceled",
                45047: "out of response count limit",
                43004: "require subscribe"}.get(self.faults[openid], "refused")))
        msgtype = body.get("msgtype")
        message = {"kind": "custom", "msgtype": msgtype, "at": time.time()}
        if msgtype == "text":
            message["text"] = body.get("text", {}).get("content", "")
        else:
            message["body"] = body.get(msgtype)
        self.outbox.setdefault(openid, []).append(message)
        return web.json_response(_ok())

    async def _template_send(self, request: web.Request) -> web.Response:
        body, refused = await self._json(request, "template_send")
        if refused:
            return web.json_response(refused)
        openid = body.get("touser", "")
        if self.faults.get(openid) == 43004:
            return web.json_response(_err(43004, "require subscribe"))
        if not body.get("template_id"):
            return web.json_response(_err(40037, "invalid template_id"))
        data = body.get("data") or {}
        for name, item in data.items():
            if len(str((item or {}).get("value", ""))) > TEMPLATE_FIELD_CHARS:
                return web.json_response(_err(47003, f"argument invalid! data.{name}.value "
                                                     "invalid"))
        msgid = next(self._ids)
        self.outbox.setdefault(openid, []).append(
            {"kind": "template", "template_id": body["template_id"], "data": data,
             "url": body.get("url"), "at": time.time()})
        return web.json_response(_ok(msgid=msgid))

    async def _media_get(self, request: web.Request) -> web.Response:
        self.calls.append(("media_get", {"media_id": request.query.get("media_id")}))
        refused = self._check_token(request)
        if refused:
            return web.json_response(refused, content_type="text/plain")
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            # WeChat answers errors of this endpoint as text/plain JSON.
            return web.json_response(_err(40007, "invalid media_id"), content_type="text/plain")
        data, content_type = found
        return web.Response(body=data, content_type=content_type, headers={
            "Content-disposition": 'attachment; filename="media.jpg"'})

    async def _menu_create(self, request: web.Request) -> web.Response:
        body, refused = await self._json(request, "menu_create")
        if refused:
            return web.json_response(refused)
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return web.json_response(_err(40016, "invalid button size"))
        for b in buttons:
            # A first-level name is at most 16 bytes (4 Chinese characters).
            if not b.get("name") or len(b["name"].encode()) > 16:
                return web.json_response(_err(40018, "invalid button name size"))
            if b.get("type") == "click" and not 0 < len(str(b.get("key", "")).encode()) <= 128:
                return web.json_response(_err(40019, "invalid button key size"))
        self.menu = body
        return web.json_response(_ok())

    async def _fake_media(self, request: web.Request) -> web.Response:
        data = await request.read()
        return web.json_response({"media_id": self.add_media(
            data, request.content_type or "image/jpeg")})

    async def _fake_sent(self, request: web.Request) -> web.Response:
        return web.json_response(self.sent(request.query.get("openid", "")))


# By hand.

def chat(server: str, fake: str, token: str, aes_key: str, app_id: str, openid: str) -> None:
    seen = len(httpx.get(f"{fake}/_fake/sent", params={"openid": openid}, timeout=10).json())
    print(f"You are {openid}. Each line is a message; @lat,lng a location, !file.jpg an image,\n"
          "/menu REPORT|MY|HELP a menu click, /voice words, /subscribe, /unsubscribe. Ctrl-D ends.")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            return
        if not line:
            continue
        if line.startswith("@"):
            lat, _, lng = line[1:].partition(",")
            xml = location(openid, float(lat), float(lng))
        elif line.startswith("!"):
            with open(line[1:].strip(), "rb") as f:
                media_id = httpx.post(f"{fake}/_fake/media", content=f.read(), timeout=10,
                                      headers={"Content-Type": "image/jpeg"}).json()["media_id"]
            xml = image(openid, media_id)
        elif line.startswith("/menu "):
            xml = click(openid, line[6:].strip())
        elif line.startswith("/voice "):
            xml = voice(openid, line[7:].strip())
        elif line in ("/subscribe", "/unsubscribe"):
            xml = event(openid, line[1:])
        else:
            xml = text(openid, line)
        params, body = signed(xml, openid, token, aes_key, app_id)
        res = httpx.post(server, params=params, content=body.encode(), timeout=15,
                         headers={"Content-Type": "text/xml"})
        if res.status_code != 200:
            print(f"     (server answered {res.status_code}: {res.text[:200]})")
            continue
        passive = reply_text(read_reply(res.text, token, aes_key, app_id))
        if passive:
            print("bot>", passive.replace("\n", "\n     "))
        # Answers that take longer come through the customer-service API: wait until they settle.
        deadline, quiet_since = time.monotonic() + 8, time.monotonic()
        while time.monotonic() < deadline:
            sent = httpx.get(f"{fake}/_fake/sent", params={"openid": openid}, timeout=10).json()
            if len(sent) > seen:
                for m in sent[seen:]:
                    print("bot>", sent_text(m).replace("\n", "\n     "))
                seen, quiet_since = len(sent), time.monotonic()
            elif time.monotonic() - quiet_since > (1.0 if passive else 3.0):
                break
            time.sleep(0.2)


def main() -> None:
    if sys.argv[1:2] == ["chat"]:
        parser = argparse.ArgumentParser(prog="python -m tests.fake_wechat chat",
                                         description="Write to the Official Account as a user.")
        parser.add_argument("--server", default="http://127.0.0.1:8000/bot/wechat")
        parser.add_argument("--fake", default="http://127.0.0.1:8082")
        parser.add_argument("--token", required=True, help="GRIDLINK_WECHAT_TOKEN")
        parser.add_argument("--aes-key", default="", help="GRIDLINK_WECHAT_AES_KEY (safe mode)")
        parser.add_argument("--app-id", default=APP_ID, help="GRIDLINK_WECHAT_APP_ID")
        parser.add_argument("--openid", default="oFAKEuser0000000000000001")
        args = parser.parse_args(sys.argv[2:])
        chat(args.server, args.fake.rstrip("/"), args.token, args.aes_key, args.app_id,
             args.openid)
        return
    parser = argparse.ArgumentParser(description="A fake WeChat API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--app-id", default=APP_ID)
    parser.add_argument("--app-secret", default=APP_SECRET)
    args = parser.parse_args()
    fake = FakeWeChat(app_id=args.app_id, app_secret=args.app_secret)
    print(f"Fake WeChat API on http://{args.host}:{args.port}/  (app id {args.app_id}, "
          f"secret {args.app_secret})", flush=True)
    web.run_app(fake.web_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
