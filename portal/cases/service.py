"""The case lifecycle: codes, transitions, events, subscriptions, department, merge and unmerge.

Every function here runs inside the caller's transaction when given `conn`-bound models, and
writes a CaseEvent for every change, so that feedback can deliver it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from portal.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseEvent,
    CaseKey,
    Department,
    Outbox,
    Person,
    Photo,
    Report,
    Status,
    Subscription,
)
from portal.i18n import _

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Allowed status transitions (DESIGN.md, "Case lifecycle"). `merged` is reached only by merge.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.ACCEPTED, Status.REJECTED}),
    Status.ACCEPTED: frozenset({Status.DISPATCHED, Status.IN_PROGRESS, Status.REJECTED}),
    Status.DISPATCHED: frozenset({Status.IN_PROGRESS, Status.ACCEPTED, Status.RESOLVED}),
    Status.IN_PROGRESS: frozenset({Status.RESOLVED, Status.DISPATCHED}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.IN_PROGRESS}),
    Status.CLOSED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.MERGED: frozenset(),
}


# How a status reads in a message (GLOSSARY.md, "Case statuses").
STATUS_LABELS: dict[Status, str] = {
    Status.NEW: _("received"),
    Status.ACCEPTED: _("accepted"),
    Status.DISPATCHED: _("dispatched"),
    Status.IN_PROGRESS: _("in progress"),
    Status.RESOLVED: _("resolved"),
    Status.CLOSED: _("closed"),
    Status.REJECTED: _("not accepted"),
    Status.MERGED: _("merged"),
}


class CaseError(Exception):
    """A change the lifecycle does not allow; the message says why.

    `message` is an English msgid formatted with `params`; str() gives the English text and
    `translated(gettext)` the person's language (statuses by their GLOSSARY names).
    """

    def __init__(self, message: str, **params):
        self.message = message
        self.params = params
        super().__init__(self.translated(lambda m: m))

    def translated(self, t) -> str:
        if not self.params:
            return t(self.message)
        return t(self.message).format(**{
            k: t(STATUS_LABELS[v]) if isinstance(v, Status) else v
            for k, v in self.params.items()
        })


def utcnow() -> datetime:
    return datetime.now(UTC)


async def next_code(now: datetime, conn) -> str:
    """GL-YYYYMMDD-NNNN, numbered per Shanghai day."""
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    # One statement: the day's first case creates the counter, every later one counts on.
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    rows = await conn.execute_query_dict(
        f"INSERT INTO daily_counter (day, value) VALUES ({mark}, 1) ON CONFLICT (day) "
        "DO UPDATE SET value = daily_counter.value + 1 RETURNING value",
        [day],
    )
    return f"GL-{day}-{rows[0]['value']:04d}"


def announced(kind: str, public: bool, data: dict | None) -> bool:
    """Whether subscribers hear about an event (a progress update): status changes, public
    notes, merges and photos of the repair. New reports and staff-only events are not news."""
    if not public:
        return False
    if kind == "photo":
        return (data or {}).get("kind") == "fix"
    return kind in ("status", "note", "merged")


async def add_event(case: Case, kind: str, conn, *, at: datetime | None = None,
                    actor: str = "system", public: bool = True, status_from: str | None = None,
                    status_to: str | None = None, public_note: str | None = None,
                    internal_note: str | None = None, data: dict | None = None) -> CaseEvent:
    at = at or utcnow()
    event = await CaseEvent.create(
        case=case, kind=kind, actor=actor, public=public, status_from=status_from,
        status_to=status_to, public_note=public_note, internal_note=internal_note,
        data=data or {}, created_at=at, using_db=conn,
    )
    if announced(kind, public, data):
        await Outbox.create(event=event, case_id=case.id, created_at=at, using_db=conn)
    return event


async def subscribe(case: Case, person: Person, identity: str, conn,
                    reason: str = "reporter") -> None:
    # One statement, written out (on the intake's hot path): a person already subscribed
    # (unique case and person) stays as they were.
    marks = "$1, $2, $3, $4, $5" if conn.capabilities.dialect == "postgres" else "?, ?, ?, ?, ?"
    await conn.execute_query(
        "INSERT INTO subscription (identity, reason, created_at, case_id, person_id) "
        f"VALUES ({marks}) ON CONFLICT DO NOTHING",
        [identity, reason, utcnow(), case.id, person.id])


async def change_status(case_id: int, to: Status | str, *, actor: str,
                        public_note: str | None = None, internal_note: str | None = None,
                        reason: str | None = None, now: datetime | None = None,
                        data: dict | None = None) -> Case:
    to = Status(to)
    now = now or utcnow()
    async with in_transaction() as conn:
        case = await Case.select_for_update().using_db(conn).get(id=case_id)
        if to not in TRANSITIONS[case.status]:
            raise CaseError(_("A case that is {status} cannot become {to}."),
                            status=case.status, to=to)
        if to == Status.REJECTED and not (reason or public_note):
            raise CaseError(_("Give the reporter a reason when a case is not accepted."))
        before = case.status
        case.status = to
        if to == Status.REJECTED:
            case.rejected_reason = reason or public_note
        if to in (Status.CLOSED, Status.REJECTED):
            case.closed_at = now
        # Staff acted on the case: a review a poor rating asked for is done.
        case.review_requested_at = None
        await case.save(using_db=conn)
        await add_event(case, "status", conn, at=now, actor=actor, status_from=before.value,
                        status_to=to.value, public_note=public_note or reason,
                        internal_note=internal_note, data=data)
    return case


async def add_note(case_id: int, *, actor: str, public_note: str | None,
                   internal_note: str | None, now: datetime | None = None) -> CaseEvent:
    if not (public_note or internal_note):
        raise CaseError(_("Write a public or an internal note."))
    async with in_transaction() as conn:
        case = await Case.get_or_none(id=case_id).using_db(conn)
        if case is None:
            raise CaseError(_("No such case."))
        # Staff acted on the case: a review a poor rating asked for is done.
        await Case.filter(id=case_id).using_db(conn).update(review_requested_at=None)
        return await add_event(case, "note", conn, at=now, actor=actor,
                               public=bool(public_note), public_note=public_note,
                               internal_note=internal_note)


async def assign_department(case_id: int, department_id: int | None, *, actor: str,
                            dispatch: bool = True, now: datetime | None = None) -> Case:
    """Set the responsible department.

    With `dispatch`, a case the lifecycle lets become dispatched (accepted, or in progress
    at another department) is dispatched to it; a new case keeps waiting for acceptance.
    Taking a dispatched case back (no department) returns it to accepted: it is no longer
    dispatched to anyone.
    """
    now = now or utcnow()
    async with in_transaction() as conn:
        case = await Case.select_for_update().using_db(conn).get(id=case_id)
        if case.status not in OPEN_STATUSES:
            raise CaseError(_("A case that is {status} cannot be assigned."), status=case.status)
        dept = None
        if department_id is not None:
            dept = await Department.get_or_none(id=department_id).using_db(conn)
            if dept is None:
                raise CaseError(_("No such department."))
        case.department = dept
        await add_event(case, "department", conn, at=now, actor=actor,
                        data={"department": dept.code if dept else None})
        if dispatch and dept and Status.DISPATCHED in TRANSITIONS[case.status]:
            before = case.status
            case.status = Status.DISPATCHED
            await add_event(case, "status", conn, at=now, actor=actor,
                            status_from=before.value, status_to=Status.DISPATCHED.value)
        elif dept is None and case.status == Status.DISPATCHED:
            case.status = Status.ACCEPTED
            await add_event(case, "status", conn, at=now, actor=actor,
                            status_from=Status.DISPATCHED.value, status_to=Status.ACCEPTED.value)
        await case.save(using_db=conn)
    return case


async def _recount(case: Case, conn) -> None:
    case.report_count = await Report.filter(case_id=case.id).using_db(conn).count()
    case.reporter_count = len(set(
        await Report.filter(case_id=case.id).using_db(conn).values_list("person_id", flat=True)
    ))


async def merge_cases(source_id: int, target_id: int, *, actor: str,
                      now: datetime | None = None) -> Case:
    """Move every report, photo and subscriber of `source` into `target`; source becomes merged."""
    if source_id == target_id:
        raise CaseError(_("A case cannot be merged into itself."))
    now = now or utcnow()
    async with in_transaction() as conn:
        ids = sorted((source_id, target_id))
        # Locked in id order, as everywhere, so two merges cannot deadlock.
        locked = {c.id: c for c in await Case.select_for_update().using_db(conn)
                  .filter(id__in=ids).order_by("id")}
        if len(locked) != 2:
            raise CaseError(_("No such case."))
        source, target = locked[source_id], locked[target_id]
        if source.status == Status.MERGED:
            raise CaseError(_("{code} is already merged."), code=source.code)
        if source.status not in OPEN_STATUSES:
            raise CaseError(_("{code} is {status} and cannot be merged."), code=source.code,
                            status=source.status)
        if target.status not in OPEN_STATUSES:
            raise CaseError(_("{code} is {status} and cannot take reports."), code=target.code,
                            status=target.status)
        await Report.filter(case_id=source.id).using_db(conn).update(case_id=target.id)
        await Photo.filter(case_id=source.id).using_db(conn).update(case_id=target.id)
        for sub in await Subscription.filter(case_id=source.id).using_db(conn):
            clash = await Subscription.filter(case_id=target.id, person_id=sub.person_id) \
                .using_db(conn).exists()
            if clash:
                await sub.delete(using_db=conn)
            else:
                sub.case_id = target.id
                await sub.save(using_db=conn)
        # Address keys lead later address-only reports to the case that lives on.
        for key in await CaseKey.filter(case_id=source.id).using_db(conn) \
                .values_list("key", flat=True):
            await CaseKey.get_or_create(key=key, case_id=target.id, using_db=conn)
        # A "possible duplicate of" flag pointing at the source now points at the target.
        await Case.filter(possible_duplicate_of_id=source.id).exclude(id=target.id) \
            .using_db(conn).update(possible_duplicate_of_id=target.id)
        if target.possible_duplicate_of_id == source.id:
            target.possible_duplicate_of_id = None
        if target.lat is None and source.lat is not None:
            target.lat, target.lng, target.cell = source.lat, source.lng, source.cell
        if not target.address and source.address:
            target.address = source.address
        before = source.status
        source.status = Status.MERGED
        source.master_id = target.id
        source.possible_duplicate_of_id = None
        target.fingerprint = (target.fingerprint + " " + source.fingerprint)[:1000]
        target.first_reported_at = min(target.first_reported_at, source.first_reported_at)
        target.last_reported_at = max(target.last_reported_at, source.last_reported_at)
        await _recount(target, conn)
        await _recount(source, conn)
        await source.save(using_db=conn)
        await target.save(using_db=conn)
        await add_event(source, "merged", conn, at=now, actor=actor, status_from=before.value,
                        status_to=Status.MERGED.value, data={"into": target.code})
        await add_event(target, "merged", conn, at=now, actor=actor,
                        data={"from": source.code, "reports": target.report_count})
    return target


async def unmerge_report(report_id: int, *, actor: str, now: datetime | None = None) -> Case:
    """Take one report out of its case into a case of its own (staff correcting a merge)."""
    from portal.intake.matching import case_fields_for_report

    now = now or utcnow()
    async with in_transaction() as conn:
        found = await Report.get_or_none(id=report_id).using_db(conn)
        if found is None:
            raise CaseError(_("No such report."))
        # Lock the case first, then the report (the order merge_cases takes them in).
        old = await Case.select_for_update().using_db(conn).get(id=found.case_id)
        report = await Report.select_for_update().using_db(conn).get(id=report_id)
        if report.case_id != old.id:
            raise CaseError(_("The case changed meanwhile; please try again."))
        if await Report.filter(case_id=old.id).using_db(conn).count() <= 1:
            raise CaseError(_("The report is the only one of its case; there is nothing to "
                              "unmerge."))
        case = await Case.create(
            code=await next_code(now, conn), category=report.category, status=Status.NEW,
            first_reported_at=report.received_at, last_reported_at=report.received_at,
            **case_fields_for_report(report), using_db=conn,
        )
        report.case_id = case.id
        report.join = "unmerged"
        await report.save(using_db=conn)
        await Photo.filter(report_id=report.id).using_db(conn).update(case_id=case.id)
        for key in case.address_keys.split("|"):
            if key:
                await CaseKey.get_or_create(key=key, case_id=case.id, using_db=conn)
        still_there = await Report.filter(case_id=old.id, person_id=report.person_id) \
            .using_db(conn).exists()
        sub = await Subscription.get_or_none(case_id=old.id, person_id=report.person_id) \
            .using_db(conn)
        if sub and not still_there:
            sub.case_id = case.id
            await sub.save(using_db=conn)
        else:
            await Subscription.create(case=case, person_id=report.person_id,
                                      identity=report.identity, using_db=conn)
        await _recount(old, conn)
        await _recount(case, conn)
        await old.save(using_db=conn)
        await case.save(using_db=conn)
        await add_event(old, "unmerged", conn, at=now, actor=actor, public=False,
                        data={"report": report.id, "to": case.code})
        await add_event(case, "created", conn, at=now, actor=actor, status_to=Status.NEW.value,
                        data={"unmerged_from": old.code})
    return case
