"""Progress updates to WeChat followers: the sender the delivery worker (feedback) uses.

Inside the 48-hour window a customer-service text (the rating offered as numbered replies, as
everywhere in this account: the numbers are remembered in the person's dialogue so that
"回复 3" rates), outside it the update template (bot/wechat/sender.py decides and treats
WeChat's answers).
"""

from __future__ import annotations

import logging

from bot.dialogue.cases import rating_buttons
from bot.dialogue.engine import remember_offer
from bot.dialogue.io import Link
from bot.dialogue.store import Conflict, DialogueStore, store_for
from bot.dialogue.turn import OPEN_CASE, Say
from bot.wechat import adapter
from bot.wechat.client import WeChatApi
from bot.wechat.sender import send_update
from bot.wechat.tokens import token_store_for
from feedback.channels import SENT, Notice, Outcome, Pace
from portal.i18n import gettext_for
from portal.settings import Settings

log = logging.getLogger("gridlink.wechat")



NOTICE_FIELDS = ("code", "status", "when", "title")


def parse_template_fields(spec: str) -> list[tuple[str, str]]:
    """`field=what;...` (settings.wechat_update_template_fields) as (field, what) pairs."""
    pairs = []
    for part in spec.split(";"):
        name, _sep, what = part.partition("=")
        if name.strip() and what.strip() in NOTICE_FIELDS:
            pairs.append((name.strip(), what.strip()))
    return pairs


def template_fields(pairs: list[tuple[str, str]], notice: Notice) -> dict[str, str]:
    """The template's fields filled from the notice."""
    values = {"code": notice.case_code, "status": notice.status, "when": notice.when,
              "title": notice.title}
    return {name: values[what] for name, what in pairs}


class WeChatSender:
    channel = "wechat"

    def __init__(self, settings: Settings, api: WeChatApi, store: DialogueStore):
        self.settings = settings
        self.api = api
        self.store = store
        self.pace = Pace(per_second=settings.wechat_rate)
        self.fields = parse_template_fields(settings.wechat_update_template_fields)

    @classmethod
    def build(cls, settings: Settings) -> WeChatSender:
        return cls(settings, WeChatApi(settings, token_store_for(settings)), store_for(settings))

    async def send(self, address: str, notice: Notice) -> Outcome:
        openid = address.removeprefix("wx:")
        say, text = self._render(notice)
        outcome = await send_update(self.api, openid, text,
                                    template_fields=template_fields(self.fields, notice),
                                    url=notice.rate_url or notice.url)
        if outcome.status == "retry":
            return Outcome("retry", detail=f"errcode {outcome.errcode}")
        if outcome.status == "unreachable":
            return Outcome("unreachable", detail=f"errcode {outcome.errcode}")
        if notice.ask_rating and outcome.via == "text":
            await self._offer(address, say)
        return SENT

    @staticmethod
    def _render(notice: Notice) -> tuple[Say, str]:
        """The message in one WeChat text: a long body is cut, so that the rating's numbers
        and the link always arrive (a reply "5" must answer choices the person saw)."""
        t = gettext_for(notice.language)
        rows = [*(rating_buttons(notice.case_code, notice.language) if notice.ask_rating
                  else []), [Link(notice.link_text or t(OPEN_CASE), notice.url)]]
        body = notice.body
        while True:
            say = Say(body, rows, language=notice.language)
            text = adapter.render([say], here=False)
            excess = len(text.encode()) - adapter.MESSAGE_BYTES
            if excess <= 0 or len(body) <= 40:
                return say, text
            # A CJK character is three bytes in UTF-8.
            body = body[:max(len(body) - excess // 3 - 2, 40)].rstrip() + "…"

    async def _offer(self, identity: str, say: Say) -> None:
        """The numbers of the rating become the person's next replies."""
        for _attempt in range(5):
            state, version = await self.store.load(identity)
            remember_offer(state, [say])
            try:
                await self.store.save(identity, state, version)
                return
            except Conflict:
                continue
        log.warning("could not offer the rating numbers to a WeChat follower")

    async def close(self) -> None:
        await self.api.close()
        await self.store.close()
