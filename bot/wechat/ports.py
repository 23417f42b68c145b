"""What the dialogue asks of WeChat: a photo's bytes, downloaded by its MediaId (temporary
media live three days on WeChat's side)."""

from __future__ import annotations

from bot.dialogue.io import PhotoUnavailable
from bot.wechat.client import WeChatApi, WeChatApiError


class WeChatPorts:
    def __init__(self, api: WeChatApi, max_bytes: int):
        self.api = api
        self.max_bytes = max_bytes

    async def fetch_photo(self, ref: str) -> bytes:
        try:
            return await self.api.download_media(ref, self.max_bytes)
        except WeChatApiError as exc:
            raise PhotoUnavailable(f"media download refused ({exc.errcode})") from None
