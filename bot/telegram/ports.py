"""What the dialogue asks of Telegram: a photo's bytes, through getFile, bounded while streaming.

Every URL of the Bot API carries the token; aiohttp's errors quote the URL, so none of them is
passed on or logged as it is."""

from __future__ import annotations

import contextlib

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.dialogue.io import PhotoUnavailable

# Bot API: bots download files of at most 20 MB.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


class TelegramPorts:
    def __init__(self, bot: Bot, max_bytes: int):
        self.bot = bot
        self.limit = min(TELEGRAM_DOWNLOAD_LIMIT, max_bytes)

    async def fetch_photo(self, ref: str) -> bytes:
        try:
            file = await self.bot.get_file(ref)
        except TelegramAPIError as exc:
            raise PhotoUnavailable(f"getFile refused ({type(exc).__name__})") from None
        if file.file_path is None or (file.file_size or 0) > self.limit:
            raise PhotoUnavailable("too large or not downloadable")
        url = self.bot.session.api.file_url(self.bot.token, file.file_path)
        got, parts = 0, []
        try:
            chunks = self.bot.session.stream_content(url, timeout=30, chunk_size=64 * 1024)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    got += len(chunk)
                    if got > self.limit:
                        raise PhotoUnavailable("too large")
                    parts.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = getattr(exc, "status", None)
            raise PhotoUnavailable(f"download failed ({type(exc).__name__} {status or ''})") from None
        return b"".join(parts)
