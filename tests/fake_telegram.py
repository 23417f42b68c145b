"""A fake Telegram Bot API server on loopback, for tests, the bench and trying the bot by hand.

It speaks the Bot API's wire format (POST /bot<token>/<method>, form or JSON parameters, the
`{"ok": …}` envelope with the error's HTTP status), records every call, serves the files it knows
for getFile, and plays a user: builders make the updates Telegram would send, and `deliver()`
posts one to the webhook with the secret header, as Telegram does (or queues it for getUpdates
when no webhook is set). Faults per chat: 429 with retry_after, 403 "bot was blocked by the user".

With `limits` it keeps the Bot API's broadcast limits (at most 30 messages in any sliding second
in all, one a second to one chat) and answers 429 with `parameters.retry_after` when a bot breaks
them, as Telegram does; `throttled` lists those answers. A bot may only write to people who
started it: a message to a chat the fake does not know is 400 "chat not found" (`add_chats`
registers many at once). Every message it accepted is in `accepted` (wall time, chat id), which
`GET /_fake/stats` sums up and `GET /_fake/accepted` lists, for a bench in another process.

For the fan-out bench (limits on, chats registered over HTTP with `POST /_fake/chats`):

    python -m tests.fake_telegram --port 8081 --limits

By hand:

    python -m tests.fake_telegram --port 8081 \
        --webhook http://127.0.0.1:8000/bot/telegram/webhook --secret S

then open http://127.0.0.1:8081/ and chat with the bot as a user, or chat at a terminal with
`python -m tests.fake_telegram chat --lang en`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import itertools
import json
import math
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import httpx
from aiohttp import web

TOKEN = "123456:TEST"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Gridlink", "username": "gridlink_test_bot"}
DOWNLOAD_LIMIT = 20 * 1024 * 1024
# Parameters that travel as JSON text inside a form.
_JSON_PARAMS = {"reply_markup", "allowed_updates", "entities", "media", "commands",
                "caption_entities", "link_preview_options", "reply_parameters"}
# Methods that put a message into a chat: what the broadcast limits count.
_MESSAGE_METHODS = {"sendmessage", "sendphoto", "senddocument", "sendmediagroup", "sendlocation",
                    "sendvenue", "sendsticker", "copymessage", "forwardmessage"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _as_sent(message: dict) -> dict:
    """The Message a method returns: a message carries only inline keyboards (a reply
    keyboard is the chat's, not the message's)."""
    markup = message.get("reply_markup") or {}
    if "inline_keyboard" in markup:
        return message
    return {k: v for k, v in message.items() if k != "reply_markup"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None):
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass
class Fault:
    kind: str  # "429" or "blocked"
    retry_after: int = 7
    methods: set[str] | None = None  # lower-case method names; None: every method for the chat
    times: int | None = None  # how many calls fail; None: until cleared


@dataclass
class Limits:
    """The Bot API's broadcast limits (core.telegram.org/bots/faq, "My bot is hitting limits"):
    messages in any sliding second, all chats together, and the least time between two
    messages to one chat. Only accepted messages count (a refused one reached nobody)."""

    per_second: int = 30
    per_chat_s: float = 1.0


@dataclass
class User:
    id: int
    first_name: str = "Test"
    language_code: str = "zh-hans"

    def as_dict(self) -> dict:
        return {"id": self.id, "is_bot": False, "first_name": self.first_name,
                "language_code": self.language_code}


@dataclass
class FakeTelegram:
    token: str = TOKEN
    calls: list[tuple[str, dict]] = field(default_factory=list)
    faults: dict[int, Fault] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str = ""
    # The client deliver() posts with: tests hand in one bound to the app (ASGI transport).
    http: httpx.AsyncClient | None = None
    base: str = ""
    # The broadcast limits, enforced when set.
    limits: Limits | None = None
    # When set, every message to any chat is answered 429 with this retry_after (the bot is
    # being held back as a whole).
    flood: int | None = None

    def __post_init__(self):
        self.files: dict[str, tuple[str, str, bytes]] = {}  # file_id -> (unique id, path, bytes)
        # Files whose download answers 404 (expired at Telegram).
        self.gone: set[str] = set()
        # Sizes announced instead of the real one (a file_size Telegram got wrong).
        self.announced: dict[str, int] = {}
        self.chats: dict[int, dict] = {}
        # Calls answered with an error: (method, description).
        self.refused: list[tuple[str, str]] = []
        # Per chat, every message both ways, in order (the page shows these).
        self.transcript: dict[int, list[dict]] = {}
        self.answered: set[str] = set()
        self.pending_queries: set[str] = set()
        self.queue: list[dict] = []
        self._queued = asyncio.Event()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count] = {}
        self._runner: web.AppRunner | None = None
        # Every message a method put into a chat: (time.time(), chat id), in order.
        self.accepted: list[tuple[float, int]] = []
        # 429s answered because the limits were broken ((time.time(), chat id) each); errors
        # answered, by code.
        self.throttled: list[tuple[float, int]] = []
        self.errors: Counter[int] = Counter()
        # Calls being answered right now (read but not yet answered).
        self.active = 0
        self._window: deque[float] = deque()  # monotonic times of the last second's messages
        self._chat_last: dict[int, float] = {}

    # The server.

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_get("/_fake/chat", self._page_chat)
        app.router.add_post("/_fake/say", self._page_say)
        app.router.add_post("/_fake/chats", self._add_chats)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/accepted", self._accepted)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://{host}:{port}"
        return self.base

    async def stop(self) -> None:
        # Long polls still held (a poller that was stopped) answer now, empty.
        self._queued.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.http is not None and getattr(self, "_own_http", False):
            await self.http.aclose()

    # What tests look at.

    def calls_of(self, method: str) -> list[dict]:
        return [p for m, p in self.calls if m == method.lower()]

    def sent(self, chat_id: int) -> list[dict]:
        """The bot's messages in the chat, oldest first (edits applied)."""
        return [m for m in self.transcript.get(chat_id, []) if m["from"].get("is_bot")]

    def last(self, chat_id: int) -> dict:
        return self.sent(chat_id)[-1]

    def texts(self, chat_id: int) -> list[str]:
        return [m.get("text", "") for m in self.sent(chat_id)]

    def stats(self) -> dict:
        """What a bench reads: messages accepted, chats reached (and reached more than once),
        429s, and the wall times of the first and last message."""
        per_chat = Counter(chat for _t, chat in self.accepted)
        return {"messages": len(self.accepted), "chats": len(per_chat),
                "repeated": sum(1 for n in per_chat.values() if n > 1),
                "throttled": len(self.throttled), "429s": self.errors[429],
                "first": self.accepted[0][0] if self.accepted else None,
                "last": self.accepted[-1][0] if self.accepted else None}

    def idle(self) -> bool:
        """No call being answered and no connection open: whatever a client that went away
        had sent has been answered (or was cut off before it arrived whole)."""
        server = self._runner.server if self._runner is not None else None
        return self.active == 0 and not (server is not None and server.connections)

    def add_chats(self, ids) -> None:
        """People who started the bot (private chats with no messages yet): bots may write
        only to them."""
        for chat_id in ids:
            self.chats.setdefault(int(chat_id), {"id": int(chat_id), "type": "private",
                                                 "first_name": "Test"})

    def fail(self, chat_id: int, kind: str, **kw) -> None:
        self.faults[chat_id] = Fault(kind, **kw)

    def clear_faults(self) -> None:
        self.faults.clear()

    # Updates, as Telegram would send them.

    def _chat_of(self, user: User, chat: dict | None) -> dict:
        chat = chat or {"id": user.id, "type": "private", "first_name": user.first_name}
        self.chats[chat["id"]] = chat
        return chat

    def _user_message(self, user: User, chat: dict | None = None, **content) -> dict:
        chat = self._chat_of(user, chat)
        message = {"message_id": self._next_message_id(chat["id"]), "date": int(time.time()),
                   "chat": chat, "from": user.as_dict(), **content}
        self.transcript.setdefault(chat["id"], []).append(message)
        return {"update_id": next(self._update_ids), "message": message}

    def text(self, user: User, text: str, chat: dict | None = None) -> dict:
        return self._user_message(user, chat, text=text)

    def command(self, user: User, name: str, arg: str = "", chat: dict | None = None,
                mention: str | None = None) -> dict:
        head = f"/{name}" + (f"@{mention}" if mention else "")
        text = f"{head} {arg}".strip()
        return self._user_message(user, chat, text=text, entities=[
            {"type": "bot_command", "offset": 0, "length": utf16_len(head)}])

    def add_file(self, data: bytes, path_prefix: str = "photos") -> tuple[str, str]:
        n = next(self._ids)
        file_id, unique = f"AgACAgIAAxk{n:06d}", f"AQADu{n:06d}"
        self.files[file_id] = (unique, f"{path_prefix}/file_{n}.jpg", data)
        return file_id, unique

    def photo(self, user: User, data: bytes, caption: str | None = None,
              group: str | None = None, announce: int | None = None) -> dict:
        """`announce`: the size the message and getFile claim for the picture, whatever its
        real size."""
        thumb_id, thumb_unique = self.add_file(data[:1000])
        file_id, unique = self.add_file(data)
        if announce is not None:
            self.announced[file_id] = announce
        sizes = [{"file_id": thumb_id, "file_unique_id": thumb_unique, "width": 90,
                  "height": 67, "file_size": min(len(data), 1000)},
                 {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 960,
                  "file_size": self.announced.get(file_id, len(data))}]
        content = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if group is not None:
            content["media_group_id"] = group
        return self._user_message(user, **content)

    def album(self, user: User, photos: list[bytes], caption: str | None = None) -> list[dict]:
        group = f"1{next(self._ids):017d}"
        return [self.photo(user, data, caption if i == 0 else None, group)
                for i, data in enumerate(photos)]

    def document(self, user: User, data: bytes, mime_type: str = "image/jpeg",
                 caption: str | None = None) -> dict:
        file_id, unique = self.add_file(data, "documents")
        content = {"document": {"file_id": file_id, "file_unique_id": unique,
                                "file_name": "photo.jpg", "mime_type": mime_type,
                                "file_size": len(data)}}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user, **content)

    def location(self, user: User, lat: float, lng: float) -> dict:
        return self._user_message(user, location={"latitude": lat, "longitude": lng})

    def venue(self, user: User, lat: float, lng: float, title: str, address: str) -> dict:
        loc = {"latitude": lat, "longitude": lng}
        return self._user_message(user, location=loc, venue={"location": loc, "title": title,
                                                             "address": address})

    def sticker(self, user: User) -> dict:
        return self._user_message(user, sticker={
            "file_id": "CAACAgIAAxk", "file_unique_id": "AgADsticker", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False})

    def press(self, user: User, label: str | None = None, data: str | None = None) -> dict:
        """A tap on the newest button in the user's chat whose label contains `label` (or whose
        callback data is `data`)."""
        for message in reversed(self.sent(user.id)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if "callback_data" not in button:
                        continue
                    if (label is not None and label in button["text"]) or \
                            (data is not None and button["callback_data"] == data):
                        return self.callback(user, message, button["callback_data"])
        raise LookupError(f"no button {label or data!r} in the chat of {user.id}")

    def callback(self, user: User, message: dict, data: str) -> dict:
        query_id = str(next(self._ids) * 7919)
        self.pending_queries.add(query_id)
        return {"update_id": next(self._update_ids),
                "callback_query": {"id": query_id, "from": user.as_dict(),
                                   "chat_instance": str(user.id), "message": message,
                                   "data": data}}

    def buttons(self, message: dict) -> list[str]:
        return [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row]

    async def deliver(self, update: dict, secret: str | bytes | None = None) -> httpx.Response | None:
        """Posts the update to the webhook as Telegram does; without one, getUpdates gets it."""
        if not self.webhook_url:
            self.queue.append(update)
            self._queued.set()
            return None
        if self.http is None:
            self.http, self._own_http = httpx.AsyncClient(timeout=30), True
        headers = {"X-Telegram-Bot-Api-Secret-Token":
                   self.webhook_secret if secret is None else secret}
        return await self.http.post(self.webhook_url, json=update, headers=headers)

    # The Bot API.

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            body = await request.read()
            params = json.loads(body) if body else {}
        elif request.method == "POST":
            form = await request.post()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            params = {}
        params.update({k: v for k, v in request.query.items() if k not in params})
        for key in _JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        return params

    async def _method(self, request: web.Request) -> web.Response:
        self.active += 1
        try:
            return await self._answer(request)
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await self._params(request)
            self.calls.append((method, params))
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            self._check_fault(method, params)
            counted = method in _MESSAGE_METHODS and "chat_id" in params
            if counted and self.flood is not None:
                raise ApiError(429, f"Too Many Requests: retry after {self.flood}", self.flood)
            if counted:
                self._check_limits(int(params["chat_id"]))
            result = await handler(params)
            if counted:
                self._count(int(params["chat_id"]))
        except ApiError as exc:
            self.refused.append((method, exc.description))
            self.errors[exc.code] += 1
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        except (ValueError, KeyError) as exc:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": f"Bad Request: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": result})

    def _check_fault(self, method: str, params: dict) -> None:
        chat_id = params.get("chat_id")
        fault = self.faults.get(int(chat_id)) if chat_id is not None else None
        if fault is None or (fault.methods is not None and method not in fault.methods):
            return
        if fault.times is not None:
            fault.times -= 1
            if fault.times < 0:
                del self.faults[int(chat_id)]
                return
        if fault.kind == "429":
            raise ApiError(429, f"Too Many Requests: retry after {fault.retry_after}",
                           fault.retry_after)
        raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _check_limits(self, chat_id: int) -> None:
        if self.limits is None:
            return
        now = time.monotonic()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        waits = []
        if len(self._window) >= self.limits.per_second:
            waits.append(self._window[len(self._window) - self.limits.per_second] + 1.0 - now)
        last = self._chat_last.get(chat_id)
        if last is not None and now - last < self.limits.per_chat_s:
            waits.append(last + self.limits.per_chat_s - now)
        if waits:
            self.throttled.append((time.time(), chat_id))
            # Telegram tells whole seconds, at least one.
            retry_after = max(1, math.ceil(max(waits)))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def _count(self, chat_id: int) -> None:
        """One message accepted (the handler ran without awaiting: checked and counted at
        one moment of the loop)."""
        now = time.monotonic()
        self._window.append(now)
        self._chat_last[chat_id] = now
        self.accepted.append((time.time(), chat_id))

    def _chat(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self.chats[chat_id]

    @staticmethod
    def _check_markup(markup: dict | None) -> None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _find(self, params: dict) -> dict:
        chat = self._chat(params)
        message_id = int(params["message_id"])
        for message in self.transcript.get(chat["id"], []):
            if message["message_id"] == message_id and message["from"].get("is_bot"):
                return message
        raise ApiError(400, "Bad Request: message to edit not found")

    async def api_getme(self, params: dict):
        return {**BOT_USER, "id": int(self.token.split(":")[0])}

    async def api_sendmessage(self, params: dict):
        chat = self._chat(params)
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        self._check_markup(markup)
        message = {"message_id": self._next_message_id(chat["id"]), "date": int(time.time()),
                   "chat": chat, "from": BOT_USER, "text": text}
        if markup:
            message["reply_markup"] = markup
        self.transcript.setdefault(chat["id"], []).append(message)
        return _as_sent(message)

    async def api_editmessagetext(self, params: dict):
        message = self._find(params)
        text = str(params.get("text", ""))
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same")
        message["text"] = text
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return _as_sent(message)

    async def api_editmessagereplymarkup(self, params: dict):
        message = self._find(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified")
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return _as_sent(message)

    async def api_answercallbackquery(self, params: dict):
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self.pending_queries or query_id in self.answered:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        self.answered.add(query_id)
        return True

    async def api_sendchataction(self, params: dict):
        self._chat(params)
        return True

    async def api_getfile(self, params: dict):
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        unique, path, data = self.files[file_id]
        if len(data) > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": unique,
                "file_size": self.announced.get(file_id, len(data)), "file_path": path}

    async def api_setwebhook(self, params: dict):
        self.webhook_url = str(params.get("url", ""))
        self.webhook_secret = str(params.get("secret_token", ""))
        return True

    async def api_deletewebhook(self, params: dict):
        self.webhook_url = ""
        return True

    async def api_getwebhookinfo(self, params: dict):
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": 0 if self.webhook_url else len(self.queue)}

    async def api_getupdates(self, params: dict):
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                "active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        self.queue = [u for u in self.queue if u["update_id"] >= offset]
        if not self.queue:
            self._queued.clear()
            try:
                await asyncio.wait_for(self._queued.wait(), float(params.get("timeout") or 0))
            except TimeoutError:
                pass
        return self.queue[:100]

    async def api_setmycommands(self, params: dict):
        return True

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        path = request.match_info["path"]
        for file_id, (_unique, file_path, data) in self.files.items():
            if file_path == path and file_id not in self.gone:
                return web.Response(body=data, content_type="image/jpeg")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                 status=404)

    # The page, for trying the bot by hand.

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _add_chats(self, request: web.Request) -> web.Response:
        """{"ids": [...]} or {"first": id, "count": n}: people who started the bot."""
        body = await request.json()
        ids = body.get("ids") or range(int(body["first"]), int(body["first"]) + int(body["count"]))
        self.add_chats(ids)
        return web.json_response({"chats": len(self.chats)})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _accepted(self, request: web.Request) -> web.Response:
        """Every message accepted and every 429 for the limits: [time.time(), chat id] each."""
        return web.json_response({"accepted": self.accepted, "throttled": self.throttled})

    def _person(self, request: web.Request, body: dict | None = None) -> User:
        source = body if body is not None else request.query
        return User(int(source.get("user") or 10001), str(source.get("name") or "Test"),
                    str(source.get("lang") or "zh-hans"))

    async def _page_chat(self, request: web.Request) -> web.Response:
        user = self._person(request)
        return web.json_response(self.transcript.get(user.id, []))

    async def _page_say(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._person(request, body)
        if body.get("press"):
            update = self.press(user, data=body["press"])
        elif body.get("photo"):
            update = self.photo(user, base64.b64decode(body["photo"]), body.get("text") or None)
        elif body.get("lat") not in (None, ""):
            update = self.location(user, float(body["lat"]), float(body["lng"]))
        elif str(body.get("text", "")).startswith("/"):
            name, _, arg = str(body["text"])[1:].partition(" ")
            update = self.command(user, name, arg)
        else:
            update = self.text(user, str(body.get("text", "")))
        try:
            response = await self.deliver(update)
        except httpx.HTTPError as exc:
            return web.json_response({"delivered": False, "error": str(exc)})
        return web.json_response({"delivered": True, "status":
                                  response.status_code if response is not None else "queued"})


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fake Telegram</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#e6ebee}
header{background:#517da2;color:#fff;padding:.6em 1em}
header input{width:7em}
#chat{padding:1em;max-width:40em;margin:auto;padding-bottom:9em}
.msg{max-width:80%;margin:.4em 0;padding:.5em .8em;border-radius:.8em;white-space:pre-wrap;
background:#fff}
.me{margin-left:auto;background:#effdde}
.kb button{display:block;width:100%;margin-top:.3em}
form{position:fixed;bottom:0;left:0;right:0;background:#fff;padding:.6em;display:flex;
flex-wrap:wrap;gap:.4em}
#text{flex:1 1 12em}
</style></head><body>
<header>Fake Telegram &middot; user id <input id="user" value="10001"> language
<select id="lang"><option value="zh-hans">中文</option><option value="en">English</option></select>
</header>
<div id="chat"></div>
<form id="f">
<input id="text" placeholder="Message (or /start)" autocomplete="off">
<button>Send</button>
<input id="photo" type="file" accept="image/*" title="photo (the text is its caption)">
<span id="loc" hidden>lat <input id="lat" size="8" value="31.2304"> lng
<input id="lng" size="8" value="121.4737"> <button type="button" id="sendloc"></button></span>
</form>
<script>
const $ = id => document.getElementById(id);
function who() { return {user: $("user").value, lang: $("lang").value}; }
async function say(extra) {
  await fetch("/_fake/say", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(Object.assign(who(), extra))});
  setTimeout(load, 300);
}
async function load() {
  const r = await fetch("/_fake/chat?user=" + encodeURIComponent($("user").value));
  const msgs = await r.json();
  const chat = $("chat");
  chat.textContent = "";
  let askLocation = null;
  for (const m of msgs) {
    const d = document.createElement("div");
    d.className = "msg" + (m.from.is_bot ? "" : " me");
    d.textContent = m.text || m.caption || (m.photo ? "[photo]" : m.location ?
      "[location " + m.location.latitude + ", " + m.location.longitude + "]" : "[message]");
    const mk = m.reply_markup || {};
    if (mk.inline_keyboard) {
      const kb = document.createElement("div");
      kb.className = "kb";
      for (const row of mk.inline_keyboard) for (const b of row) {
        const el = document.createElement(b.url ? "a" : "button");
        el.textContent = b.text;
        if (b.url) { el.href = b.url; el.style.display = "block"; }
        else el.onclick = () => say({press: b.callback_data});
        kb.appendChild(el);
      }
      d.appendChild(kb);
    }
    if (!m.from.is_bot && m.location) askLocation = null;  // one_time_keyboard: used once
    if (m.from.is_bot) askLocation = mk.keyboard ? mk.keyboard[0][0].text : (mk.remove_keyboard ? null : askLocation);
    chat.appendChild(d);
  }
  $("loc").hidden = !askLocation;
  $("sendloc").textContent = askLocation || "";
  window.scrollTo(0, document.body.scrollHeight);
}
$("f").onsubmit = async e => {
  e.preventDefault();
  const file = $("photo").files[0];
  if (file) {
    const data = new Uint8Array(await file.arrayBuffer());
    let bin = ""; for (const b of data) bin += String.fromCharCode(b);
    await say({photo: btoa(bin), text: $("text").value});
    $("photo").value = "";
  } else if ($("text").value) await say({text: $("text").value});
  $("text").value = "";
};
$("sendloc").onclick = () => say({lat: $("lat").value, lng: $("lng").value});
$("user").onchange = load;
setInterval(load, 2000);
load();
</script></body></html>
"""


def chat(fake: str, user: int, lang: str) -> None:
    """A user at a terminal, talking through a running fake: each line is sent, the bot's new
    (or edited) messages are printed. `/start` a command, `@31.23,121.47` a location, `#2` the
    second button of the newest buttons, `!photo.jpg caption` a photo, empty line: look again."""
    shown: dict[int, str] = {}

    def bot_messages() -> list[dict]:
        messages = httpx.get(f"{fake}/_fake/chat", params={"user": user}).json()
        return [m for m in messages if m["from"].get("is_bot")]

    def fingerprint(messages: list[dict]) -> str:
        return json.dumps(messages, sort_keys=True)

    def show(messages: list[dict]) -> None:
        for m in messages:
            # New, or edited in place (paging); losing its buttons after a press is not news.
            if shown.get(m["message_id"]) == m.get("text"):
                continue
            shown[m["message_id"]] = m.get("text")
            print("bot>", m.get("text", ""))
            n = 0
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    n += 1 if "callback_data" in b else 0
                    print(f"     [{'#' + str(n) if 'callback_data' in b else b.get('url')}] "
                          f"{b['text']}")
            for row in (m.get("reply_markup") or {}).get("keyboard", []):
                print(f"     [@lat,lng] {row[0]['text']}")

    def buttons(messages: list[dict]) -> list[str]:
        for m in reversed(messages):
            rows = (m.get("reply_markup") or {}).get("inline_keyboard")
            if rows:
                return [b["callback_data"] for row in rows for b in row if "callback_data" in b]
        return []

    print(f"You are user {user} ({lang}). Ctrl-D ends.")
    show(bot_messages())
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            return
        before = bot_messages()
        body: dict = {"user": user, "lang": lang}
        if line.startswith("#") and line[1:].isdigit():
            choices = buttons(before)
            if not 0 < int(line[1:]) <= len(choices):
                print("     (no such button)")
                continue
            body["press"] = choices[int(line[1:]) - 1]
        elif line.startswith("@"):
            body["lat"], _, body["lng"] = line[1:].partition(",")
        elif line.startswith("!"):
            path, _, caption = line[1:].partition(" ")
            with open(path, "rb") as f:
                body["photo"] = base64.b64encode(f.read()).decode()
            body["text"] = caption
        elif line:
            body["text"] = line
        if len(body) > 2:
            httpx.post(f"{fake}/_fake/say", json=body, timeout=30)
            # The bot answers in the background: wait for its answer, then for it to settle.
            deadline, last, quiet_since = time.monotonic() + 15, fingerprint(before), None
            while time.monotonic() < deadline:
                now = fingerprint(bot_messages())
                if now != last:
                    last, quiet_since = now, time.monotonic()
                elif quiet_since is not None and time.monotonic() - quiet_since > 0.5:
                    break
                time.sleep(0.1)
        show(bot_messages())


def main() -> None:
    if sys.argv[1:2] == ["chat"]:
        parser = argparse.ArgumentParser(prog="python -m tests.fake_telegram chat",
                                         description="Chat with the bot through a running fake.")
        parser.add_argument("--fake", default="http://127.0.0.1:8081")
        parser.add_argument("--user", type=int, default=10001)
        parser.add_argument("--lang", default="zh-hans", help="zh-hans or en")
        args = parser.parse_args(sys.argv[2:])
        chat(args.fake, args.user, args.lang)
        return
    parser = argparse.ArgumentParser(description="A fake Telegram Bot API server to try the bot.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=TOKEN)
    parser.add_argument("--webhook", default="", help="deliver updates here (else getUpdates)")
    parser.add_argument("--secret", default="", help="the webhook's secret token")
    parser.add_argument("--limits", action="store_true",
                        help="keep the Bot API's broadcast limits (429 when broken)")
    parser.add_argument("--per-second", type=int, default=Limits.per_second,
                        help="with --limits: messages in any sliding second, in all")
    parser.add_argument("--per-chat-s", type=float, default=Limits.per_chat_s,
                        help="with --limits: least seconds between two messages to one chat")
    args = parser.parse_args()
    fake = FakeTelegram(token=args.token, webhook_url=args.webhook, webhook_secret=args.secret,
                        limits=Limits(args.per_second, args.per_chat_s) if args.limits else None)
    print(f"Fake Telegram on http://{args.host}:{args.port}/  (token {args.token}; "
          f"{'webhook ' + args.webhook if args.webhook else 'getUpdates'}"
          f"{'; limits ' + str(fake.limits) if fake.limits else ''})", flush=True)
    app = fake.web_app()
    app.cleanup_ctx.append(_frozen_records)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


async def _frozen_records(app: web.Application):
    """What the fake keeps (every call, every message) out of the garbage collector's full
    passes: with 10,000 messages kept a full pass stopped the loop for 30 to 60 ms, the
    requests that came meanwhile were then counted as arriving at once, and the limits
    answered 429 to a bot that kept them (bench/fanout.py)."""

    async def freeze():
        while True:
            await asyncio.sleep(2)
            gc.freeze()

    task = asyncio.create_task(freeze())
    yield
    task.cancel()


if __name__ == "__main__":
    main()
