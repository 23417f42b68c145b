"""WeChat messages and events become dialogue inputs, and the dialogue's answers become text:
WeChat's text messages have no buttons, so buttons become numbered lines ("回复 1：…") answered
with the number (a `Choice`), links become their URL, and "ask for the location" a line that
says where WeChat's location button is."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from wechatpy.messages import BaseMessage

from bot import replies
from bot.dialogue.io import Button, Choice, Command, Input, Link, Location, Person, Photo, Say, Text
from portal.i18n import _, gettext_for

# WeChat's limit on a text message's content (passive reply and customer-service alike).
MESSAGE_BYTES = 2048
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:\s+(.*))?$", re.DOTALL)
_NUMBER = re.compile(r"^\d{1,3}$")
# Typed or spoken as the whole message (voice recognition ends with a full stop).
KEYWORDS = {
    "帮助": "help", "help": "help", "?": "help", "菜单": "help",
    "我的": "my", "我的案件": "my", "我的问题": "my",
    "上报": "report", "举报": "report", "报告问题": "report", "我要上报": "report",
    "取消": "cancel", "cancel": "cancel",
    "语言": "lang", "language": "lang",
    "开始": "start", "start": "start",
    "夜间通知": "night", "夜间": "night",
    "志愿者": "volunteer", "绑定": "link",
}
# 绑定 482913: the keyword with the code of a portal account.
_LINK = re.compile(r"^绑定\s*([0-9]{6})$")
# Custom menu buttons (`gridlink wechat menu`) send these keys.
MENU_KEYS = {"REPORT": "report", "MY": "my", "HELP": "help"}
# Reply with this number to use the place WeChat last reported for the person.
HERE = 0

UNSUPPORTED = _("I can read text, voice, photos and locations. Send /help to see what I can "
                "do.")
VOICE_UNHEARD = _("I could not make out that voice message. Please type it, or send a photo or "
                  "your location.")
REPLY_WITH = _("Reply {n}: {label}")
LOCATION_HOW = _("To share a location, tap ＋ next to the input box and choose Location.")
HERE_OFFER = _("Reply 0: the place WeChat reported for you just now")
LINK = _("{label}: {url}")


def person_of(openid: str) -> Person:
    # WeChat tells nothing of the person's language: Chinese until they choose (/lang).
    return Person(identity=f"wx:{openid}", channel="wechat")


@dataclass(frozen=True)
class Event:
    """What a delivery asks of the channel besides the dialogue."""

    kind: str  # "unsubscribe", "here" (a location report), "ignore"
    lat: float = 0.0
    lng: float = 0.0


def _plain(text: str) -> str:
    """A typed or recognised message as compared with keywords: full-width folded, no closing
    punctuation, lower case."""
    return unicodedata.normalize("NFKC", text).strip().rstrip("。.!！").strip().lower()


def text_input(text: str) -> Input:
    plain = _plain(text)
    match = _COMMAND.match(plain)
    if match:
        return Command(match.group(1).lower(), (match.group(2) or "").strip())
    if plain in KEYWORDS:
        return Command(KEYWORDS[plain])
    linking = _LINK.match(plain)
    if linking:
        return Command("link", linking.group(1))
    if _NUMBER.match(plain):
        return Choice(int(plain))
    return Text(text)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # the dialogue answers "could not be read"


def input_of(message: BaseMessage) -> Input | Event | str:
    """The dialogue's input; an Event for the channel (answered with nothing); a text (msgid)
    to answer with when the message is of a kind the dialogue cannot read."""
    kind = message.type
    if kind == "text":
        return text_input(message.content or "")
    if kind == "image":
        if not message.media_id:
            return UNSUPPORTED
        return Photo(ref=message.media_id)
    if kind == "location":
        return Location(_float(message.location_x), _float(message.location_y), crs="gcj02",
                        address=message.label or None)
    if kind == "voice":
        heard = (message.recognition or "").strip()
        return text_input(heard) if heard else VOICE_UNHEARD
    if kind != "event":
        return UNSUPPORTED  # video, link, file, ...
    event = message.event
    if event in ("subscribe", "subscribe_scan"):
        return Command("start")
    if event == "unsubscribe":
        return Event("unsubscribe")
    if event == "location":
        try:
            return Event("here", float(message.latitude), float(message.longitude))
        except (TypeError, ValueError):
            return Event("ignore")
    if event == "click":
        name = MENU_KEYS.get((message.key or "").upper())
        return Command(name) if name else Event("ignore")
    return Event("ignore")  # menu links (VIEW), template delivery reports, scans, ...


def render(says: list[Say], *, here: bool) -> str:
    """One text for the dialogue's answer (cut into messages by `split`). `here`: WeChat
    reported a place for the person lately, offered as reply 0 where a place is asked for."""
    parts, n = [], 0
    for say in says:
        t = gettext_for(say.language or "zh-CN")
        lines = [say.text]
        for row in say.buttons:
            for b in row:
                if isinstance(b, Button):
                    n += 1
                    lines.append(t(REPLY_WITH).format(n=n, label=b.label))
                elif isinstance(b, Link):
                    lines.append(t(LINK).format(label=b.label, url=b.url))
        if say.ask_location:
            lines.append(t(LOCATION_HOW))
            if here:
                lines.append(t(HERE_OFFER))
        parts.append("\n".join(lines))
    return "\n\n".join(p for p in parts if p.strip())


def split(text: str, limit: int = MESSAGE_BYTES) -> list[str]:
    """Messages of at most `limit` UTF-8 bytes, cut at a line break where one is near."""
    return replies.split_text(text, limit, _utf8)


def _utf8(ch: str) -> int:
    return len(ch.encode())
