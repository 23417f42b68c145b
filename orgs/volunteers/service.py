"""Volunteers: registration, and the leaderboard of points per grid or street.

The leaderboard shows display names only, never phone numbers; a volunteer without a usable
display name shows as "Volunteer" with a masked number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from orgs.privacy import mask_phone
from orgs.registry.models import Area
from orgs.volunteers.models import PointsEntry, Volunteer
from portal.cases.models import Person
from portal.cases.service import SHANGHAI
from portal.db import run_sql
from portal.i18n import _
from portal.intake.text import CONTROL_CHARS

CHANNELS = ("web", "telegram", "wechat")
PERIODS = {"month": _("this month"), "year": _("this year"), "all": _("all time")}
TOP = 50


class VolunteerError(Exception):
    """A refused step: an English msgid and an HTTP status."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message, self.status = message, status

    def translated(self, t) -> str:
        return t(self.message)


def clean_name(value: str) -> str:
    return " ".join(CONTROL_CHARS.sub(" ", value or "").split())


def check_name(name: str) -> str | None:
    """The English msgid of what is wrong with a display name, or None."""
    if not 1 <= len(name) <= 32 or not name.isprintable():
        return _("Give a name of 1 to 32 characters that others may see.")
    return None


async def grids() -> list[Area]:
    return await Area.filter(kind="grid").order_by("code")


async def register(person_id: int, display_name: str, home_area_id: int, *, via: str,
                   consent: bool, now: datetime | None = None) -> Volunteer:
    """Make the person a volunteer, or update their name and grid (a volunteer who left
    comes back)."""
    name = clean_name(display_name)
    problem = check_name(name)
    if problem:
        raise VolunteerError(problem)
    if not consent:
        raise VolunteerError(_("Please agree that your display name and points are shown on "
                               "the leaderboard."))
    if via not in CHANNELS:
        raise ValueError(via)
    if not await Area.filter(id=home_area_id, kind="grid").exists():
        raise VolunteerError(_("Choose a grid from the list."))
    now = now or datetime.now(UTC)
    async with in_transaction() as conn:
        found = await Volunteer.filter(person_id=person_id).using_db(conn).first()
        if found is not None:
            await Volunteer.filter(id=found.id).using_db(conn).update(
                display_name=name, home_area_id=home_area_id, status="active", consent_at=now)
            return await Volunteer.get(id=found.id).using_db(conn)
        return await Volunteer.create(person_id=person_id, display_name=name,
                                      home_area_id=home_area_id, status="active",
                                      registered_via=via, consent_at=now, created_at=now,
                                      using_db=conn)


def period_start(period: str, now: datetime) -> datetime | None:
    """The start of the month or year (Asia/Shanghai) containing `now`, None for all time."""
    local = now.astimezone(SHANGHAI)
    if period == "month":
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    if period == "year":
        return local.replace(month=1, day=1, hour=0, minute=0, second=0,
                             microsecond=0).astimezone(UTC)
    return None


@dataclass
class Row:
    rank: int
    person_id: int
    name: str
    points: int


def public_name(volunteer: Volunteer, phone: str | None, t) -> str:
    name = clean_name(volunteer.display_name)
    if name and not check_name(name):
        return name
    return f"{t('Volunteer')} {mask_phone(phone)}"


async def leaderboard(area: Area, period: str, t, now: datetime | None = None) -> list[Row]:
    """Every volunteer of the grid (or of the street's grids) with points in the period,
    most points first, ties by earlier registration. Ranks are shared by equal points."""
    now = now or datetime.now(UTC)
    volunteers = Volunteer.filter(status="active")
    if area.kind == "street":
        volunteers = volunteers.filter(home_area__parent_id=area.id)
    else:
        volunteers = volunteers.filter(home_area_id=area.id)
    by_person = {v.person_id: v for v in await volunteers.order_by("id")}
    if not by_person:
        return []
    entries = PointsEntry.filter(person_id__in=list(by_person))
    start = period_start(period, now)
    if start is not None:
        entries = entries.filter(created_at__gte=start)
    totals = await entries.annotate(total=Sum("points")).group_by("person_id").values(
        "person_id", "total")
    phones = dict(await Person.filter(id__in=list(by_person)).values_list("id", "phone"))
    scored = sorted(((int(r["total"] or 0), by_person[r["person_id"]].id, r["person_id"])
                     for r in totals if r["total"]), key=lambda x: (-x[0], x[1]))
    rows: list[Row] = []
    for i, (points, _vid, person_id) in enumerate(scored):
        rank = rows[-1].rank if rows and rows[-1].points == points else i + 1
        rows.append(Row(rank, person_id, public_name(by_person[person_id],
                                                     phones.get(person_id), t), points))
    return rows


async def award(conn, person_id: int, kind: str, ref: str, points: int, area_id: int | None,
                now: datetime) -> bool:
    """One ledger entry per (kind, ref): a repeated award is harmless."""
    rows = await run_sql(
        conn, "INSERT INTO points_entry (person_id, kind, ref, points, area_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, ref) DO NOTHING RETURNING id",
        [person_id, kind, ref, points, area_id, now])
    return bool(rows)
