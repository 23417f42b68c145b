"""What anyone may see of a case: status, category, rough place, counts and the public timeline.

Never the reporters (no contact, identity or exact point), never internal notes or who on the
staff acted. Places are published as Open311 publishes them: the point rounded to about 100 m,
the address reduced to its road names, e-mail addresses and phone-like numbers masked in texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from portal.cases.categories import BY_KEY, CATEGORIES, CategoryInfo
from portal.cases.models import OPEN_STATUSES, Case, CaseEvent, Department, Photo, Status
from portal.cases.service import STATUS_LABELS
from portal.i18n import _, gettext_for

# Published coordinates: 3 decimals is about 110 m of latitude, 95 m of longitude in Shanghai.
COORD_DECIMALS = 3
_NOT_ROAD = re.compile(r"[^\u4e00-\u9fff]+")
_ROAD_NAME = re.compile(r"[\u4e00-\u9fff]{1,12}(?:大道|公路|路|街)")
# Published descriptions: e-mail addresses, and digit runs long enough to be a phone number or
# an identity card number (house numbers and dates are shorter).
_MASK_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MASK_DIGITS = re.compile(r"\+?\d(?:[\d\s-]{5,}\d)[\dXx]?")


# Public case codes (GL-YYYYMMDD-NNNN); anything else is not looked up.
CODE = re.compile(r"^[A-Za-z0-9-]{1,20}$")
# Statuses a resident can filter the public list by; "merged" cases live on in their master.
LISTED_STATUSES = tuple(s for s in Status if s != Status.MERGED)
PAGE_SIZE = 20
# A chain of merges longer than this is not followed (it cannot arise; it must not loop).
MAX_HOPS = 10


@dataclass
class Category:
    key: str
    name: str
    hint: str


def categories(language: str) -> list[Category]:
    en = language == "en"
    return [Category(c.key, _name(c, en), c.hint_en if en else c.hint_zh) for c in CATEGORIES]


def _name(info: CategoryInfo, en: bool) -> str:
    return info.name_en.capitalize() if en else info.name_zh


def category_name(key: str, language: str) -> str:
    info = BY_KEY.get(key)
    return _name(info, language == "en") if info else key


def status_label(status: Status | str, language: str) -> str:
    label = gettext_for(language)(STATUS_LABELS[Status(status)])
    return label.capitalize() if language == "en" else label


@dataclass
class PublicCase:
    code: str
    category: str
    status: str
    status_label: str
    summary: str
    place: str | None
    lat: float | None
    lng: float | None
    first_reported_at: datetime
    report_count: int
    reporter_count: int
    department: str | None
    last_event_id: int = 0


def public_text(value: str | None) -> str | None:
    """A description or a staff note as published: e-mail addresses and phone-like numbers
    masked."""
    if not value:
        return value

    def digits(m: re.Match) -> str:
        return "***" if sum(ch.isdigit() for ch in m.group(0)) >= 7 else m.group(0)

    return _MASK_DIGITS.sub(digits, _MASK_EMAIL.sub("***", value))


def public_address(case: Case) -> str | None:
    """Road names only: a house, building or flat number could be the reporter's home.

    Taken from the case's address keys ("南京东路#100", "共和新路&大宁路", ...): every run of
    Chinese characters in them that ends like a road name.
    """
    roads: list[str] = []
    for key in (case.address_keys or "").split("|"):
        for token in _NOT_ROAD.split(key):
            if _ROAD_NAME.fullmatch(token) and token not in roads:
                roads.append(token)
    return " / ".join(roads) or None


def round_point(value: float | None) -> float | None:
    return round(value, COORD_DECIMALS) if value is not None else None


def public_case(case: Case, language: str, departments: dict[int, Department]) -> PublicCase:
    dept = departments.get(case.department_id) if case.department_id else None
    return PublicCase(
        code=case.code, category=category_name(case.category, language),
        status=case.status.value, status_label=status_label(case.status, language),
        summary=public_text(case.summary) or "", place=public_address(case),
        lat=round_point(case.lat), lng=round_point(case.lng),
        first_reported_at=case.first_reported_at,
        report_count=case.report_count, reporter_count=case.reporter_count,
        department=(dept.name_en if language == "en" else dept.name_zh) if dept else None,
    )


def case_url(base_url: str, code: str) -> str:
    """The case's tracking page, as a whole address (for messages)."""
    return f"{base_url.rstrip('/')}/cases/{code}"


async def departments() -> dict[int, Department]:
    """Every department (a handful of rows), by id."""
    return {d.id: d for d in await Department.all()}


async def find_case(code: str) -> Case | None:
    return await Case.get_or_none(code=code) if CODE.fullmatch(code) else None


async def living_case(case: Case) -> Case:
    """The case a merged case lives on in (itself when it was not merged)."""
    hops = 0
    while case.status == Status.MERGED and case.master_id and hops < MAX_HOPS:
        case = await Case.get_or_none(id=case.master_id) or case
        hops += 1
    return case


async def recent_cases(language: str, limit: int = 6) -> list[PublicCase]:
    cases = await Case.exclude(status=Status.MERGED).order_by("-id").limit(limit)
    depts = await departments()
    return [public_case(c, language, depts) for c in cases]


async def list_cases(language: str, *, category: str | None, status: str | None,
                     before_id: int | None, limit: int = PAGE_SIZE
                     ) -> tuple[list[PublicCase], int | None]:
    """Newest first, a page at a time (keyset: `before_id`, so a deep page costs what the first
    does). `status` None: every open case. Returns the page and the cursor of the next one."""
    statuses = [Status(status)] if status else list(OPEN_STATUSES)
    query = Case.filter(status__in=statuses)
    if category:
        query = query.filter(category=category)
    if before_id:
        query = query.filter(id__lt=before_id)
    cases = list(await query.order_by("-id").limit(limit + 1))
    more = len(cases) > limit
    cases = cases[:limit]
    depts = await departments()
    return ([public_case(c, language, depts) for c in cases],
            cases[-1].id if more and cases else None)


# ------------------------------------------------------------------------------ timeline

_STATUS_VALUES = frozenset(s.value for s in Status)
# The note of a case reopened because its reporters said it is not fixed (feedback), in the
# reader's language.
REOPENED_NOT_FIXED = _("Residents report that the problem is not fixed yet. The case is being "
                       "worked on again.")


@dataclass
class Entry:
    id: int
    at: datetime
    title: str
    note: str | None
    status: str | None = None
    # A photo of the repair, served by /photos/{id}.
    photo: int | None = None

    def as_json(self, time_text: str) -> dict:
        return {"id": self.id, "time": time_text, "title": self.title, "note": self.note,
                "status": self.status, "photo": self.photo}


def entry(event: CaseEvent, language: str, depts: dict[int, Department]) -> Entry | None:
    """How a public event reads on the tracking page; None for what is not shown."""
    t = gettext_for(language)
    data = event.data or {}
    note = public_text(event.public_note) or None
    status = photo = None
    if event.kind == "created":
        title = (t(_("Separated from case {code} as a problem of its own")).format(
                 code=data["unmerged_from"]) if data.get("unmerged_from")
                 else t(_("Reported")))
    elif event.kind == "report_added":
        title = (t(_("The reporter added more details")) if data.get("join") == "repeat"
                 else t(_("Someone else reported the same problem")))
    elif event.kind == "status" and event.status_to in _STATUS_VALUES:
        status = event.status_to
        title = t(_("Status: {status}")).format(status=status_label(status, language))
        if data.get("reopened") == "not_fixed":
            note = t(REOPENED_NOT_FIXED)
    elif event.kind == "department":
        code = data.get("department")
        dept = next((d for d in depts.values() if d.code == code), None) if code else None
        title = (t(_("Assigned to {department}")).format(
                 department=dept.name_en if language == "en" else dept.name_zh) if dept
                 else t(_("Taken back by the grid centre")))
    elif event.kind == "organisation":
        name = data.get("organisation")
        title = (t(_("Given to {organisation}")).format(organisation=name) if name
                 else t(_("Taken back from the organisation by the grid centre")))
    elif event.kind == "merged":
        if data.get("into"):
            status = Status.MERGED.value
            title = t(_("Merged into case {code}")).format(code=data["into"])
        else:
            title = t(_("Case {code} about the same problem was merged into this one")).format(
                code=data.get("from", "?"))
    elif event.kind == "recurrence":
        title = t(_("This problem was reported here before (case {code})")).format(
            code=data.get("recurrence_of", "?"))
    elif event.kind == "photo" and data.get("kind") == "fix":
        title = t(_("A photo of the repair was added"))
        photo = data.get("photo") if isinstance(data.get("photo"), int) else None
    elif note:
        title = t(_("Update"))
    else:
        return None
    return Entry(id=event.id, at=event.created_at, title=title, note=note, status=status,
                 photo=photo)


async def public_events(case_id: int, after_id: int = 0, limit: int = 200) -> list[CaseEvent]:
    return list(await CaseEvent.filter(case_id=case_id, public=True, id__gt=after_id)
                .order_by("id").limit(limit))


def timeline(events: list[CaseEvent], language: str,
             depts: dict[int, Department]) -> list[Entry]:
    return [e for e in (entry(ev, language, depts) for ev in events) if e is not None]


async def fix_photos(case_id: int) -> list[int]:
    return list(await Photo.filter(case_id=case_id, kind="fix").order_by("id")
                .values_list("id", flat=True))
