"""Flood control: a person who sends too much too fast gets one polite warning, and what they
send past the limits is dropped (not queued) until they slow down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.dialogue.turn import language_of
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
        text = gettext_for(language_of(user.language_code))(WARNING)
        with suppress(TelegramAPIError):
            if isinstance(event, CallbackQuery):
                # Every callback query is answered, or the button keeps spinning.
                await event.answer(text if verdict == "warn" else None)
            elif verdict == "warn" and isinstance(event, Message):
                await event.answer(text)
        return None
