"""From the outbox to deliveries: each public event of a case becomes one message per
subscriber and channel, or joins the message still waiting for that person (several changes
made while an update waits go out as one message).

An outbox row is taken and deleted in the transaction that writes its deliveries, so an event
is fanned out once even with several workers (PostgreSQL: `FOR UPDATE SKIP LOCKED`) or a worker
that dies half way (the transaction rolls back and the row is there again).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache

from tortoise.transactions import in_transaction

from feedback.channels import channel_of
from feedback.models import Delivery, Survey, Unreachable
from portal.cases.models import Case, CaseEvent, Person, Subscription
from portal.cases.service import SHANGHAI, utcnow
from portal.db import run_sql
from portal.settings import Settings

BATCH = 100


# Keyed by the setting's text: parsed once, not for every message made.
@lru_cache(maxsize=8)
def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    if not value:
        return None
    start, end = value.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_until(now: datetime, quiet: tuple[time, time] | None) -> datetime | None:
    """The end of the quiet hours `now` falls in (UTC), or None outside them."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(SHANGHAI)
    clock = local.time()
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(now.tzinfo)


def recipients(sub: Subscription, person: Person, channels: set[str]) -> list[tuple[str, str]]:
    """(channel, address) pairs a subscriber is reached on: their chat, else their e-mail."""
    chat = channel_of(sub.identity)
    if chat is not None:
        return [(chat, sub.identity)] if chat in channels else []
    if person.email and "email" in channels:
        return [("email", person.email)]
    return []


def due_at(now: datetime, settings: Settings, *, urgent: bool, at_night: bool) -> datetime:
    due = now + timedelta(seconds=settings.updates_settle_seconds)
    if urgent or at_night:
        return due
    return quiet_until(due, parse_quiet_hours(settings.quiet_hours)) or due


async def _claim(conn, limit: int) -> list[dict]:
    if conn.capabilities.dialect == "postgres":
        inner = "SELECT id FROM outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
    else:
        inner = "SELECT id FROM outbox ORDER BY id LIMIT ?"
    return await run_sql(conn, f"DELETE FROM outbox WHERE id IN ({inner}) "
                               "RETURNING event_id, case_id", [limit])


async def fan_out(settings: Settings, channels: set[str], *, limit: int = BATCH,
                  now: datetime | None = None) -> list[int]:
    """Turn up to `limit` outbox rows into deliveries; the ids of the cases they were of
    (empty: nothing was waiting)."""
    now = now or utcnow()
    urgent_categories = {c.strip() for c in settings.urgent_categories.split(",") if c.strip()}
    async with in_transaction() as conn:
        rows = await _claim(conn, limit)
        if not rows:
            return []
        events = list(await CaseEvent.filter(id__in=[r["event_id"] for r in rows])
                      .using_db(conn).order_by("id"))
        by_case: dict[int, list[CaseEvent]] = {}
        for event in events:
            by_case.setdefault(event.case_id, []).append(event)
        for case_id, case_events in sorted(by_case.items()):
            if conn.capabilities.dialect == "postgres":
                # Two workers fanning out two changes of one case would both find no waiting
                # message and send two: one case at a time.
                await run_sql(conn, "SELECT pg_advisory_xact_lock(7311, ?::int)",
                              [case_id % 2**31])
            case = await Case.get_or_none(id=case_id).using_db(conn)
            if case is not None:
                await _fan_out_case(conn, case, case_events, channels, settings, now,
                                    urgent=case.category in urgent_categories)
    return sorted(by_case)


async def _fan_out_case(conn, case: Case, events: list[CaseEvent], channels: set[str],
                        settings: Settings, now: datetime, *, urgent: bool) -> None:
    subs = list(await Subscription.filter(case_id=case.id).using_db(conn))
    if not subs:
        return
    people = {p.id: p for p in await Person.filter(id__in=[s.person_id for s in subs])
              .using_db(conn)}
    # One message per address: a reporter who also follows by the same e-mail (two people
    # to us) gets one, as the reporter (reporters first).
    targets, reached = [], set()
    for sub in sorted(subs, key=lambda s: (s.reason != "reporter", s.id)):
        person = people.get(sub.person_id)
        for channel, address in recipients(sub, person, channels) if person else []:
            if (channel, address.lower()) not in reached:
                reached.add((channel, address.lower()))
                targets.append((sub, person, channel, address))
    blocked = set(await Unreachable.filter(address__in=[t[3] for t in targets])
                  .using_db(conn).values_list("address", flat=True)) if targets else set()
    waiting = {(d.person_id, d.channel): d for d in await Delivery.filter(
        case_id=case.id, status="pending", kind="update").using_db(conn)}
    resolved = [e for e in events if e.kind == "status" and e.status_to == "resolved"]
    for event in events:
        fresh: list[Delivery] = []
        for _sub, person, channel, address in targets:
            if address in blocked:
                continue
            held = waiting.get((person.id, channel))
            if held is not None and await _join(conn, held, event.id):
                continue
            delivery = Delivery(
                case_id=case.id, person_id=person.id, channel=channel, address=address,
                language=person.language, kind="update", first_event_id=event.id,
                last_event_id=event.id, event_ids=[event.id], urgent=urgent,
                due_at=due_at(now, settings, urgent=urgent, at_night=person.updates_at_night),
                created_at=now)
            fresh.append(delivery)
        if fresh:
            await Delivery.bulk_create(fresh, batch_size=500, ignore_conflicts=True,
                                       using_db=conn)
            # The new ones are what later events of this batch join.
            for d in await Delivery.filter(case_id=case.id, first_event_id=event.id,
                                           status="pending").using_db(conn):
                waiting[(d.person_id, d.channel)] = d
    for event in resolved:
        reporters = {s.person_id for s in subs if s.reason == "reporter"}
        await Survey.bulk_create(
            [Survey(case_id=case.id, person_id=pid, event_id=event.id, asked_at=now)
             for pid in sorted(reporters)], ignore_conflicts=True, using_db=conn)


async def _join(conn, held: Delivery, event_id: int) -> bool:
    """Add the event to a message still waiting; False when a sender took it meanwhile."""
    ids = [*held.event_ids, event_id]
    joined = await Delivery.filter(id=held.id, status="pending",
                                   last_event_id=held.last_event_id).using_db(conn).update(
        event_ids=ids, last_event_id=event_id)
    if joined:
        held.event_ids, held.last_event_id = ids, event_id
    return bool(joined)
