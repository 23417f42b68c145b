"""Writing to a follower later (progress updates): which kind of message WeChat allows.

The customer-service API works within 48 hours of the person's last message, for a handful of
messages (5 per message of theirs since June 2023); outside that, only a template message
reaches them. The message server keeps `WeChatContact` current through `record_inbound` and
`record_unsubscribed`; `send_update` picks the kind and treats WeChat's answers:
45015 (window closed) and 45047 (too many customer-service messages) fall back to the template,
43004 (not following) marks the contact unsubscribed and gives up, anything else is worth
trying again later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from bot.wechat.client import WeChatApi, WeChatApiError
from bot.wechat.models import WeChatContact
from portal.cases.service import utcnow

log = logging.getLogger("gridlink.wechat")

REPLY_WINDOW = timedelta(hours=48)
# Customer-service messages WeChat allows per message of the person.
REPLIES_PER_INBOUND = 5
# Template keyword fields show at most 20 characters.
FIELD_CHARS = 20

OUT_OF_WINDOW = 45015
TOO_MANY_REPLIES = 45047
NOT_FOLLOWING = 43004
# The person refused this account's template messages.
REFUSED_TEMPLATES = 43101


@dataclass(frozen=True)
class Outcome:
    # "sent", "unreachable" (do not try again) or "retry"
    status: str
    # "text" or "template" when sent
    via: str | None = None
    errcode: int | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"


async def record_inbound(openid: str, at: datetime | None = None) -> None:
    """The person wrote (or followed, or tapped the menu): the reply window opens again.
    A message handled late (a retry) never moves the window back."""
    at = at or utcnow()
    newer = Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=at)
    for _attempt in range(2):
        if await WeChatContact.filter(newer, openid=openid).update(
                subscribed=True, last_inbound_at=at, sent_since_inbound=0):
            return
        if await WeChatContact.exists(openid=openid):
            return
        try:
            await WeChatContact.create(openid=openid, subscribed=True, last_inbound_at=at)
            return
        except IntegrityError:
            continue  # created by another process handling a message of theirs just now


async def record_unsubscribed(openid: str) -> None:
    """The person unfollowed: nothing reaches them any more."""
    updated = await WeChatContact.filter(openid=openid).update(subscribed=False)
    if not updated:
        try:
            await WeChatContact.create(openid=openid, subscribed=False)
        except IntegrityError:
            await WeChatContact.filter(openid=openid).update(subscribed=False)


def fit(value: object, limit: int = FIELD_CHARS) -> str:
    """A template field's value in at most `limit` characters, cut with an ellipsis."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def in_window(contact: WeChatContact | None, now: datetime) -> bool:
    return (contact is not None and contact.subscribed and contact.last_inbound_at is not None
            and now - contact.last_inbound_at < REPLY_WINDOW
            and contact.sent_since_inbound < REPLIES_PER_INBOUND)


async def send_update(api: WeChatApi, openid: str, text: str, *, template_fields: dict,
                      url: str | None = None) -> Outcome:
    """Tell a follower something: a customer-service text inside the reply window, else the
    update template (GRIDLINK_WECHAT_UPDATE_TEMPLATE_ID) with `template_fields` (keyword field
    name -> value; values cut to 20 characters; WeChat no longer shows "first" and "remark",
    so what matters belongs in keyword fields) and `url` to open."""
    contact = await WeChatContact.get_or_none(openid=openid)
    if contact is not None and not contact.subscribed:
        return Outcome("unreachable", errcode=NOT_FOLLOWING)
    if in_window(contact, utcnow()):
        try:
            await api.send_text(openid, text)
        except WeChatApiError as exc:
            if exc.errcode == NOT_FOLLOWING:
                await record_unsubscribed(openid)
                return Outcome("unreachable", errcode=exc.errcode)
            if exc.errcode not in (OUT_OF_WINDOW, TOO_MANY_REPLIES):
                log.warning("WeChat customer-service message failed: %s", exc)
                return Outcome("retry", errcode=exc.errcode)
        else:
            await WeChatContact.filter(openid=openid).update(
                sent_since_inbound=F("sent_since_inbound") + 1)
            return Outcome("sent", via="text")
    return await _send_template(api, openid, template_fields, url)


async def _send_template(api: WeChatApi, openid: str, fields: dict, url: str | None) -> Outcome:
    template_id = api.settings.wechat_update_template_id
    if not template_id:
        # Our set-up, not the person: try again later (they may write, opening the window).
        log.warning("A WeChat update is outside the reply window and "
                    "GRIDLINK_WECHAT_UPDATE_TEMPLATE_ID is not set")
        return Outcome("retry")
    data = {name: {"value": fit(value)} for name, value in fields.items()}
    try:
        await api.send_template(openid, template_id, data, url)
    except WeChatApiError as exc:
        if exc.errcode == NOT_FOLLOWING:
            await record_unsubscribed(openid)
            return Outcome("unreachable", errcode=exc.errcode)
        if exc.errcode == REFUSED_TEMPLATES:
            return Outcome("unreachable", errcode=exc.errcode)
        log.warning("WeChat template message failed: %s", exc)
        return Outcome("retry", errcode=exc.errcode)
    return Outcome("sent", via="template")
