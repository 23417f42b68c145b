"""Group chats: the bot answers only commands addressed to it (`/start@gridlink_bot`), and asks
people to write to it privately; nothing said in a group reaches the dialogue."""

from __future__ import annotations

import re

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.telegram.adapter import language_for
from portal.i18n import _, gettext_for

PRIVATELY = _("Reports and questions go to me in a private chat, so that what you send stays "
              "between us. Tap the button to start.")
OPEN_CHAT = _("Write to me privately")


def group_router() -> Router:
    router = Router(name="telegram-groups")
    router.message.filter(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))

    # magic=F.mention: a bare /start is meant for any bot in the group, not for us.
    @router.message(Command(re.compile(r"\w+"), magic=F.mention))
    async def write_privately(message: Message, bot: Bot, dialogue):
        me = await bot.me()
        t = gettext_for(await language_for(dialogue, message.from_user))
        button = InlineKeyboardButton(text=t(OPEN_CHAT),
                                      url=f"https://t.me/{me.username}?start=group")
        await message.reply(t(PRIVATELY),
                            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))

    return router
