"""Tenders from the draft to the cancellation: create, publish (the rules of §6.5), cancel,
re-tender an unsuccessful one, assign evaluators. Every published change writes its OCDS
release in the same transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs import notify
from orgs.registry.models import Area
from orgs.registry.service import OrgError
from orgs.service_types import BY_KEY as SERVICE_TYPES
from orgs.tenders import ocds, seal
from orgs.tenders.models import (
    Award,
    AwardStatus,
    Bid,
    BidStatus,
    Tender,
    TenderCriterion,
    TenderEvaluator,
    TenderStatus,
)
from portal.cases.models import Case
from portal.cases.service import SHANGHAI, utcnow
from portal.i18n import _
from portal.settings import Settings
from portal.staff.models import Role, StaffUser

CODE = re.compile(r"^GT-[0-9]{4}-[0-9]{5}$")
PROCEDURES = {"tender": _("Open tender (招标)"), "negotiation": _("Competitive negotiation (竞争性磋商)")}
METHODS = {"lowest_price": _("Lowest price"), "comprehensive": _("Comprehensive scoring")}
STATUS_LABELS = {TenderStatus.PLANNING: _("draft"), TenderStatus.ACTIVE: _("tendering"),
                 TenderStatus.CANCELLED: _("cancelled"),
                 TenderStatus.UNSUCCESSFUL: _("unsuccessful"),
                 TenderStatus.COMPLETE: _("complete")}
MAX_CRITERIA = 10
ONE = Decimal("1")


@dataclass
class Draft:
    title: str
    description: str
    service_type: str
    area_id: int
    budget: Decimal
    contract_start: date
    contract_end: date
    procedure: str
    method: str
    deadline: datetime
    price_weight: Decimal | None = None
    long_period_reason: str = ""
    handles_resident_data: bool = False
    # (name, description, weight as a share of 1)
    criteria: list[tuple[str, str, Decimal]] = field(default_factory=list)
    source_case: str = ""


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


async def next_code(conn, now: datetime) -> str:
    """GT-YYYY-NNNNN, numbered per Shanghai year, in one race-free statement."""
    name = f"GT-{now.astimezone(SHANGHAI).year}"
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    rows = await conn.execute_query_dict(
        f"INSERT INTO org_counter (name, value) VALUES ({mark}, 1) ON CONFLICT (name) "
        "DO UPDATE SET value = org_counter.value + 1 RETURNING value", [name])
    return f"{name}-{rows[0]['value']:05d}"


async def by_code(code: str) -> Tender:
    tender = await Tender.get_or_none(code=code) if CODE.match(code or "") else None
    if tender is None:
        raise OrgError(_("There is no such tender."), 404)
    return tender


def _check_draft(d: Draft) -> None:
    if not 1 <= len(d.title.strip()) <= 120:
        raise OrgError(_("Give a title of 1 to 120 characters."), 422)
    if not 1 <= len(d.description.strip()) <= 20000:
        raise OrgError(_("Give a description of 1 to 20,000 characters."), 422)
    if d.service_type not in SERVICE_TYPES:
        raise OrgError(_("There is no such service type."), 422)
    if d.procedure not in PROCEDURES or d.method not in METHODS:
        raise OrgError(_("Choose the procedure and the evaluation method from the list."), 422)
    if len(d.criteria) > MAX_CRITERIA:
        raise OrgError(_("At most {n} criteria."), 422, n=MAX_CRITERIA)
    for name, description, _weight in d.criteria:
        if not 1 <= len(name.strip()) <= 60 or len(description) > 2000:
            raise OrgError(_("Each criterion needs a name of 1 to 60 characters."), 422)
    if abs(d.budget) >= Decimal("1e12") or len(d.long_period_reason) > 2000:
        raise OrgError(_("A value is out of range."), 422)


async def create(d: Draft, *, actor: str, retender_of: Tender | None = None,
                 now: datetime | None = None) -> Tender:
    """A draft (planning) tender with its code. The rules are checked when it is published."""
    now = now or utcnow()
    _check_draft(d)
    if not await Area.filter(id=d.area_id).exists():
        raise OrgError(_("Choose an area from the list."), 422)
    case_id = None
    if d.source_case.strip():
        case = await Case.get_or_none(code=d.source_case.strip()[:32])
        if case is None:
            raise OrgError(_("There is no case {code}."), 422, code=d.source_case.strip()[:32])
        case_id = case.id
    async with in_transaction() as conn:
        tender = await Tender.create(
            code=await next_code(conn, now), title=d.title.strip(),
            description=d.description.strip(), service_type=d.service_type, area_id=d.area_id,
            budget=d.budget, contract_start=d.contract_start, contract_end=d.contract_end,
            long_period_reason=d.long_period_reason.strip() or None, procedure=d.procedure,
            method=d.method,
            price_weight=d.price_weight if d.method == "comprehensive" else None,
            handles_resident_data=d.handles_resident_data, deadline=d.deadline,
            source_case_id=case_id, retender_of_id=retender_of.id if retender_of else None,
            created_by=actor[:64], created_at=now, updated_at=now, using_db=conn)
        for position, (name, description, weight) in enumerate(d.criteria, start=1):
            await TenderCriterion.create(tender_id=tender.id, position=position,
                                         name=name.strip(), description=description.strip(),
                                         weight=weight, using_db=conn)
    return tender


def publish_problem(tender: Tender, criteria: list[TenderCriterion], settings: Settings,
                    now: datetime) -> OrgError | None:
    """Why the tender may not be published yet, or None."""
    if tender.budget <= 0:
        return OrgError(_("The budget must be more than zero."), 422)
    if tender.contract_end < tender.contract_start:
        return OrgError(_("The contract cannot end before it starts."), 422)
    one_year = _add_years(tender.contract_start, 1) - timedelta(days=1)
    if tender.contract_end > _add_years(tender.contract_start, 3) - timedelta(days=1):
        return OrgError(_("A contract may run three years at most."), 422)
    if tender.contract_end > one_year and not (tender.long_period_reason or "").strip():
        return OrgError(_("A contract longer than a year needs the reason."), 422)
    if tender.deadline <= now + timedelta(days=settings.tender_min_bidding_days):
        return OrgError(_("The bid deadline must be in the future (at least {days} days "
                          "ahead)."), 422, days=settings.tender_min_bidding_days)
    if tender.method == "lowest_price":
        if criteria:
            return OrgError(_("Lowest price evaluation has no scoring criteria."), 422)
    else:
        weight = tender.price_weight
        if weight is None or not criteria:
            return OrgError(_("Comprehensive scoring needs a price weight and at least one "
                              "criterion."), 422)
        if any(c.weight <= 0 for c in criteria):
            return OrgError(_("Every criterion needs a weight above zero."), 422)
        total = Decimal(weight) + sum((Decimal(c.weight) for c in criteria), Decimal(0))
        if total != ONE:
            return OrgError(_("The price weight and the criteria weights must add up to "
                              "exactly 100% (now {total}%)."), 422,
                            total=f"{total * 100:.2f}")
        if tender.procedure == "tender" and not Decimal("0.10") <= weight <= ONE:
            return OrgError(_("In an open tender the price weight must be at least 10%."), 422)
        if tender.procedure == "negotiation" and not Decimal("0.10") <= weight <= Decimal("0.30"):
            return OrgError(_("In a competitive negotiation the price weight must be between "
                              "10% and 30%."), 422)
    if not seal.key_present(settings):
        return OrgError(_("The bid seal key is missing or wrong: bids could not be sealed."),
                        409)
    return None


async def publish(tender: Tender, settings: Settings, *, actor: str,
                  now: datetime | None = None) -> Tender:
    now = now or utcnow()
    if tender.status != TenderStatus.PLANNING:
        raise OrgError(_("Only a draft can be published."), 409)
    problem = publish_problem(tender, await TenderCriterion.filter(tender_id=tender.id),
                              settings, now)
    if problem:
        raise problem
    async with in_transaction() as conn:
        moved = await Tender.filter(id=tender.id, status=TenderStatus.PLANNING).using_db(conn) \
            .update(status=TenderStatus.ACTIVE, published_at=now, updated_at=now)
        if not moved:
            raise OrgError(_("Someone else changed this tender just now: please look again."),
                           409)
        tender = await Tender.get(id=tender.id).using_db(conn)
        await ocds.release(conn, settings, tender, "tender", now)
    return tender


async def cancel(tender: Tender, settings: Settings, *, actor: str, reason: str,
                 now: datetime | None = None) -> Tender:
    """A draft or an open tender ends with a reason. Sealed bids are destroyed unopened."""
    now = now or utcnow()
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > 1000:
        raise OrgError(_("Give the reason for cancelling (up to 1,000 characters)."), 422)
    was = tender.status
    if was not in (TenderStatus.PLANNING, TenderStatus.ACTIVE):
        raise OrgError(_("This tender can no longer be cancelled."), 409)
    if await Award.filter(tender_id=tender.id, status=AwardStatus.ACTIVE).exists():
        raise OrgError(_("This tender can no longer be cancelled."), 409)
    async with in_transaction() as conn:
        moved = await Tender.filter(id=tender.id, status=was).using_db(conn).update(
            status=TenderStatus.CANCELLED, status_reason=reason, cancelled_at=now,
            updated_at=now)
        if not moved:
            raise OrgError(_("Someone else changed this tender just now: please look again."),
                           409)
        await Bid.filter(tender_id=tender.id, opened_at__isnull=True).using_db(conn).update(
            sealed=None)
        tender = await Tender.get(id=tender.id).using_db(conn)
        if was == TenderStatus.ACTIVE:
            await ocds.release(conn, settings, tender, "tenderCancellation", now)
            orgs = await Bid.filter(tender_id=tender.id).exclude(
                status=BidStatus.WITHDRAWN).using_db(conn).values_list("organisation_id",
                                                                       flat=True)
            for org_id in orgs:
                await notify.to_org(
                    org_id, topic="tender.cancelled", ref=f"tender:{tender.id}:cancelled",
                    title=_("Tender {tender} was cancelled"),
                    body=_("The tender {tender} was cancelled during its evaluation: {reason}.")
                    if tender.opened_at is not None
                    else _("The tender {tender} was cancelled: {reason}. Your bid was never "
                           "opened."), url=f"/tenders/{tender.code}", code=tender.code,
                    conn=conn, reason=reason, tender=tender.code)
    return tender


async def retender(tender: Tender, *, actor: str, deadline: datetime,
                   now: datetime | None = None) -> Tender:
    """A new draft copied from an unsuccessful tender, with a new deadline."""
    if tender.status != TenderStatus.UNSUCCESSFUL:
        raise OrgError(_("Only an unsuccessful tender can be tendered again."), 409)
    criteria = await TenderCriterion.filter(tender_id=tender.id).order_by("position")
    return await create(Draft(
        title=tender.title, description=tender.description, service_type=tender.service_type,
        area_id=tender.area_id, budget=tender.budget, contract_start=tender.contract_start,
        contract_end=tender.contract_end, procedure=tender.procedure, method=tender.method,
        deadline=deadline, price_weight=tender.price_weight,
        long_period_reason=tender.long_period_reason or "",
        handles_resident_data=tender.handles_resident_data,
        criteria=[(c.name, c.description, c.weight) for c in criteria]),
        actor=actor, retender_of=tender, now=now)


async def assign_evaluator(tender: Tender, username: str, *, actor: str) -> TenderEvaluator:
    user = await StaffUser.get_or_none(username=username.strip()[:64], active=True)
    if user is None or user.role != Role.EVALUATOR:
        raise OrgError(_("There is no active evaluator with that user name."), 422)
    if tender.created_by in (user.username, f"staff:{user.username}"):
        raise OrgError(_("The creator of a tender cannot evaluate it."), 409)
    if tender.status not in (TenderStatus.PLANNING, TenderStatus.ACTIVE) or tender.finalised_at:
        raise OrgError(_("Evaluators can no longer be changed."), 409)
    try:
        return await TenderEvaluator.create(tender_id=tender.id, staff_user_id=user.id)
    except IntegrityError as exc:
        raise OrgError(_("{name} is already an evaluator of this tender."), 409,
                       name=user.username) from exc
