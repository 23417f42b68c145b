"""The Telegram channel of one process: every update, from the webhook or from polling, goes
through `ingest`: claimed once in the inbox, then handled by a background task that marks it
done or failed. The webhook answers as soon as the update is claimed."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.telegram import inbox
from bot.telegram.errors import Outcome, new_ref
from bot.telegram.middlewares import FloodGate
from bot.telegram.ports import TelegramPorts
from bot.telegram.setup import build_bot, build_dispatcher, flood_gate
from portal.intake.throttle import Throttle
from portal.settings import Settings

log = logging.getLogger("gridlink.telegram")

SWEEP_EVERY_S = 60.0
# Updates handled at once by one process. More would only queue for the database inside the
# handlers, and the webhook's own claim would queue behind them (Telegram waits for that answer).
HANDLING_SLOTS = 4
# Update ids are signed 64-bit in the inbox; Telegram's are far smaller.
MAX_UPDATE_ID = 2**63 - 1


class InvalidUpdate(ValueError):
    pass


class TelegramChannel:
    def __init__(self, settings: Settings, bot: Bot, dp: Dispatcher, gate: FloodGate, dialogue):
        self.settings = settings
        self.bot = bot
        self.dp = dp
        self.gate = gate
        self.dialogue = dialogue
        self.secret = settings.telegram_webhook_secret
        self.tasks: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(HANDLING_SLOTS)
        self.claims = inbox.Claims(bot.id)
        self._sweeper: asyncio.Task | None = None

    @classmethod
    def build(cls, settings: Settings, throttle: Throttle) -> TelegramChannel:
        from bot.dialogue.engine import Dialogue
        from bot.dialogue.store import store_for

        bot = build_bot(settings)
        gate = flood_gate(settings)
        dialogue = Dialogue(settings, throttle, store_for(settings))
        ports = TelegramPorts(bot, settings.max_photo_bytes)
        return cls(settings, bot, build_dispatcher(settings, dialogue, ports, gate), gate,
                   dialogue)

    def parse(self, payload: dict) -> Update:
        try:
            update = Update.model_validate(payload, context={"bot": self.bot})
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise InvalidUpdate("not a Telegram update") from exc
        if not 0 <= update.update_id <= MAX_UPDATE_ID:
            raise InvalidUpdate("update_id out of range")
        return update

    async def ingest(self, payload: dict) -> bool:
        """False for an update received before (nothing is done). Raises InvalidUpdate."""
        update = self.parse(payload)
        row_id = await self.claims.claim(update.update_id, payload)
        if row_id is None:
            return False
        self._spawn(row_id, update)
        return True

    def _spawn(self, row_id: int, update: Update) -> None:
        task = asyncio.create_task(self._process(row_id, update))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _process(self, row_id: int, update: Update) -> None:
        async with self.slots:
            await self._handle(row_id, update)

    async def _handle(self, row_id: int, update: Update) -> None:
        try:
            result = await self.dp.feed_update(self.bot, update)
            if isinstance(result, Outcome) and result.status == "failed":
                await inbox.mark_failed(row_id, result.note or "")
            else:
                await inbox.mark_done(row_id, result.note if isinstance(result, Outcome) else None)
        except Exception:
            # The error handlers failed too, or the database did: never lost silently.
            ref = new_ref()
            log.exception("telegram update %s failed [ref %s]", update.update_id, ref)
            try:
                await inbox.mark_failed(row_id, ref)
            except Exception:
                log.exception("telegram update %s: could not record the failure [ref %s]",
                              update.update_id, ref)

    async def drain(self) -> None:
        """Wait until every update handed over so far is handled."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def sweep(self) -> int:
        """Handle again the updates of processes that died; forget old finished ones."""
        again = await inbox.reclaim_stale(self.bot.id)
        for row_id, payload in again:
            try:
                self._spawn(row_id, self.parse(payload))
            except InvalidUpdate:
                await inbox.mark_failed(row_id, "invalid")
        await inbox.prune(self.bot.id)
        return len(again)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("telegram inbox sweep failed")
            await asyncio.sleep(SWEEP_EVERY_S)

    def start(self, *, webhook: bool = True) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())
        if webhook and not self.secret:
            log.warning("Telegram webhook is off: GRIDLINK_TELEGRAM_WEBHOOK_SECRET is not set "
                        "(use `gridlink telegram poll`).")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.drain()
        await self.bot.session.close()
        await self.dialogue.store.close()
