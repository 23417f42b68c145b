"""Hotline tickets into the one intake: category by keywords, identity and idempotency by ticket.

Each ticket goes through `intake.submit` on its own (its own transaction), so one bad ticket is
answered as rejected while the rest of the batch is filed, and a ticket phoned to two lines
about one problem becomes one case. Hotline lines are trusted systems: not throttled per caller.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from portal.cases.categories import BY_KEY
from portal.cases.models import Case, Report
from portal.cases.service import SHANGHAI, utcnow
from portal.hotline.schemas import HotlineBatch, HotlineTicket, TicketResult
from portal.i18n import _, gettext_for
from portal.intake.service import submit
from portal.intake.submission import InvalidSubmission, Submission
from portal.settings import Settings

# First match wins, in this order: a lamp post by a pothole is a street light ticket.
CATEGORY_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("路灯",), "street_light"),
    (("井盖",), "manhole"),
    (("噪音", "噪声"), "noise"),
    (("违停", "停车"), "illegal_parking"),
    (("垃圾",), "garbage"),
    (("摊",), "street_vendor"),
    (("搭建",), "illegal_construction"),
    (("漏水", "积水"), "water_leak"),
    (("绿化", "树"), "greenery"),
    (("路面", "坑"), "road_damage"),
)
# Clocks of two systems disagree a little; a ticket far in the future is a wrong date.
FUTURE_SLACK = timedelta(hours=1)
# Older tickets are history, not reports: their case codes and merge windows would be wrong.
OLDEST = timedelta(days=365)


def category_for(text: str | None) -> str | None:
    """Our category key for a free-text category, or None when no keyword matches."""
    if not text:
        return None
    for words, key in CATEGORY_KEYWORDS:
        if any(w in text for w in words):
            return key
    return None


def external_ref(ticket: HotlineTicket) -> str:
    return f"hotline:{ticket.line}:{ticket.ticket_no}"


def reporter(ticket: HotlineTicket) -> str:
    """The caller, known only by the ticket: hotline:<line>-<year>-<ticket no>."""
    year = ticket.received_at.astimezone(SHANGHAI).year
    return f"hotline:{ticket.line}-{year}-{ticket.ticket_no}"


def foreign_lines(batch: HotlineBatch, line: str | None) -> list[str]:
    """Ticket numbers of the batch that are not of `line` (the line of the caller's key)."""
    return [t.ticket_no for t in batch.tickets if t.line != line]


async def file_ticket(ticket: HotlineTicket, *, settings: Settings, language: str,
                      now: datetime | None = None) -> TicketResult:
    t = gettext_for(language)
    now = now or utcnow()

    def rejected(message: str, field: str | None, **params) -> TicketResult:
        return TicketResult(ticket_no=ticket.ticket_no, line=ticket.line, status="rejected",
                            error=t(message).format(**params), field=field)

    if ticket.category is not None and ticket.category not in BY_KEY:
        return rejected(_("Unknown category {category}: send one of our category keys, or "
                          "the line's own category as category_text."), "category",
                        category=ticket.category)
    if ticket.lat is None and not ticket.address:
        return rejected(_("A ticket needs an address or coordinates."), "address")
    try:
        at = ticket.received_at.astimezone(UTC)
    except OverflowError:
        # The calendar's first or last day in a far time zone: out of range, either way.
        at = (datetime.max if ticket.received_at.year == datetime.max.year
              else datetime.min).replace(tzinfo=UTC)
    if at > now + FUTURE_SLACK:
        return rejected(_("The time received lies in the future."), "received_at")
    if at < now - OLDEST:
        return rejected(_("The ticket is more than a year old."), "received_at")

    category = (ticket.category or category_for(ticket.category_text)
                or category_for(ticket.description) or "other")
    extra = {"line": ticket.line, "ticket_no": ticket.ticket_no}
    if ticket.category_text:
        extra["category_text"] = ticket.category_text
    sub = Submission(
        reporter=reporter(ticket), channel="hotline", text=ticket.description,
        category=category, lat=ticket.lat, lng=ticket.lng, crs="wgs84", address=ticket.address,
        language="zh-CN", external_ref=external_ref(ticket),
        phone=re.sub(r"[\s-]", "", ticket.caller_phone) if ticket.caller_phone else None,
        extra=extra, received_at=at,
    )
    try:
        receipt = await submit(sub, throttle=None, settings=settings)
    except InvalidSubmission as exc:
        return rejected(exc.message, exc.field)
    except IntegrityError:
        # The same ticket in two batches at the same moment: the other one filed it.
        earlier = await Report.get_or_none(external_ref=sub.external_ref)
        if earlier is None:
            raise
        case = await Case.get(id=earlier.case_id)
        return TicketResult(ticket_no=ticket.ticket_no, line=ticket.line, status="duplicate",
                            case_code=case.code)
    if receipt.duplicate_delivery:
        status = "duplicate"
    elif receipt.join == "new":
        status = "created"
    else:
        status = "merged"
    return TicketResult(ticket_no=ticket.ticket_no, line=ticket.line, status=status,
                        case_code=receipt.case_code)


async def file_batch(batch: HotlineBatch, *, settings: Settings,
                     language: str) -> list[TicketResult]:
    """Every ticket in order; the answer lists each one with its own outcome."""
    return [await file_ticket(ticket, settings=settings, language=language)
            for ticket in batch.tickets]
