"""Cases as staff see and handle them: who sees which case, who may do what, list and detail.

Roles: an operator (grid centre) sees and handles every case; an admin does too and also
manages accounts; a department account sees only the cases assigned to its department, and
there takes them up, resolves them or sends them back (dispatched -> accepted). Accepting,
refusing, closing, dispatching, merging and unmerging stay with the grid centre. The lifecycle
itself (which status may follow which) is `portal.cases.service`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from portal.cases import service as cases
from portal.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseEvent,
    Department,
    Photo,
    Report,
    Status,
    Subscription,
)
from portal.cases.service import SHANGHAI, TRANSITIONS
from portal.i18n import _
from portal.photos import StoredPhoto
from portal.staff import schemas
from portal.staff.models import Role, StaffUser

# What a department account may set on its own cases.
DEPARTMENT_MAY_SET = frozenset({Status.ACCEPTED, Status.IN_PROGRESS, Status.RESOLVED})


class Refused(Exception):
    """Not found (or not visible: the same answer), forbidden, or invalid input.

    `message` is an English msgid formatted with `params`.
    """

    def __init__(self, kind: str, message: str, **params):
        super().__init__(message.format(**params) if params else message)
        self.kind = kind
        self.message = message
        self.params = params

    def translated(self, t) -> str:
        return t(self.message).format(**self.params)


def _not_found() -> Refused:
    return Refused("not_found", _("No such case."))


def _centre_only() -> Refused:
    return Refused("forbidden", _("Only the grid centre can do this."))


def centre(user: StaffUser) -> bool:
    """The grid centre (operators, administrators) works every case. A department works its
    own; an evaluator (评审专家) scores tenders and sees no case at all."""
    return user.role in (Role.OPERATOR, Role.ADMIN)


def works_cases(user: StaffUser) -> bool:
    """Everyone but an evaluator, whose console is the tenders it evaluates (orgs)."""
    return user.role != Role.EVALUATOR


def scope(user: StaffUser) -> QuerySet[Case]:
    """The cases `user` may see."""
    if not centre(user):
        if user.department_id is None:
            return Case.filter(id__in=[])
        return Case.filter(department_id=user.department_id)
    return Case.all()


def can_see(user: StaffUser, case: Case) -> bool:
    return centre(user) or (user.role == Role.DEPARTMENT and user.department_id is not None
                            and case.department_id == user.department_id)


CASE_CODE = re.compile(rf"^[A-Z0-9-]{{1,{Case._meta.fields_map['code'].max_length}}}$")


def normalise_code(code: str) -> str:
    return code.strip().upper()


async def visible_case(user: StaffUser, code: str) -> Case:
    code = normalise_code(code)
    if not CASE_CODE.match(code):
        raise _not_found()
    case = await scope(user).get_or_none(code=code)
    if case is None:
        raise _not_found()
    return case


def _shanghai(value: date | datetime, end: bool) -> datetime:
    """A bound in UTC (SQLite compares stored times as text, so one offset for all)."""
    try:
        if isinstance(value, datetime):
            at = value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
        else:
            at = datetime.combine(value, time.min, tzinfo=SHANGHAI)
            at = at + timedelta(days=1) if end else at
        return at.astimezone(UTC)
    except OverflowError:
        # The calendar's first or last day: the bound is the calendar's end.
        edge = datetime.max if value.year == datetime.max.year else datetime.min
        return edge.replace(tzinfo=UTC)


async def _filtered(user: StaffUser, f: schemas.CaseFilter) -> QuerySet[Case]:
    """The cases `user` may see that pass the filters (the cursor aside)."""
    qs = scope(user)
    if f.status:
        qs = qs.filter(status__in=list(f.status))
    if f.category:
        qs = qs.filter(category__in=f.category)
    if f.department:
        dept = await Department.get_or_none(code=f.department)
        if dept is None:
            raise Refused("invalid", _("No department with the code {code}."), code=f.department)
        qs = qs.filter(department_id=dept.id)
    if f.possible_duplicate is True:
        qs = qs.filter(possible_duplicate_of_id__isnull=False)
    elif f.possible_duplicate is False:
        qs = qs.filter(possible_duplicate_of_id__isnull=True)
    if f.needs_review is not None:
        qs = qs.filter(review_requested_at__isnull=not f.needs_review)
    if f.q:
        code = normalise_code(f.q)
        qs = qs.filter(code=code) if CASE_CODE.match(code) else qs.filter(id__in=[])
    if f.created_from:
        qs = qs.filter(first_reported_at__gte=_shanghai(f.created_from, end=False))
    if f.created_to:
        if isinstance(f.created_to, datetime):
            qs = qs.filter(first_reported_at__lte=_shanghai(f.created_to, end=True))
        else:
            qs = qs.filter(first_reported_at__lt=_shanghai(f.created_to, end=True))
    return qs


async def list_cases(user: StaffUser, f: schemas.CaseFilter) -> schemas.CaseList:
    """Newest first (id descending), a page at a time with the `before_id` cursor."""
    qs = await _filtered(user, f)
    if f.before_id:
        qs = qs.filter(id__lt=f.before_id)
    rows = await qs.order_by("-id").limit(f.limit + 1).prefetch_related(
        "department", "possible_duplicate_of", "master")
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    return schemas.CaseList(items=[_summary(c) for c in rows],
                            next_before_id=rows[-1].id if more else None)


def _summary(case: Case) -> schemas.CaseSummary:
    return schemas.CaseSummary(
        id=case.id, code=case.code, category=case.category, status=case.status,
        summary=case.summary, address=case.address,
        department=case.department.code if case.department else None,
        report_count=case.report_count, reporter_count=case.reporter_count,
        first_reported_at=case.first_reported_at, last_reported_at=case.last_reported_at,
        possible_duplicate_of=case.possible_duplicate_of.code
        if case.possible_duplicate_of else None,
        master=case.master.code if case.master else None,
        review_requested_at=case.review_requested_at,
    )


async def case_detail(user: StaffUser, code: str) -> schemas.CaseDetail:
    """Everything about one case, contacts of its reporters included (staff only)."""
    case = await visible_case(user, code)
    await case.fetch_related("department", "possible_duplicate_of", "master", "recurrence_of")
    reports = await Report.filter(case_id=case.id).order_by("received_at", "id") \
        .prefetch_related("person")
    events = await CaseEvent.filter(case_id=case.id).order_by("created_at", "id")
    candidate = None
    dup = case.possible_duplicate_of
    if dup is not None and can_see(user, dup):
        flagged = next((e for e in reversed(events) if e.kind == "flagged"), None)
        candidate = schemas.Candidate(
            code=dup.code, status=dup.status, category=dup.category, summary=dup.summary,
            address=dup.address, report_count=dup.report_count,
            first_reported_at=dup.first_reported_at,
            score=flagged.data.get("score") if flagged else None,
        )
    return schemas.CaseDetail(
        **_summary(case).model_dump(),
        lat=case.lat, lng=case.lng, rejected_reason=case.rejected_reason,
        closed_at=case.closed_at,
        recurrence_of=case.recurrence_of.code if case.recurrence_of else None,
        merged_from=await scope(user).filter(master_id=case.id).order_by("id")
        .values_list("code", flat=True),
        possible_duplicate=candidate,
        flagged_by=await scope(user).filter(possible_duplicate_of_id=case.id).order_by("id")
        .values_list("code", flat=True),
        subscriber_count=await Subscription.filter(case_id=case.id).count(),
        reports=[_report(r) for r in reports],
        events=[schemas.EventOut(
            kind=e.kind, status_from=e.status_from, status_to=e.status_to,
            public_note=e.public_note, internal_note=e.internal_note, actor=e.actor,
            public=e.public, data=e.data, created_at=e.created_at) for e in events],
        photos=[schemas.PhotoOut(id=p.id, path=p.path, kind=p.kind, report_id=p.report_id)
                for p in await Photo.filter(case_id=case.id).order_by("id")],
    )


def _report(r: Report) -> schemas.ReportOut:
    return schemas.ReportOut(
        id=r.id, channel=r.channel, identity=r.identity, language=r.language, text=r.text,
        category=r.category, address=r.address, lat=r.lat, lng=r.lng, raw_lat=r.raw_lat,
        raw_lng=r.raw_lng, crs=r.crs, received_at=r.received_at, join=r.join, score=r.score,
        external_ref=r.external_ref,
        contact=schemas.Contact(email=r.person.email, phone=r.person.phone), extra=r.extra,
    )


async def set_status(user: StaffUser, code: str, body: schemas.StatusIn) -> Case:
    case = await visible_case(user, code)
    # A new case the centre gave a department early still waits for the centre to accept it.
    if not centre(user) and (body.status not in DEPARTMENT_MAY_SET
                                         or case.status == Status.NEW):
        raise _centre_only()
    return await cases.change_status(
        case.id, body.status, actor=user.username, public_note=body.public_note or None,
        internal_note=body.internal_note or None, reason=body.reason or None)


async def add_note(user: StaffUser, code: str, body: schemas.NoteIn) -> Case:
    case = await visible_case(user, code)
    await cases.add_note(case.id, actor=user.username, public_note=body.public_note or None,
                         internal_note=body.internal_note or None)
    return case


async def assign_department(user: StaffUser, code: str, body: schemas.DepartmentIn) -> Case:
    case = await visible_case(user, code)
    if not centre(user):
        raise _centre_only()
    dept_id = None
    if body.department_code:
        dept = await Department.get_or_none(code=body.department_code)
        if dept is None:
            raise Refused("invalid", _("No department with the code {code}."),
                          code=body.department_code)
        dept_id = dept.id
    return await cases.assign_department(case.id, dept_id, actor=user.username)


async def merge(user: StaffUser, code: str, body: schemas.MergeIn) -> Case:
    source = await visible_case(user, code)
    if not centre(user):
        raise _centre_only()
    target = await visible_case(user, body.into)
    return await cases.merge_cases(source.id, target.id, actor=user.username)


async def unmerge(user: StaffUser, report_id: int) -> Case:
    if not centre(user):
        raise _centre_only()
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise Refused("not_found", _("No such report."))
    return await cases.unmerge_report(report_id, actor=user.username)


# --- the console's queue and what it offers on a case ----------------------------------------

# A new case should be accepted or refused within a day; any case still being worked on is
# overdue `overdue_days` after its first report. Resolved cases wait for verification.
NEW_OVERDUE_AFTER = timedelta(days=1)
WORKING = (Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS)


def overdue(now: datetime, days: float) -> Q:
    return Q(status=Status.NEW, first_reported_at__lt=now - NEW_OVERDUE_AFTER) | Q(
        status__in=list(WORKING), first_reported_at__lt=now - timedelta(days=days))


def is_overdue(case: Case, now: datetime, days: float) -> bool:
    if case.status == Status.NEW:
        return case.first_reported_at < now - NEW_OVERDUE_AFTER
    return case.status in WORKING and case.first_reported_at < now - timedelta(days=days)


@dataclass
class Page:
    cases: list[Case]
    # Cursors: the older page (before_id) and the newer page (after_id); None at either end.
    older: int | None
    newer: int | None


async def queue_query(user: StaffUser, f: schemas.CaseFilter, *,
                      overdue_days: float | None = None, after_id: int | None = None,
                      now: datetime | None = None) -> QuerySet[Case]:
    """The rows of one page of the queue, and one more to tell whether there are others:
    newest first from the `f.before_id` cursor, or oldest first after `after_id`."""
    qs = await _filtered(user, f)
    if overdue_days is not None:
        qs = qs.filter(overdue(now or datetime.now(UTC), overdue_days))
    if after_id:
        return qs.filter(id__gt=after_id).order_by("id").limit(f.limit + 1)
    if f.before_id:
        qs = qs.filter(id__lt=f.before_id)
    return qs.order_by("-id").limit(f.limit + 1)


async def queue(user: StaffUser, f: schemas.CaseFilter, *, overdue_days: float | None = None,
                after_id: int | None = None, now: datetime | None = None) -> Page:
    """The console's queue: newest first, keyset pages either way from a cursor (`f.before_id`
    for older cases, `after_id` for newer ones), so that a deep page costs what the first does.
    `overdue_days`: only overdue cases (see `overdue`)."""
    qs = await queue_query(user, f, overdue_days=overdue_days, after_id=after_id, now=now)
    rows = await qs.prefetch_related("department", "possible_duplicate_of")
    more = len(rows) > f.limit
    if after_id:
        rows = rows[:f.limit][::-1]
        return Page(rows, older=rows[-1].id if rows else None,
                    newer=rows[0].id if more and rows else None)
    rows = rows[:f.limit]
    return Page(rows, older=rows[-1].id if more else None,
                newer=rows[0].id if f.before_id and rows else None)


def metrics_department(user: StaffUser) -> int | None:
    """Whose ratings the user's satisfaction figures count: a department account its own
    department's cases (0, no case, for one without a department); the centre every case."""
    if not centre(user):
        return user.department_id or 0
    return None


def day_bounds(since: date | None, until: date | None) -> tuple[datetime | None,
                                                                 datetime | None]:
    """A period of Shanghai days, both included, as UTC bounds [start, end)."""
    if since and until and since > until:
        raise Refused("invalid", _("The first day of the period is after its last day."))
    return (_shanghai(since, end=False) if since else None,
            _shanghai(until, end=True) if until else None)


def offered_statuses(user: StaffUser, status: Status) -> list[Status]:
    """The statuses `user` may move a case in `status` to (what set_status would accept).
    Dispatching is offered through a department (assign_department), not here."""
    allowed = TRANSITIONS[status] - {Status.DISPATCHED}
    if not centre(user):
        allowed = set() if status == Status.NEW else allowed & DEPARTMENT_MAY_SET
    order = list(Status)
    return sorted(allowed, key=order.index)


async def add_fix_photo(user: StaffUser, code: str, stored: StoredPhoto,
                        public_note: str | None = None) -> Photo:
    """A photo of the repair: public, shown on the case's timeline."""
    case = await visible_case(user, code)
    if case.status not in OPEN_STATUSES:
        raise Refused("invalid", _("Photos of the repair can be added only to an open case."))
    async with in_transaction() as conn:
        photo = await Photo.create(case_id=case.id, path=stored.path, width=stored.width,
                                   height=stored.height, size=stored.size,
                                   content_type=stored.content_type, kind="fix", using_db=conn)
        await cases.add_event(case, "photo", conn, actor=user.username, public=True,
                              public_note=public_note or None,
                              data={"photo": photo.id, "kind": "fix"})
    return photo


async def visible_photo(user: StaffUser, photo_id: int) -> Photo:
    photo = await Photo.get_or_none(id=photo_id).prefetch_related("case")
    if photo is None or not can_see(user, photo.case):
        raise Refused("not_found", _("No such photo."))
    return photo
