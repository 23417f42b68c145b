"""The WeChat channel of one process. A delivery is claimed once in the inbox, then handled by a
background task; WeChat gives up on an answer after 5 seconds (and retries), so the request
waits for that task REPLY_BUDGET_S at most: done by then, its answer is the passive reply (and
what does not fit in one message follows as customer-service messages); still running, WeChat
gets "success" and the answer goes as customer-service messages when it is ready."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise.expressions import F
from wechatpy.messages import BaseMessage

from bot.dialogue.io import Choice, Location, Person
from bot.dialogue.store import Conflict
from bot.replies import SORRY, new_ref
from bot.wechat import adapter, inbox
from bot.wechat.adapter import Event, person_of
from bot.wechat.client import WeChatApi, WeChatApiError
from bot.wechat.models import WeChatContact
from bot.wechat.ports import WeChatPorts
from bot.wechat.sender import NOT_FOLLOWING, record_inbound, record_unsubscribed
from bot.wechat.wire import Codec
from portal.cases.service import utcnow
from portal.i18n import gettext_for
from portal.intake import geo
from portal.intake.throttle import Throttle
from portal.settings import Settings

log = logging.getLogger("gridlink.wechat")

# WeChat waits 5 seconds; the rest is for the network and the inbox write.
REPLY_BUDGET_S = 4.0
# Deliveries handled at once by one process (as for Telegram: more only queue for the database).
HANDLING_SLOTS = 4
PRUNE_EVERY_S = 3600.0
# A place WeChat reported (the person opened the chat) is offered as "reply 0" this long.
HERE_FRESH_S = 30 * 60
# Where the dialogue's state keeps it (forgotten with the rest of the conversation).
HERE_KEY = "wx_here"

@dataclass
class Answer:
    """What the request answers with (None: "success") and what follows it."""

    passive: str | None = None
    later: list[str] = field(default_factory=list)


@dataclass
class _Job:
    row_id: int
    openid: str
    status: str = "done"
    # The request stopped waiting: the answer goes as customer-service messages.
    late: bool = False


class WeChatChannel:
    def __init__(self, settings: Settings, codec: Codec, api: WeChatApi, dialogue):
        self.settings = settings
        self.codec = codec
        self.api = api
        self.dialogue = dialogue
        self.ports = WeChatPorts(api, settings.max_photo_bytes)
        self.budget = REPLY_BUDGET_S
        self.tasks: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(HANDLING_SLOTS)
        self._pruner: asyncio.Task | None = None

    @classmethod
    def build(cls, settings: Settings, throttle: Throttle) -> WeChatChannel:
        from bot.dialogue.engine import Dialogue
        from bot.dialogue.store import store_for
        from bot.wechat.tokens import token_store_for

        codec = Codec(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
        api = WeChatApi(settings, token_store_for(settings))
        return cls(settings, codec, api, Dialogue(settings, throttle, store_for(settings)))

    # A delivery.

    async def receive(self, message: BaseMessage) -> Answer:
        key = inbox.key_of(message)
        row_id = await inbox.claim(key, message.source)
        if row_id is None:
            return Answer(await inbox.earlier_reply(key))
        job = _Job(row_id, message.source)
        task = self._spawn(self._run(job, message))
        try:
            await asyncio.wait({task}, timeout=self.budget)
        finally:
            # Also when WeChat hung up. No await between the test and the flag: the task
            # sees it when it finishes.
            if not task.done():
                job.late = True
        if job.late:
            return Answer()
        pieces = task.result()
        first = pieces[0] if pieces else None
        await inbox.finish(job.row_id, job.status, first)
        return Answer(first, pieces[1:])

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _run(self, job: _Job, message: BaseMessage) -> list[str]:
        """The answer's messages; never raises (a failure is answered with a reference)."""
        async with self.slots:
            try:
                pieces = await self._answer(message)
            except Exception:
                job.status = "failed"
                pieces = await self._apology(message)
        if job.late:
            await self.send_later(job.openid, pieces)
            await inbox.finish(job.row_id, job.status)
        return pieces

    async def _apology(self, message: BaseMessage) -> list[str]:
        ref = new_ref()
        log.exception("wechat %s failed [ref %s]", message.type, ref)
        who = person_of(message.source)
        try:
            language = await self.dialogue.language(who)
        except Exception:
            # What failed may be the dialogue's store itself: the apology still goes out.
            language = "zh-CN"
        return [gettext_for(language)(SORRY).format(ref=ref)]

    async def _answer(self, message: BaseMessage) -> list[str]:
        openid = message.source
        who = person_of(openid)
        inp = adapter.input_of(message)
        if isinstance(inp, Event):
            if inp.kind == "unsubscribe":
                await record_unsubscribed(openid)
            elif inp.kind == "here":
                await self._remember_here(who, inp.lat, inp.lng)
            return []
        # Writing, following, tapping the menu open the 48-hour customer-service window, from
        # when they did (WeChat's clock, never ahead of ours).
        await record_inbound(openid, min(datetime.fromtimestamp(message.time, UTC), utcnow()))
        if isinstance(inp, str):
            return adapter.split(gettext_for(await self.dialogue.language(who))(inp))
        if isinstance(inp, Choice) and inp.number == adapter.HERE:
            here = await self._here(who)
            if here is not None:
                inp = Location(*here, crs="gcj02")
        says = await self.dialogue.handle(who, inp, self.ports)
        here = any(s.ask_location for s in says) and await self._here(who) is not None
        return adapter.split(adapter.render(says, here=here))

    # The place WeChat reports when a person opens the chat (if they allowed it).

    async def _remember_here(self, who: Person, lat: float, lng: float) -> None:
        """Kept for someone who agreed to the privacy notice only, in their dialogue state."""
        if not geo.valid_point(lat, lng):
            return
        store = self.dialogue.store
        for _attempt in range(5):
            state, version = await store.load(who.identity)
            if not state.get("consent"):
                return
            state[HERE_KEY] = [lat, lng, time.time()]
            try:
                await store.save(who.identity, state, version)
            except Conflict:
                continue
            return

    async def _here(self, who: Person) -> tuple[float, float] | None:
        state, _version = await self.dialogue.store.load(who.identity)
        here = state.get(HERE_KEY)
        if not (isinstance(here, list) and len(here) == 3):
            return None
        lat, lng, at = here
        return (lat, lng) if time.time() - at < HERE_FRESH_S else None

    # Talking back outside the passive reply.

    async def send_later(self, openid: str, pieces: list[str]) -> None:
        """Customer-service messages (the person wrote just now: the window is open)."""
        for piece in pieces:
            try:
                await self.api.send_text(openid, piece)
            except WeChatApiError as exc:
                log.warning("WeChat customer-service reply not sent: %s", exc)
                if exc.errcode == NOT_FOLLOWING:
                    await record_unsubscribed(openid)
                return
            # The window allows a few messages per message of theirs (bot/wechat/sender.py).
            await WeChatContact.filter(openid=openid).update(
                sent_since_inbound=F("sent_since_inbound") + 1)

    # Lifecycle.

    async def drain(self) -> None:
        """Wait until every delivery handed over so far is handled (late answers sent)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def _prune_forever(self) -> None:
        while True:
            try:
                await inbox.prune()
            except Exception:
                log.exception("wechat inbox prune failed")
            await asyncio.sleep(PRUNE_EVERY_S)

    def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_forever())

    async def close(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
        await self.drain()
        await self.api.close()
        await self.dialogue.store.close()
