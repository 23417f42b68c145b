"""Flood control both ways: a person who sends too much too fast gets one polite warning, and
what they send past the limits is dropped (not queued) until they slow down; a reply Telegram
refuses with a short "retry after" is sent again once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.telegram.adapter import language_for
from portal.i18n import _, gettext_for
from portal.intake.throttle import Throttle

WARNING = _("You are sending messages very fast. Please wait a moment; what you sent just now "
            "was not read.")


class FloodGate:
    """Channel-neutral: `flood` counts a person's events, `warn` how often they are told."""

    def __init__(self, flood: Throttle, warn: Throttle, album: Throttle):
        self.flood = flood
        self.warn = warn
        # An album arrives as one message per photo within a second: it counts once.
        self.album = album

    async def admit(self, who: str, album: str | None = None) -> str:
        """'pass', 'warn' (drop and tell them) or 'drop'."""
        if album is not None and await self.album.hit(album) is not None:
            return "pass"
        if await self.flood.hit(who) is None:
            return "pass"
        return "warn" if await self.warn.hit(who) is None else "drop"


class FloodControl(BaseMiddleware):
    """Outer middleware on messages and callback queries (it runs before any filter)."""

    def __init__(self, gate: FloodGate):
        self.gate = gate

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        album = event.media_group_id if isinstance(event, Message) else None
        verdict = await self.gate.admit(str(user.id), album)
        if verdict == "pass":
            return await handler(event, data)
        # Past the warning, a flood costs no dialogue state load per message.
        text = (gettext_for(await language_for(data["dialogue"], user))(WARNING)
                if verdict == "warn" else None)
        with suppress(TelegramAPIError):
            if isinstance(event, CallbackQuery):
                # Every callback query is answered, or the button keeps spinning.
                await event.answer(text)
            elif text is not None and isinstance(event, Message):
                await event.answer(text)
        return None


class RetryAfterOnce(BaseRequestMiddleware):
    """A Bot API call refused with 429 is made again after the wait Telegram asks for, once and
    only when it is short; a longer wait fails the update (with a reference, see errors.py)
    rather than hold a handling slot."""

    MAX_WAIT_S = 2

    async def __call__(self, make_request, bot, method):
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            if exc.retry_after > self.MAX_WAIT_S:
                raise
            await asyncio.sleep(exc.retry_after)
            return await make_request(bot, method)
