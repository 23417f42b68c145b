"""The discoveries sweep (every 5 minutes, DESIGN §2.4).

Pass one reads new reports by keyset (report id > the cursor, 500 at a time) and makes a
Discovery for a volunteer's report, a report filed for an organisation, or a chat report of a
member whose chat reports count for their (verified) organisation. Pass two settles
pending discoveries by their case's status (the master's, for a merged case): confirmed once
the case is accepted or later, rejected when it is rejected. A confirmed discovery that opened
its case earns the volunteer 10 points, once; a repeat or a merged report earns nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs.accounts.service import identity_key
from orgs.registry.models import Membership, OrgStatus
from orgs.volunteers.models import Discovery, SweepCursor, Volunteer
from orgs.volunteers.service import award
from portal.cases.models import Case, Person, Report, Status
from portal.cases.service import subscribe
from portal.settings import Settings

CURSOR = "discoveries"
# Reports from linked chats: a member's web reports say themselves whether they count.
CHATS = ("tg:", "wx:")
BATCH = 500
POINTS = 10
CONFIRMING = {Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS, Status.RESOLVED,
              Status.CLOSED}


def _org_of(extra) -> int | None:
    value = extra.get("organisation_id") if isinstance(extra, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


async def collect(now: datetime) -> int:
    """New discoveries from reports after the cursor. The unique report id makes a report
    count once even when two sweeps overlap."""
    cursor, _made = await SweepCursor.get_or_create(name=CURSOR, defaults={"value": 0})
    made = 0
    while True:
        reports = await Report.filter(id__gt=cursor.value).order_by("id").limit(BATCH).values(
            "id", "case_id", "person_id", "join", "extra", "identity")
        if not reports:
            return made
        people = {r["person_id"] for r in reports}
        volunteers = set(await Volunteer.filter(status="active", person_id__in=people)
                         .values_list("person_id", flat=True))
        members = dict(await Membership.filter(
            status="active", reports_for_org=True, organisation__status=OrgStatus.VERIFIED,
            account__person_id__in=people).values_list("account__person_id", "organisation_id"))
        for r in reports:
            org_id = _org_of(r["extra"])
            if org_id is None and r["identity"].startswith(CHATS):
                org_id = members.get(r["person_id"])
            if org_id is None and r["person_id"] not in volunteers:
                continue
            try:
                async with in_transaction() as conn:
                    await Discovery.create(report_id=r["id"], case_id=r["case_id"],
                                           person_id=r["person_id"], organisation_id=org_id,
                                           opened_case=r["join"] == "new", status="pending",
                                           created_at=now, using_db=conn)
                    if org_id is not None:
                        await _follow(conn, org_id, r["case_id"])
                made += 1
            except IntegrityError:
                continue  # counted already, or the organisation is gone
        cursor.value = reports[-1]["id"]
        await SweepCursor.filter(name=CURSOR, value__lt=cursor.value).update(value=cursor.value)


async def _follow(conn, org_id: int, case_id: int) -> None:
    """The organisation follows its reports: its admins are subscribed to the case."""
    admins = await Membership.filter(organisation_id=org_id, status="active", role="admin"
                                     ).using_db(conn).values_list("account_id",
                                                                  "account__person_id")
    for account_id, person_id in admins:
        await subscribe(Case(id=case_id), Person(id=person_id), identity_key(account_id), conn,
                        reason="follower")


async def settle(now: datetime) -> int:
    """Decide pending discoveries whose case has been decided. Returns how many."""
    settled = 0
    last = 0
    while True:
        pending = await Discovery.filter(status="pending", id__gt=last).order_by("id").limit(
            BATCH)
        if not pending:
            return settled
        last = pending[-1].id
        cases = {c.id: c for c in await Case.filter(id__in={d.case_id for d in pending})}
        masters = {c.id: c for c in await Case.filter(
            id__in={c.master_id for c in cases.values() if c.master_id})}
        for d in pending:
            case = cases.get(d.case_id)
            if case is None:
                continue
            merged = case.status == Status.MERGED
            decided = masters.get(case.master_id) if merged else case
            if decided is None or decided.status not in CONFIRMING | {Status.REJECTED}:
                continue
            outcome = "rejected" if decided.status == Status.REJECTED else "confirmed"
            async with in_transaction() as conn:
                if not await Discovery.filter(id=d.id, status="pending").using_db(conn).update(
                        status=outcome, decided_at=now):
                    continue
                settled += 1
                if outcome != "confirmed" or not d.opened_case or merged:
                    continue
                volunteer = await Volunteer.filter(person_id=d.person_id).using_db(conn).first()
                if volunteer is not None:
                    await award(conn, d.person_id, "discovery", f"report:{d.report_id}",
                                POINTS, volunteer.home_area_id, now)


async def discoveries(settings: Settings) -> int:
    now = datetime.now(UTC)
    return await collect(now) + await settle(now)
