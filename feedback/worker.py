"""The delivery worker: fans the outbox out into deliveries and sends them through the
registered channel senders, keeping each platform's pace, retrying with backoff, and giving
up on addresses that refuse us.

A message is taken (status `sending`, a lease) just before it is sent and recorded right
after. A worker that dies leaves what it took to be taken again when the lease ends; what it
had not taken is someone else's at once. The one message that can reach a person twice is one
whose request was on its way when the worker died (no platform can say whether it arrived).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from feedback import links
from feedback.channels import Outcome, Sender
from feedback.compose import compose
from feedback.fanout import due_at, fan_out
from feedback.live import LiveBus
from feedback.models import Delivery, Survey, Unreachable
from feedback.notices import fan_out_notices, notice_message
from feedback.satisfaction import rated_since
from portal.cases import public
from portal.cases.models import Case, CaseEvent, Department, Person, Status, Subscription
from portal.cases.service import utcnow
from portal.db import run_sql
from portal.intake.throttle import Throttle, storage_for
from portal.settings import Settings

log = logging.getLogger("gridlink.feedback")

IDLE_S = 0.5
# Messages sent at once per channel by one process (the pace decides how many per second).
SLOTS = 16
SEND_TIMEOUT_S = 30.0
# How late a send may be and still keep the beat of the turns (see Worker._keep_pace).
PACE_SLACK_S = 0.005
# How long the departments read for the messages are kept (a rename shows within this).
DEPARTMENTS_TTL_S = 60.0


def backoff(attempts: int) -> float:
    """Seconds before try number `attempts + 1`: 5 s doubling to an hour, give or take 20%."""
    return min(5.0 * 2 ** max(attempts - 1, 0), 3600.0) * random.uniform(0.8, 1.2)


class Worker:
    def __init__(self, settings: Settings, secret: bytes, live: LiveBus | None = None):
        self.settings = settings
        self.secret = secret
        self.live = live
        self.senders: dict[str, Sender] = {}
        self._storage = storage_for(settings.redis_url)
        self._paces: dict[str, tuple[Throttle, Throttle | None]] = {}
        # Per channel, the loop time of this process's next send (even spacing), and the
        # gate the sending slots pass one at a time.
        self._turns: dict[str, float] = {}
        self._gates: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._work = asyncio.Event()
        self._departments: dict[int, Department] = {}
        self._departments_until = 0.0

    def register(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender
        pace = sender.pace
        whole = Throttle(self._storage, f"{max(int(pace.per_second), 1)}/second",
                         f"gridlink:send:{sender.channel}", whole_seconds=False)
        per_address = (Throttle(self._storage, f"1/{pace.per_address_s:g} second",
                                f"gridlink:send-to:{sender.channel}", whole_seconds=False)
                       if pace.per_address_s else None)
        self._paces[sender.channel] = (whole, per_address)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._fan_out_forever(), name="fan-out"))
        for channel in self.senders:
            for n in range(SLOTS):
                self._tasks.append(asyncio.create_task(self._send_forever(channel),
                                                       name=f"send-{channel}-{n}"))
        log.info("progress updates: delivering through %s",
                 ", ".join(sorted(self.senders)) or "no channel (tracking pages only)")

    async def close(self) -> None:
        """Stop taking work; messages being sent are finished and recorded."""
        self._stopping.set()
        self._work.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sender in self.senders.values():
            await sender.close()

    async def _nap(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _fan_out_forever(self) -> None:
        while not self._stopping.is_set():
            busy = False
            try:
                cases = await fan_out(self.settings, set(self.senders))
                busy = bool(cases)
                if cases and self.live is not None:
                    await self.live.publish(cases)
            except Exception:
                log.exception("fanning out progress updates failed")
            # Apart: a case that cannot be fanned out must not hold the notices back.
            try:
                busy = bool(await fan_out_notices(self.settings, set(self.senders))) or busy
            except Exception:
                log.exception("fanning out notices failed")
            if busy:
                self._work.set()
                continue
            await self._nap(IDLE_S)

    async def _send_forever(self, channel: str) -> None:
        while not self._stopping.is_set():
            try:
                if await self.send_one(channel):
                    continue
            except Exception:
                log.exception("sending a %s progress update failed", channel)
            self._work.clear()
            try:
                await asyncio.wait_for(self._work.wait(), IDLE_S)
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ one message

    async def send_one(self, channel: str, now: datetime | None = None) -> bool:
        """Take one due message of the channel and send it; False when none is due."""
        delivery = await claim(channel, self.settings.delivery_lease_seconds, now)
        if delivery is None:
            return False
        _whole, per_address = self._paces[channel]
        if per_address is not None:
            wait = await per_address.hit(delivery.address)
            if wait:
                await release(delivery, wait)
                return True
        outcome = await self._send(delivery)
        await record(delivery, outcome, self.settings)
        return True

    async def _keep_pace(self, channel: str) -> None:
        """Wait for the channel's next turn, just before the request goes (not before the
        message is composed, whose database reads vary by tens of milliseconds).

        Turns are spaced evenly, 1/rate apart, in this process, and a turn missed (the loop
        was busy) is not made up by sending at once: that keeps any one second at or below
        the rate plus one, arrival jitter aside. The moving window alone let a second's worth
        go at once, each second's burst met the tail of the last one at Telegram, which counts
        arrivals, and one message in seven was answered 429; it also repeats a burst a second
        later, for ever (bench/fanout.py). The shared window keeps several processes within
        the rate together."""
        whole, _per_address = self._paces[channel]
        interval = 1.0 / max(self.senders[channel].pace.per_second, 1.0)
        loop = asyncio.get_running_loop()
        async with self._gates.setdefault(channel, asyncio.Lock()):
            turn = self._turns.get(channel, 0.0)
            if turn > loop.time():
                await asyncio.sleep(turn - loop.time())
            while (wait := await whole.hit("all")) is not None:  # noqa: ASYNC110 (a time window, not an event)
                await asyncio.sleep(wait)
            # Late by a little (the sleep's own delay): the next turn keeps the beat; late
            # by more: it counts from now.
            self._turns[channel] = max(turn, loop.time() - PACE_SLACK_S) + interval

    async def _known_departments(self) -> dict[int, Department]:
        """Every department, read again at most once a minute, not for every message."""
        now = asyncio.get_running_loop().time()
        if now >= self._departments_until:
            self._departments = await public.departments()
            self._departments_until = now + DEPARTMENTS_TTL_S
        return self._departments

    async def _send(self, delivery: Delivery) -> Outcome:
        if await Unreachable.exists(address=delivery.address):
            return Outcome("unreachable", detail="unreachable before")
        notice = await notice_for(delivery, self.settings, self.secret, self._known_departments)
        if notice is None:
            return Outcome("dropped", detail="nothing to tell")
        await self._keep_pace(delivery.channel)
        try:
            return await asyncio.wait_for(
                self.senders[delivery.channel].send(delivery.address, notice), SEND_TIMEOUT_S)
        except TimeoutError:
            return Outcome("retry", detail="timed out")
        except Exception as exc:
            log.exception("%s sender failed", delivery.channel)
            return Outcome("retry", detail=type(exc).__name__)


async def notice_for(delivery: Delivery, settings: Settings, secret: bytes,
                     departments: Callable[[], Awaitable[dict[int, Department]]]):
    if delivery.kind == "notice":
        return await notice_message(delivery, settings.public_base_url)
    case = await Case.get_or_none(id=delivery.case_id)
    if case is None:
        return None
    # A case merged while the message waited took its subscribers along.
    living = await public.living_case(case)
    sub = await Subscription.filter(case_id=living.id, person_id=delivery.person_id).first()
    if sub is None:
        return None  # they stopped following it, or asked us to forget them, meanwhile
    base = settings.public_base_url
    signed = {"rate_url": links.rate_url(base, secret, case.code, delivery.person_id),
              "unsubscribe_url": links.unsubscribe_url(base, secret, case.code,
                                                       delivery.person_id)}
    if delivery.kind == "reminder":
        rated = await rated_since(case.id, delivery.person_id, delivery.first_event_id)
        if rated or case.status != Status.RESOLVED:
            return None
        return compose(case, [], delivery.language, base_url=base, ask_rating=True,
                       reminder=True, **signed)
    events = list(await CaseEvent.filter(id__in=delivery.event_ids, public=True).order_by("id"))
    # Resolved: not merged, so `sub` is this very case's.
    ask = (case.status == Status.RESOLVED and sub.reason == "reporter"
           and any(e.kind == "status" and e.status_to == "resolved" for e in events))
    return compose(case, events, delivery.language, base_url=base, ask_rating=ask,
                   departments=await departments(), **signed)


# ---------------------------------------------------------------------- the delivery table


async def claim(channel: str, lease_s: float, now: datetime | None = None) -> Delivery | None:
    """Take one of the channel's messages whose sender's lease ended (it died), else its most
    overdue pending one.

    Two lookups, each the first entry of the index (channel, status, due_at). One query with
    `status = 'pending' OR ...` sorted every due message for each message taken: about 4 ms
    a message with 10,000 waiting on either engine (1.3 ms now), and up to 50 ms on SQLite,
    where statements run on the loop's thread and held the sends back. Ties in due_at (a
    fan-out writes them all at one time) go in the index's order, not sorted by id, for the
    same reason."""
    now = now or utcnow()
    conn = connections.get("default")
    lock = " FOR UPDATE SKIP LOCKED" if conn.capabilities.dialect == "postgres" else ""
    rows = await run_sql(
        conn,
        "UPDATE delivery SET status = 'sending', lease_until = ?, attempts = attempts + 1 "
        "WHERE id = COALESCE("
        "(SELECT id FROM delivery WHERE channel = ? AND status = 'sending' AND due_at <= ? "
        f"AND lease_until < ? ORDER BY due_at LIMIT 1{lock}), "
        "(SELECT id FROM delivery WHERE channel = ? AND status = 'pending' AND due_at <= ? "
        f"ORDER BY due_at LIMIT 1{lock})) RETURNING *",
        [now + timedelta(seconds=lease_s), channel, now, now, channel, now])
    # The row as Tortoise would read it: no second lookup.
    return Delivery._init_from_db(**dict(rows[0])) if rows else None


def _ours(delivery: Delivery):
    return Delivery.filter(id=delivery.id, status="sending", lease_until=delivery.lease_until)


async def release(delivery: Delivery, after_s: float) -> None:
    """Put a taken message back, untried, for later (the person's own pace)."""
    await _ours(delivery).update(status="pending", lease_until=None,
                                 attempts=max(delivery.attempts - 1, 0),
                                 due_at=utcnow() + timedelta(seconds=after_s))


async def record(delivery: Delivery, outcome: Outcome, settings: Settings) -> None:
    now = utcnow()
    detail = outcome.detail[:200] or None
    if outcome.status == "sent":
        await _ours(delivery).update(status="sent", sent_at=now, lease_until=None, error=None)
    elif outcome.status == "dropped":
        await _ours(delivery).update(status="dropped", lease_until=None, error=detail)
    elif outcome.status == "unreachable":
        # Marked first: from then on no new message is made for the address.
        await mark_unreachable(delivery.address, delivery.channel, outcome.detail, now)
        await _ours(delivery).update(status="dropped", lease_until=None, error=detail)
    elif outcome.status == "retry" and outcome.retry_after is not None:
        # The platform asked us to wait (Telegram's 429): not the message's failure, not a
        # try; a flood that outlasted the tries would otherwise lose it.
        await _ours(delivery).update(status="pending", lease_until=None, error=detail,
                                     attempts=max(delivery.attempts - 1, 0),
                                     due_at=now + timedelta(seconds=outcome.retry_after))
    elif outcome.status == "retry" and delivery.attempts < settings.delivery_max_attempts:
        await _ours(delivery).update(status="pending", lease_until=None, error=detail,
                                     due_at=now + timedelta(seconds=backoff(delivery.attempts)))
    else:
        await _ours(delivery).update(status="failed", lease_until=None, error=detail)
        log.warning("a %s progress update failed for good: %s", delivery.channel, detail)


async def mark_unreachable(address: str, channel: str, reason: str,
                           now: datetime | None = None) -> None:
    """The address refuses us: its waiting messages are dropped, and none is made for it until
    the person comes back (`came_back`)."""
    now = now or utcnow()
    conn = connections.get("default")
    await run_sql(conn, "INSERT INTO unreachable (address, channel, reason, since) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (address) DO NOTHING",
                  [address, channel, (reason or "refused")[:200], now])
    await Delivery.filter(Q(status="pending"), address=address).update(
        status="dropped", error="unreachable")


async def forget_address(address: str) -> None:
    """The person asked to be forgotten (/forget): no trace of their chat address stays in
    the messages sent or waiting, nor in the unreachable list."""
    await Delivery.filter(address=address).delete()
    await Unreachable.filter(address=address).delete()


async def came_back(address: str) -> None:
    """The person wrote to us again there (or followed again): they can be reached."""
    # Read first: it runs for every incoming message, and a DELETE would make SQLite take
    # its write lock each time for a row that is almost never there.
    if await Unreachable.exists(address=address):
        await Unreachable.filter(address=address).delete()


PRUNE_BATCH = 5000


async def prune(settings: Settings, now: datetime | None = None) -> int:
    """Forget finished messages (sent, failed, dropped) older than `delivery_keep_days`: they
    hold people's chat ids and e-mail addresses, and nobody needs them once the case has moved
    on. In batches, so that the table is never locked for long. Returns how many went."""
    before = (now or utcnow()) - timedelta(days=settings.delivery_keep_days)
    gone = 0
    while True:
        ids = await Delivery.filter(status__in=("sent", "failed", "dropped"),
                                    created_at__lt=before).limit(PRUNE_BATCH) \
            .values_list("id", flat=True)
        if not ids:
            return gone
        gone += await Delivery.filter(id__in=list(ids)).delete()


async def remind(settings: Settings, now: datetime | None = None) -> int:
    """The one reminder to rate: to each reporter whose request to rate went out
    `survey_reminder_hours` ago, who has not rated the case since and still follows it, while
    it is still resolved; held by the quiet hours like any update. Safe to run twice, late, or
    in several processes at once (a survey is claimed once). The number of reminders made."""
    now = now or utcnow()
    before = now - timedelta(hours=settings.survey_reminder_hours)
    done, after_id = 0, 0
    while True:  # every due survey, a page at a time (a survey left waiting does not block)
        page = list(await Survey.filter(reminded_at__isnull=True, asked_at__lte=before,
                                        id__gt=after_id).order_by("id").limit(500))
        if not page:
            return done
        after_id = page[-1].id
        for survey in page:
            done += await _remind_one(survey, settings, before, now)


async def _remind_one(survey: Survey, settings: Settings, before: datetime,
                      now: datetime) -> int:
    # The message that asked: the update that carried the resolution.
    ask = await Delivery.filter(case_id=survey.case_id, person_id=survey.person_id,
                                kind="update", first_event_id__lte=survey.event_id,
                                last_event_id__gte=survey.event_id).order_by("id").first()
    if ask is not None and (ask.status in ("pending", "sending") or (
            ask.status == "sent" and ask.sent_at > before)):
        return 0  # not out yet (quiet hours, retries), or out less than the wait ago
    async with in_transaction() as conn:
        # Claimed and made in one transaction: a sweep stopped half way leaves no survey
        # marked as reminded without its reminder.
        if not await Survey.filter(id=survey.id, reminded_at__isnull=True).using_db(conn) \
                .update(reminded_at=now):
            return 0
        if ask is None or ask.status != "sent":
            return 0  # asked on the tracking page only, or the request never arrived
        person = await Person.get_or_none(id=survey.person_id).using_db(conn)
        if person is None or not await _still_to_remind(survey, ask.address, conn):
            return 0
        await Delivery.bulk_create([Delivery(
            case_id=survey.case_id, person_id=person.id, channel=ask.channel,
            address=ask.address, language=person.language, kind="reminder",
            first_event_id=survey.event_id, last_event_id=survey.event_id, event_ids=[],
            due_at=due_at(now, settings, urgent=False, at_night=person.updates_at_night),
            created_at=now)], ignore_conflicts=True, using_db=conn)
    return 1


async def _still_to_remind(survey: Survey, address: str, conn) -> bool:
    """The case is still resolved, the person has not rated it since, still follows it, and
    can be reached where they were asked."""
    case = await Case.get_or_none(id=survey.case_id).using_db(conn)
    return (case is not None and case.status == Status.RESOLVED
            and not await rated_since(case.id, survey.person_id, survey.event_id, conn)
            and await Subscription.filter(case_id=case.id, person_id=survey.person_id)
            .using_db(conn).exists()
            and not await Unreachable.filter(address=address).using_db(conn).exists())
