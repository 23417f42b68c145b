"""One Bot and one Dispatcher per app (or per `gridlink telegram poll`), built from settings.
Routers are built afresh for each Dispatcher: aiogram attaches a router to one parent only."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.dialogue.io import Ports
from bot.telegram import errors
from bot.telegram.adapter import private_router
from bot.telegram.groups import group_router
from bot.telegram.middlewares import FloodControl, FloodGate, RetryAfterOnce
from portal.intake.throttle import Throttle, storage_for
from portal.settings import Settings

# The updates the bot handles (setWebhook and getUpdates ask Telegram for these only).
ALLOWED_UPDATES = ["message", "callback_query"]


def build_bot(settings: Settings) -> Bot:
    api = TelegramAPIServer.from_base(settings.telegram_api_base)
    session = AiohttpSession(api=api, timeout=30)
    session.middleware(RetryAfterOnce())
    return Bot(settings.telegram_bot_token, session=session)


def flood_gate(settings: Settings) -> FloodGate:
    storage = storage_for(settings.redis_url)
    return FloodGate(Throttle(storage, settings.telegram_flood, namespace="gridlink:tg-flood"),
                     Throttle(storage, settings.telegram_flood_warn,
                              namespace="gridlink:tg-flood-warn"),
                     Throttle(storage, "1/minute", namespace="gridlink:tg-album"))


def build_dispatcher(settings: Settings, dialogue, ports: Ports, gate: FloodGate) -> Dispatcher:
    # No aiogram FSM: the dialogue keeps its own state, shared by every process.
    dp = Dispatcher(disable_fsm=True, dialogue=dialogue, ports=ports,
                    max_photo_bytes=min(settings.max_photo_bytes, 20 * 1024 * 1024))
    flood = FloodControl(gate)
    dp.message.outer_middleware(flood)
    dp.callback_query.outer_middleware(flood)
    dp.include_router(group_router())
    dp.include_router(private_router())
    errors.register(dp)
    return dp
