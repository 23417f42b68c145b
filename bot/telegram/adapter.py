"""Private chats: Telegram messages and button presses become dialogue inputs, and the
dialogue's answers become Telegram messages (inline keyboards, the location button, URL buttons),
within the Bot API's limits."""

from __future__ import annotations

import re
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction, ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from bot import replies
from bot.dialogue.io import Button, Command, Input, Location, Person, Photo, Ports, Say, Text
from bot.dialogue.io import Press as PressInput
from bot.dialogue.turn import language_of
from portal.i18n import _, gettext_for

MESSAGE_LIMIT = 4096  # UTF-16 code units, per the Bot API
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)

UNSUPPORTED = _("I can read text, photos and locations. Send /help to see what I can do.")
LOCATION_BUTTON = _("📍 Send my location")
LOCATION_PROMPT = _("Or send your location with the button below.")


class PressData(CallbackData, prefix="d"):
    """Callback data of a dialogue button: `d:<action>:<arg>`, 64 bytes at most (pack() checks)."""

    action: str
    arg: str = ""


def person_of(user: User) -> Person:
    return Person(identity=f"tg:{user.id}", channel="telegram", language=user.language_code,
                  name=user.first_name)


async def language_for(dialogue, user: User | None) -> str:
    """The language of what the adapter says on its own: the one the person chose in the
    dialogue (/lang), else their Telegram's."""
    if user is None:
        return language_of(None)
    return await dialogue.language(person_of(user))


def _photo_ref(message: Message, max_bytes: int) -> tuple[str, str] | None:
    """(file_id, file_unique_id) of the largest size of the picture we may download."""
    if message.photo:
        sizes = message.photo  # smallest first
        fitting = [p for p in sizes if (p.file_size or 0) <= max_bytes]
        best = fitting[-1] if fitting else sizes[0]
        return best.file_id, best.file_unique_id
    doc = message.document
    if doc is not None and (doc.mime_type or "").startswith("image/"):
        return doc.file_id, doc.file_unique_id
    return None


def input_of(message: Message, max_bytes: int) -> Input | None:
    """What the dialogue gets from a message; None for what it cannot read (stickers, voice...)."""
    if message.text is not None:
        match = _COMMAND.match(message.text.strip())
        if match:
            return Command(match.group(1).lower(), (match.group(2) or "").strip())
        return Text(message.text)
    picture = _photo_ref(message, max_bytes)
    if picture is not None:
        return Photo(ref=picture[0], caption=message.caption, group=message.media_group_id,
                     unique=picture[1])
    if message.venue is not None:
        v = message.venue
        return Location(v.location.latitude, v.location.longitude, title=v.title,
                        address=v.address)
    if message.location is not None:
        return Location(message.location.latitude, message.location.longitude)
    return None


def _utf16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at a line break where one is near."""
    return replies.split_text(text, limit, _utf16)


def inline_keyboard(rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=b.label, callback_data=PressData(action=b.action,
                                                                    arg=b.arg).pack())
         if isinstance(b, Button) else InlineKeyboardButton(text=b.label, url=b.url)
         for b in row]
        for row in rows])


def _location_keyboard(t) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text=t(LOCATION_BUTTON),
                                                         request_location=True)]],
                               resize_keyboard=True, one_time_keyboard=True)


async def render(bot: Bot, chat_id: int, says: list[Say], hint: str | None,
                 pressed: Message | None = None) -> None:
    """`hint`: Telegram's language_code, for a Say that does not name its language."""
    for say in says:
        t = gettext_for(say.language or language_of(hint))
        if say.buttons:
            markup = inline_keyboard(say.buttons)
        elif say.ask_location:
            markup = _location_keyboard(t)
        else:
            # Takes away a location keyboard the person answered by typing instead.
            markup = ReplyKeyboardRemove()
        if (say.replace and pressed is not None and not say.ask_location
                and len(split_text(say.text)) == 1 and await _edit(pressed, say.text, markup)):
            continue
        pieces = split_text(say.text)
        for i, piece in enumerate(pieces):
            await bot.send_message(chat_id, piece,
                                   reply_markup=markup if i == len(pieces) - 1 else None)
        if say.buttons and say.ask_location:
            # A message carries one keyboard: the location button comes on its own line.
            await bot.send_message(chat_id, t(LOCATION_PROMPT),
                                   reply_markup=_location_keyboard(t))


async def _edit(message: Message, text: str, markup) -> bool:
    """Replace a message in place (paging); False when Telegram would not."""
    if not isinstance(markup, InlineKeyboardMarkup | None):
        markup = None
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        return "message is not modified" in exc.message
    return True


def private_router() -> Router:
    router = Router(name="telegram-private")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

    @router.message()
    async def on_message(message: Message, bot: Bot, dialogue, ports: Ports,
                         max_photo_bytes: int):
        if message.from_user is None:
            return
        inp = input_of(message, max_photo_bytes)
        if inp is None:
            t = gettext_for(await language_for(dialogue, message.from_user))
            await message.answer(t(UNSUPPORTED))
            return
        if isinstance(inp, Photo):
            with suppress(TelegramAPIError):
                await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        says = await dialogue.handle(person_of(message.from_user), inp, ports)
        await render(bot, message.chat.id, says, message.from_user.language_code)

    @router.callback_query()
    async def on_press(query: CallbackQuery, bot: Bot, dialogue, ports: Ports):
        try:
            try:
                data = PressData.unpack(query.data or "")
            except (ValueError, TypeError):
                return  # not a button of ours (or of an older version): nothing to do
            pressed = query.message if isinstance(query.message, Message) else None
            says = await dialogue.handle(person_of(query.from_user),
                                         PressInput(data.action, data.arg), ports)
            if pressed is not None and not any(s.replace for s in says):
                # The answer comes as a new message; the old buttons go, so they are not pressed twice.
                with suppress(TelegramAPIError):
                    await pressed.edit_reply_markup(reply_markup=None)
            chat_id = pressed.chat.id if pressed is not None else query.from_user.id
            await render(bot, chat_id, says, query.from_user.language_code, pressed)
        finally:
            # Always answered, or the button keeps spinning on the person's phone.
            with suppress(TelegramAPIError):
                await query.answer()

    return router
