"""The Telegram channel in the web app: built in create_app when a token is set, run by the
lifespan (inbox sweep; on shutdown, pending updates finished and the HTTP session closed)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from bot import lifecycle
from portal.intake.throttle import Throttle
from portal.settings import Settings
from portal.web.routing import add_routes

log = logging.getLogger("gridlink.telegram")


def attach(app: FastAPI, settings: Settings, throttle: Throttle) -> None:
    if not settings.telegram_bot_token:
        app.state.telegram = None
        return
    # aiogram is loaded only when the bot is on.
    from bot.telegram.channel import TelegramChannel
    from bot.telegram.routes import router

    app.state.telegram = TelegramChannel.build(settings, throttle)
    add_routes(app, router)


def running(app: FastAPI):
    return lifecycle.running(app.state.telegram, log,
                             "Telegram bot is off: GRIDLINK_TELEGRAM_BOT_TOKEN is not set.")
