"""The inbox of WeChat deliveries: each message (its MsgId) or event (sender, time, event) is
claimed once, whichever process WeChat's retries reach, and keeps the passive reply it got so
that a retry is answered the same."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from wechatpy.messages import BaseMessage

from bot.wechat.models import WeChatMessage
from portal.cases.service import utcnow

# WeChat retries within about 15 seconds; a day covers any clock skew, and then the rows (which
# name the sender and hold the reply) go.
KEEP = timedelta(days=1)


def key_of(message: BaseMessage) -> str:
    """MsgId; for events (which have none) the sender, the second, and what happened (two menu
    taps within one second are two events)."""
    if message.type != "event" and message.id:
        return f"msg:{message.id}"
    what = hashlib.sha1(f"{message.event}\0{message._data.get('EventKey') or ''}".encode())
    return f"ev:{message.source}:{message.time}:{what.hexdigest()[:16]}"


async def claim(key: str, openid: str) -> int | None:
    """The new row's id, or None when this delivery was received before."""
    try:
        row = await WeChatMessage.create(key=key, openid=openid, status="pending",
                                         received_at=utcnow())
    except IntegrityError:
        return None
    return row.id


async def earlier_reply(key: str) -> str | None:
    """What a retry is answered with: the passive reply the first delivery got, if it got one
    (an apology included; still in progress or answered later: nothing, i.e. "success")."""
    row = await WeChatMessage.get_or_none(key=key)
    if row is None or row.status == "pending":
        return None
    return row.reply


async def finish(row_id: int, status: str, reply: str | None = None) -> None:
    await WeChatMessage.filter(id=row_id, status="pending").update(
        status=status, reply=reply, finished_at=utcnow())


async def prune() -> int:
    return await WeChatMessage.filter(received_at__lt=utcnow() - KEEP).delete()
