"""A chat channel's life in the web app, the same for Telegram and WeChat: started with the
app, and on shutdown closed (work in progress finished, sessions and the dialogue store
closed); a channel that is off is only logged."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Protocol


class Channel(Protocol):
    def start(self) -> None: ...

    async def close(self) -> None: ...


@asynccontextmanager
async def running(channel: Channel | None, log: logging.Logger, off: str):
    if channel is None:
        log.info(off)
        yield
        return
    channel.start()
    try:
        yield
    finally:
        await channel.close()
