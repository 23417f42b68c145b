"""Progress updates to Telegram chats: the sender the delivery worker (feedback) uses.

Its own Bot (without the dialogue's retry middleware: the worker reschedules a refused message
itself and keeps sending to the others). Telegram's answers: 429 gives the wait it asks for;
403 (blocked, deactivated) and "chat not found" mean the person cannot be reached; a
malformed request fails for good; anything else is tried again later.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)

from bot.dialogue.cases import rating_buttons
from bot.dialogue.io import Link
from bot.dialogue.turn import OPEN_CASE
from bot.telegram.adapter import inline_keyboard, split_text
from feedback.channels import SENT, Notice, Outcome, Pace
from portal.i18n import gettext_for
from portal.settings import Settings

_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated")


class TelegramSender:
    channel = "telegram"

    def __init__(self, bot: Bot, rate: int):
        self.bot = bot
        # Bot API: about 30 messages a second in all, one a second to one chat.
        self.pace = Pace(per_second=rate, per_address_s=1.0)

    @classmethod
    def build(cls, settings: Settings) -> TelegramSender:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base),
                                 timeout=20)
        return cls(Bot(settings.telegram_bot_token, session=session), settings.telegram_rate)

    async def send(self, address: str, notice: Notice) -> Outcome:
        try:
            chat_id = int(address.removeprefix("tg:"))
        except ValueError:
            return Outcome("failed", detail="not a chat id")
        t = gettext_for(notice.language)
        rows = rating_buttons(notice.case_code, notice.language) if notice.ask_rating else []
        rows = [*rows, [Link(notice.link_text or t(OPEN_CASE), notice.url)]]
        try:
            try:
                await self._send(chat_id, notice.body, rows)
            except TelegramBadRequest as exc:
                if "button" not in exc.message.lower():
                    raise
                # A tracking page address Telegram will not link (a test or local set-up):
                # the message still goes, the address stays in its text.
                text = notice.body if notice.url in notice.body else \
                    f"{notice.body}\n{rows[-1][0].label}: {notice.url}"
                await self._send(chat_id, text, rows[:-1])
        except TelegramRetryAfter as exc:
            return Outcome("retry", retry_after=float(exc.retry_after), detail="429")
        except TelegramForbiddenError as exc:
            return Outcome("unreachable", detail=exc.message[:200])
        except (TelegramBadRequest, TelegramNotFound) as exc:
            if any(gone in exc.message.lower() for gone in _GONE):
                return Outcome("unreachable", detail=exc.message[:200])
            return Outcome("failed", detail=exc.message[:200])
        return SENT

    async def _send(self, chat_id: int, text: str, rows) -> None:
        pieces = split_text(text)
        for i, piece in enumerate(pieces):
            markup = inline_keyboard(rows) if rows and i == len(pieces) - 1 else None
            await self.bot.send_message(chat_id, piece, reply_markup=markup,
                                        disable_web_page_preview=True)

    async def close(self) -> None:
        await self.bot.session.close()
