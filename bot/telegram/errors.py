"""What happens when handling an update fails: the person is shown a reference that is also in
the log, and the inbox row is marked failed with it. A person who blocked the bot is recorded on
the row, not treated as a failure."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import Chat, ErrorEvent, User

from bot.dialogue.turn import language_of
from bot.replies import SORRY, new_ref
from bot.telegram.adapter import language_for
from portal.i18n import gettext_for

log = logging.getLogger("gridlink.telegram")


@dataclass(frozen=True)
class Outcome:
    """What `feed_update` returns when an error handler took over."""

    status: str  # done, failed
    note: str | None = None


async def _blocked(event: ErrorEvent) -> Outcome:
    log.info("telegram update %s: the person has blocked the bot", event.update.update_id)
    return Outcome("done", "blocked")


async def _failed(event: ErrorEvent, bot: Bot, dialogue, event_chat: Chat | None = None,
                  event_from_user: User | None = None) -> Outcome:
    ref = new_ref()
    log.error("telegram update %s failed [ref %s]", event.update.update_id, ref,
              exc_info=event.exception)
    try:
        language = await language_for(dialogue, event_from_user)
    except Exception:
        # What failed may be the dialogue's store itself: the apology still goes out.
        language = language_of(event_from_user.language_code if event_from_user else None)
    t = gettext_for(language)
    with suppress(TelegramAPIError):
        if event.update.callback_query is not None:
            await event.update.callback_query.answer()
        if event_chat is not None:
            await bot.send_message(event_chat.id, t(SORRY).format(ref=ref))
    return Outcome("failed", ref)


def register(dp: Dispatcher) -> None:
    dp.errors.register(_blocked, ExceptionTypeFilter(TelegramForbiddenError))
    dp.errors.register(_failed)
