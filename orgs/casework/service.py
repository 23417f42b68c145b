"""Cases worked by organisations: assign (the grid centre), the organisation's steps on its
case, unassign, and complaints about an organisation recorded by staff.

The case lifecycle stays `portal.cases.service`'s: every change here is a case event written
through it, so residents following the case see who works on it and what they did.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs import notify
from orgs.accounts.service import identity_key
from orgs.assessment.service import suspended_from_bidding
from orgs.casework.models import CaseAssignment, Complaint
from orgs.registry.models import Membership, Organisation, OrgStatus
from orgs.registry.service import OrgError, agreement_covers, day_of
from orgs.tenders.models import Contract, ContractStatus
from portal.cases import service as cases
from portal.cases.models import Case, Person, Status, Subscription
from portal.cases.service import utcnow
from portal.i18n import _
from portal.intake.text import CONTROL_CHARS
from portal.staff.casework import CASE_CODE, DEPARTMENT_MAY_SET, normalise_code

# Subscription.reason of an organisation's admins on the case it works.
SUBSCRIBED_AS = "organisation"
# The steps an organisation takes on its case: the department's, bar sending it back.
ORG_MAY_SET = DEPARTMENT_MAY_SET & {Status.IN_PROGRESS, Status.RESOLVED}
# Cases an organisation can be given: accepted ones, and ones already being worked on.
ASSIGNABLE = (Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS)
TEXT_MIN, TEXT_MAX = 2, 2000


def clean_text(value: str) -> str:
    return CONTROL_CHARS.sub(" ", value or "").strip()


async def case_by_code(code: str) -> Case:
    code = normalise_code(code or "")
    case = await Case.get_or_none(code=code) if CASE_CODE.match(code) else None
    if case is None:
        raise OrgError(_("There is no such case."), 404)
    return case


async def current(case_id: int) -> CaseAssignment | None:
    return await CaseAssignment.get_or_none(active_key=case_id).prefetch_related("organisation")


async def _admins(org_id: int, conn) -> list[tuple[int, int]]:
    """(account id, person id) of the organisation's active admins."""
    return await Membership.filter(organisation_id=org_id, status="active", role="admin") \
        .using_db(conn).values_list("account_id", "account__person_id")


async def _end(case: Case, conn, now: datetime) -> CaseAssignment | None:
    """End the case's current assignment, and the subscriptions it gave."""
    previous = await CaseAssignment.get_or_none(active_key=case.id).using_db(conn)
    if previous is None:
        return None
    await CaseAssignment.filter(id=previous.id).using_db(conn).update(active_key=None,
                                                                       ended_at=now)
    await Subscription.filter(case_id=case.id, reason=SUBSCRIBED_AS).using_db(conn).delete()
    await notify.to_org(
        previous.organisation_id, topic="case.unassigned", ref=f"case.unassigned:{previous.id}",
        title=_("Case {case} was taken back"),
        body=_("The grid centre took case {case} back from your organisation. You no longer "
               "see its details."),
        url="/org/cases", code=case.code, conn=conn, case=case.code)
    return previous


async def assign(case_id: int, org_id: int, *, actor: str, contract_id: int | None = None,
                 now: datetime | None = None) -> CaseAssignment:
    """Give the case to a verified organisation with a current data-processing agreement (it
    will see residents' reports). An accepted case becomes dispatched; one already worked on
    changes hands. The organisation's admins follow the case and get a notice."""
    now = now or utcnow()
    org = await Organisation.get_or_none(id=org_id)
    if org is None:
        raise OrgError(_("There is no such organisation."), 404)
    if org.status != OrgStatus.VERIFIED:
        raise OrgError(_("{org} is not verified: only a verified organisation can work on "
                         "cases."), 409, org=org.name)
    # An organisation its assessment suspended from bidding takes no new work meanwhile.
    suspension = await suspended_from_bidding(org.id, now)
    if suspension is not None:
        raise OrgError(_("{org} is suspended from new work until {day}."), 409, org=org.name,
                       day=day_of(suspension.ends_at).isoformat())
    today = day_of(now)
    if not await agreement_covers(org, today, today):
        raise OrgError(_("{org} has no current data-processing agreement: record one before "
                         "it sees residents' reports."), 409, org=org.name)
    if contract_id is not None and not await Contract.filter(
            id=contract_id, organisation_id=org.id, status=ContractStatus.ACTIVE).exists():
        raise OrgError(_("That is not an active contract of {org}."), 422, org=org.name)
    async with in_transaction() as conn:
        case = await Case.select_for_update().using_db(conn).get_or_none(id=case_id)
        if case is None:
            raise OrgError(_("There is no such case."), 404)
        status = Status(case.status)
        if status == Status.NEW:
            raise OrgError(_("Accept case {case} before giving it to an organisation."), 409,
                           case=case.code)
        if status not in ASSIGNABLE:
            raise OrgError(_("Case {case} is {state}: it cannot be given to an organisation."),
                           409, case=case.code, state=cases.STATUS_LABELS[status])
        held = await CaseAssignment.get_or_none(active_key=case.id).using_db(conn)
        if held is not None and held.organisation_id == org.id:
            raise OrgError(_("{org} already works on case {case}."), 409, org=org.name,
                           case=case.code)
        await _end(case, conn, now)
        try:
            assignment = await CaseAssignment.create(
                case_id=case.id, organisation_id=org.id, contract_id=contract_id,
                assigned_at=now, assigned_by=actor[:100], active_key=case.id, using_db=conn)
        except IntegrityError as exc:
            raise OrgError(_("The case changed meanwhile; please try again."), 409) from exc
        await cases.add_event(case, "organisation", conn, at=now, actor=actor,
                              data={"organisation": org.name, "organisation_id": org.id})
        if status != Status.DISPATCHED and Status.DISPATCHED in cases.TRANSITIONS[status]:
            case.status = Status.DISPATCHED
            await case.save(using_db=conn, update_fields=["status"])
            await cases.add_event(case, "status", conn, at=now, actor=actor,
                                  status_from=status.value, status_to=Status.DISPATCHED.value)
        admins = await _admins(org.id, conn)
        people = {p.id: p for p in await Person.filter(id__in=[p for _a, p in admins])
                  .using_db(conn)}
        for account_id, person_id in admins:
            await cases.subscribe(case, people[person_id], identity_key(account_id), conn,
                                  reason=SUBSCRIBED_AS)
        await notify.to_org(
            org.id, topic="case.assigned", ref=f"case.assigned:{assignment.id}",
            title=_("Case {case} was given to your organisation"),
            body=_("The grid centre asks {org} to work on case {case}. Open it to see what "
                   "residents reported, and update its status as you go."),
            url=f"/org/cases/{case.code}", code=case.code, conn=conn, case=case.code,
            org=org.name)
    return assignment


async def unassign(case_id: int, *, actor: str, now: datetime | None = None) -> CaseAssignment:
    """Take the case back from its organisation. A dispatched case no department holds
    returns to accepted: no one works on it any more."""
    now = now or utcnow()
    async with in_transaction() as conn:
        case = await Case.select_for_update().using_db(conn).get_or_none(id=case_id)
        if case is None:
            raise OrgError(_("There is no such case."), 404)
        previous = await _end(case, conn, now)
        if previous is None:
            raise OrgError(_("No organisation works on case {case}."), 409, case=case.code)
        await cases.add_event(case, "organisation", conn, at=now, actor=actor,
                              data={"organisation": None})
        if case.status == Status.DISPATCHED and case.department_id is None:
            case.status = Status.ACCEPTED
            await case.save(using_db=conn, update_fields=["status"])
            await cases.add_event(case, "status", conn, at=now, actor=actor,
                                  status_from=Status.DISPATCHED.value,
                                  status_to=Status.ACCEPTED.value)
    return previous


async def org_case(org_id: int, code: str) -> Case:
    """A case the organisation works on now; any other case is not found (the same answer)."""
    case = await case_by_code(code)
    if not await CaseAssignment.filter(active_key=case.id, organisation_id=org_id).exists():
        raise OrgError(_("There is no such case."), 404)
    return case


async def set_status(org_id: int, username: str, code: str, to: str, public_note: str) -> Case:
    """The organisation takes its case up or resolves it, with a note residents read. A step
    the lifecycle refuses raises CaseError."""
    case = await org_case(org_id, code)
    if to not in Status._value2member_map_ or Status(to) not in ORG_MAY_SET:
        raise OrgError(_("Choose in progress or resolved."), 422)
    note = clean_text(public_note)
    if len(note) > TEXT_MAX or (Status(to) == Status.RESOLVED and len(note) < TEXT_MIN):
        raise OrgError(_("Tell residents what was done (2 to 2000 characters)."), 422)
    async with in_transaction() as conn:
        # The case's lock, which assign and unassign take too: the assignment stays current
        # until the step is written (change_status nests in this transaction).
        await Case.select_for_update().using_db(conn).get(id=case.id)
        if not await CaseAssignment.filter(active_key=case.id, organisation_id=org_id) \
                .using_db(conn).exists():
            raise OrgError(_("There is no such case."), 404)
        return await cases.change_status(case.id, Status(to),
                                         actor=f"org:{org_id}:{username}",
                                         public_note=note or None)


async def record_complaint(org_id: int, text: str, *, actor: str, case_code: str = "",
                           now: datetime | None = None) -> Complaint:
    org = await Organisation.get_or_none(id=org_id)
    if org is None:
        raise OrgError(_("There is no such organisation."), 404)
    text = clean_text(text)
    if not TEXT_MIN <= len(text) <= TEXT_MAX:
        raise OrgError(_("Write the complaint (2 to 2000 characters)."), 422)
    case = None
    if case_code.strip():
        try:
            case = await case_by_code(case_code)
        except OrgError:
            raise OrgError(_("There is no case {case}."), 422,
                           case=normalise_code(case_code)[:40]) from None
    return await Complaint.create(organisation_id=org.id, case=case, text=text,
                                  recorded_by=actor[:100], recorded_at=now or utcnow())
