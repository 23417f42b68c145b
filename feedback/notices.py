"""Notices (messages about no case, feedback.models.PersonNotice) on their way to people: one
message per notice to the person's best address, and what that message says.

A notice is claimed (fanned_out_at set) in the transaction that writes its delivery, so it is
fanned out once even with several workers (PostgreSQL: `FOR UPDATE SKIP LOCKED`) or a worker
that dies half way (the transaction rolls back and the notice waits again). A person nobody can
reach still has it in the portal's inbox (/account/notices).
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from feedback.channels import Notice, channel_of
from feedback.compose import cut
from feedback.fanout import BATCH, due_at
from feedback.models import Delivery, PersonNotice, Unreachable
from portal.cases.models import Identity, Person
from portal.cases.service import SHANGHAI, utcnow
from portal.db import run_sql
from portal.i18n import _, gettext_for
from portal.settings import Settings

DEFAULT_LANGUAGE = "zh-CN"
SEE_MORE = _("See the details")


async def _claim(conn, limit: int, now: datetime) -> list[int]:
    lock = " FOR UPDATE SKIP LOCKED" if conn.capabilities.dialect == "postgres" else ""
    rows = await run_sql(
        conn,
        "UPDATE person_notice SET fanned_out_at = ? WHERE fanned_out_at IS NULL AND id IN ("
        "SELECT id FROM person_notice WHERE fanned_out_at IS NULL ORDER BY id LIMIT ?"
        f"{lock}) RETURNING id", [now, limit])
    return sorted(r["id"] for r in rows)


async def address_for(conn, person: Person, channels: set[str]) -> tuple[str, str] | None:
    """(channel, address) a notice reaches the person on: their most recent chat we can send
    to, else their e-mail, else None (the inbox only)."""
    chats = [key for key in await Identity.filter(person_id=person.id).using_db(conn)
             .order_by("-created_at", "-id").values_list("key", flat=True)
             if channel_of(key) in channels]
    refused = set(await Unreachable.filter(address__in=chats).using_db(conn)
                  .values_list("address", flat=True)) if chats else set()
    for key in chats:
        if key not in refused:
            return channel_of(key), key
    if person.email and "email" in channels and not await Unreachable.filter(
            address=person.email).using_db(conn).exists():
        return "email", person.email
    return None


async def fan_out_notices(settings: Settings, channels: set[str], *, limit: int = BATCH,
                          now: datetime | None = None) -> int:
    """Turn up to `limit` waiting notices into deliveries; how many were claimed (0: none
    was waiting)."""
    now = now or utcnow()
    async with in_transaction() as conn:
        ids = await _claim(conn, limit, now)
        if not ids:
            return 0
        notices = list(await PersonNotice.filter(id__in=ids).using_db(conn).order_by("id"))
        people = {p.id: p for p in await Person.filter(
            id__in={n.person_id for n in notices}).using_db(conn)}
        targets = {pid: await address_for(conn, person, channels)
                   for pid, person in people.items()}
        fresh = []
        for notice in notices:
            person, target = people.get(notice.person_id), targets.get(notice.person_id)
            if person is None or target is None:
                continue
            channel, address = target
            fresh.append(Delivery(
                case_id=None, person_id=person.id, channel=channel, address=address,
                language=person.language, kind="notice", first_event_id=notice.id,
                last_event_id=notice.id, event_ids=[], urgent=notice.urgent,
                due_at=due_at(now, settings, urgent=notice.urgent,
                              at_night=person.updates_at_night),
                created_at=now))
        if fresh:
            await Delivery.bulk_create(fresh, batch_size=500, ignore_conflicts=True,
                                       using_db=conn)
    return len(ids)


def texts_in(notice: PersonNotice, language: str) -> dict:
    """The notice's title, body and link label in `language`, else in Chinese."""
    texts = notice.texts if isinstance(notice.texts, dict) else {}
    chosen = texts.get(language) or texts.get(DEFAULT_LANGUAGE) or {}
    return {key: str(chosen.get(key) or "") for key in ("title", "body", "link")}


async def notice_message(delivery: Delivery, base_url: str) -> Notice | None:
    """The message of a notice delivery; None when the notice is gone (the person was
    forgotten) or was read in the inbox while it waited."""
    notice = await PersonNotice.get_or_none(id=delivery.first_event_id,
                                            person_id=delivery.person_id)
    if notice is None or notice.read_at is not None:
        return None
    language = delivery.language
    t = gettext_for(language)
    words = texts_in(notice, language)
    link = words["link"] or t(SEE_MORE)
    body = cut("\n".join(part for part in (words["title"], words["body"]) if part))
    base = base_url.rstrip("/")
    # orgs writes its pages' paths: a message needs the whole address.
    url = notice.url if "://" in notice.url else base + "/" + notice.url.lstrip("/")
    return Notice(case_code=notice.code, language=language, title=words["title"], body=body,
                  url=url, status=words["title"],
                  when=f"{notice.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}",
                  unsubscribe_url=f"{base}/account", link_text=link,
                  about_case=False)
