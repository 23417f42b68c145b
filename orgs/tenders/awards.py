"""After the evaluation (DESIGN §2.5): the award, the contract and its milestones.

The first-ranked bid's award is pending until an operator confirms it, which completes the
tender, makes the contract and tells every bidder the result. Cancelling a pending award passes
it to the next rank. Milestones are reported on by the organisation and decided by an
operator; the overdue sweep marks those past their due day as not met.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from tortoise.transactions import in_transaction

from orgs import notify, web
from orgs.accounts.models import Account
from orgs.assessment.service import suspended_from_bidding
from orgs.registry.models import Organisation, OrgStatus
from orgs.registry.service import OrgError, agreement_covers, has_current_training, need_centre
from orgs.tenders import ocds
from orgs.tenders.models import (
    Award,
    AwardStatus,
    Bid,
    BidResult,
    BidStatus,
    Contract,
    ContractStatus,
    Milestone,
    MilestonePhoto,
    MilestoneReport,
    MilestoneStatus,
    Tender,
    TenderStatus,
    TieDraw,
)
from orgs.tenders.scoring import REASON_CHARS
from portal.cases.service import SHANGHAI
from portal.i18n import _
from portal.photos import StoredPhoto
from portal.settings import Settings
from portal.staff.models import StaffUser

MAX_PHOTOS = 4
REPORT_CHARS = 4000
TITLE_CHARS = 120
DESCRIPTION_CHARS = 2000
MAX_MILESTONES = 50
REPORT_DECISIONS = {"accepted": MilestoneStatus.MET, "partial": MilestoneStatus.PARTIALLY_MET,
                    "rejected": None}
# The tender.result notice: (method, outcome, decided by a draw) → body.
RESULT_BODIES = {
    ("comprehensive", "won", False): _(
        "Your bid won tender {tender}: ranked first with a total of {total}."),
    ("comprehensive", "won", True): _(
        "Your bid won tender {tender}: ranked first with a total of {total}. Tied bids were "
        "ordered by the public draw, seed {seed}."),
    ("comprehensive", "lost", False): _(
        "Tender {tender}: your bid ranked {rank} of {count} with a total of {total}. The winner "
        "is {winner} with {winner_total}."),
    ("comprehensive", "lost", True): _(
        "Tender {tender}: your bid ranked {rank} of {count} with a total of {total}. The winner "
        "is {winner} with {winner_total}. Tied bids were ordered by the public draw, seed "
        "{seed}."),
    ("lowest_price", "won", False): _(
        "Your bid won tender {tender}: the lowest valid price, {total} yuan."),
    ("lowest_price", "won", True): _(
        "Your bid won tender {tender}: the lowest valid price, {total} yuan. Tied bids were "
        "ordered by the public draw, seed {seed}."),
    ("lowest_price", "lost", False): _(
        "Tender {tender}: your bid ranked {rank} of {count} at {total} yuan. The winner is "
        "{winner} at {winner_total} yuan."),
    ("lowest_price", "lost", True): _(
        "Tender {tender}: your bid ranked {rank} of {count} at {total} yuan. The winner is "
        "{winner} at {winner_total} yuan. Tied bids were ordered by the public draw, seed "
        "{seed}."),
}
UNRANKED_BODY = _("Tender {tender}: your bid was disqualified and not ranked. The winner is "
                  "{winner}.")


def _amount(value) -> dict:
    return {"amount": float(value), "currency": "CNY"}


def _party(org: Organisation) -> dict:
    return {"id": f"CN-USCC-{org.uscc}", "name": org.name}


async def _publish(conn, settings: Settings, tender: Tender, tag: str, now: datetime) -> None:
    """The OCDS release of an award, contract or milestone change: ocds.release writes the
    tender part, and the post-award parts public from then on (§5.4) are added before the
    transaction commits: bid details without content, the awards and the contracts."""
    tender = await Tender.get(id=tender.id).using_db(conn)
    made = await ocds.release(conn, settings, tender, tag, now)
    bids = await Bid.filter(tender_id=tender.id, status__in=(
        BidStatus.VALID, BidStatus.DISQUALIFIED)).using_db(conn).prefetch_related("organisation")
    orgs = {b.organisation_id: b.organisation for b in bids}
    awards = await Award.filter(tender_id=tender.id).using_db(conn).order_by("id")
    contracts = await Contract.filter(tender_id=tender.id).using_db(conn).order_by("id")
    parties = [{**_party(o), "identifier": {"scheme": "CN-USCC", "id": o.uscc,
                                            "legalName": o.name},
                "roles": ["tenderer"] + (["supplier"] if any(
                    a.organisation_id == o.id and a.status == AwardStatus.ACTIVE
                    for a in awards) else [])} for o in orgs.values()]
    data = made.data
    data["parties"] = parties + data["parties"]
    data["tender"]["numberOfTenderers"] = len(orgs)
    data["tender"]["tenderers"] = [_party(o) for o in orgs.values()]
    data["bids"] = {"details": [
        {"id": f"{tender.code}-B{b.id}", "date": ocds.stamp(b.submitted_at or b.opened_at),
         "status": b.status.value, "tenderers": [_party(b.organisation)],
         "value": _amount(b.price)} for b in bids if b.price is not None]}
    data["awards"] = [
        {"id": f"{tender.code}-A{a.id}", "status": a.status.value,
         "date": ocds.stamp(a.decided_at or a.created_at), "value": _amount(a.value),
         "suppliers": [_party(orgs[a.organisation_id])], "relatedBid": f"{tender.code}-B{a.bid_id}"}
        for a in awards]
    data["contracts"] = []
    for c in contracts:
        milestones = await Milestone.filter(contract_id=c.id).using_db(conn).order_by("position")
        contract = {
            "id": f"{tender.code}-C{c.id}", "awardID": f"{tender.code}-A{c.award_id}",
            "status": c.status.value, "value": _amount(c.value),
            "period": {"startDate": ocds._local(c.period_start),
                       "endDate": ocds._local(c.period_end, end=True)},
            "implementation": {"milestones": [
                {"id": f"M{m.position}", "title": m.title, "type": "delivery",
                 "dueDate": ocds._local(m.due_date, end=True), "status": m.status.value,
                 "dateModified": ocds.stamp(m.date_modified),
                 **({"dateMet": ocds.stamp(m.date_met)} if m.date_met else {})}
                for m in milestones]}}
        if c.date_signed:
            contract["dateSigned"] = ocds.stamp(c.date_signed)
        data["contracts"].append(contract)
    made.data = data
    await made.save(using_db=conn, update_fields=["data"])


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_CHARS:
        raise OrgError(_("Please give a reason of at most {n} characters."), 422,
                       n=REASON_CHARS)
    return reason


async def ineligible(tender: Tender, org: Organisation, now: datetime) -> str | None:
    """Why the organisation cannot take the contract now (a msgid), or None."""
    if org.status != OrgStatus.VERIFIED:
        return _("The winner is no longer a verified organisation.")
    if await suspended_from_bidding(org.id, now):
        return _("The winner is suspended from bidding after its assessments.")
    if not await has_current_training(org, tender.service_type, now):
        return _("The winner holds no current training for this service.")
    if tender.handles_resident_data and not await agreement_covers(
            org, tender.contract_start, tender.contract_end):
        return _("The winner has no data-processing agreement covering the contract period.")
    return None


async def confirm(award_id: int, user: StaffUser, settings: Settings, *,
                  now: datetime | None = None) -> Contract:
    """Confirm a pending award: the award is active, the tender complete, the contract pending,
    and every bidder told the result, all in one transaction."""
    now = now or datetime.now(UTC)
    need_centre(user)
    award = await Award.get_or_none(id=award_id).prefetch_related("tender", "organisation")
    if award is None:
        raise OrgError(_("There is no such award."), 404)
    why = await ineligible(award.tender, award.organisation, now)
    if why:
        raise OrgError(why, 409)
    tender = award.tender
    async with in_transaction() as conn:
        if not await Award.filter(id=award.id, status=AwardStatus.PENDING).update(
                status=AwardStatus.ACTIVE, decided_at=now, decided_by=web.staff_actor(user)):
            raise OrgError(_("This award was already decided."), 409)
        if not await Tender.filter(id=tender.id, status=TenderStatus.ACTIVE).update(
                status=TenderStatus.COMPLETE, awarded_at=now, updated_at=now):
            raise OrgError(_("This tender is no longer active."), 409)
        contract = await Contract.create(
            award_id=award.id, tender_id=tender.id, organisation_id=award.organisation_id,
            value=award.value, period_start=tender.contract_start,
            period_end=tender.contract_end, created_at=now)
        await _result_notices(tender, award, conn)
        await _publish(conn, settings, tender, "award", now)
        await _publish(conn, settings, tender, "contract", now)
    return contract


async def _result_notices(tender: Tender, award: Award, conn) -> None:
    results = {r.bid_id: r for r in await BidResult.filter(bid__tender_id=tender.id)}
    winner = results[award.bid_id]
    drawn = await TieDraw.filter(tender_id=tender.id).exists()
    lowest = tender.method == "lowest_price"

    def shown(result: BidResult, bid: Bid) -> str:
        return f"{bid.price:,.2f}" if lowest else f"{result.total}"

    winner_bid = await Bid.get(id=award.bid_id)
    for bid in await Bid.filter(tender_id=tender.id,
                                status__in=(BidStatus.VALID, BidStatus.DISQUALIFIED)):
        mine = results.get(bid.id)
        params = {"tender": tender.code, "winner": award.organisation.name,
                  "winner_total": shown(winner, winner_bid), "seed": tender.draw_seed or "",
                  "count": len(results)}
        if mine is None:
            body = UNRANKED_BODY
        else:
            outcome = "won" if bid.id == award.bid_id else "lost"
            body = RESULT_BODIES[(tender.method, outcome, drawn)]
            params.update(rank=mine.rank, total=shown(mine, bid))
        title = (_("You won tender {tender}") if bid.id == award.bid_id
                 else _("The result of tender {tender}"))
        await notify.to_org(bid.organisation_id, conn=conn, topic="tender.result",
                            ref=f"result:{tender.code}:org:{bid.organisation_id}",
                            code=tender.code, title=title, body=body,
                            url=f"/org/tenders/{tender.code}/result", link=_("See the result"),
                            **params)


async def cancel(award_id: int, user: StaffUser, settings: Settings, *, reason: str,
                 now: datetime | None = None) -> Award | None:
    """Cancel a pending award with a reason. The next-ranked valid bid gets a pending award; with
    none left the tender fails. Returns the new award, if any."""
    now = now or datetime.now(UTC)
    need_centre(user)
    reason = _reason(reason)
    award = await Award.get_or_none(id=award_id).prefetch_related("tender")
    if award is None:
        raise OrgError(_("There is no such award."), 404)
    tender = award.tender
    async with in_transaction() as conn:
        if not await Award.filter(id=award.id, status=AwardStatus.PENDING).update(
                status=AwardStatus.CANCELLED, decided_at=now, decided_by=web.staff_actor(user),
                reason=reason):
            raise OrgError(_("Only a pending award can be cancelled."), 409)
        await notify.to_org(award.organisation_id, conn=conn, topic="award.cancelled",
                            ref=f"award-cancelled:{award.id}", code=tender.code,
                            title=_("Award of tender {tender} cancelled"),
                            body=_("The award of tender {tender} to your organisation was "
                                   "cancelled: {reason}"),
                            url=f"/org/tenders/{tender.code}", tender=tender.code,
                            reason=reason)
        current = await BidResult.get(bid_id=award.bid_id)
        tried = await Award.filter(tender_id=tender.id).values_list("bid_id", flat=True)
        following = await BidResult.filter(
            bid__tender_id=tender.id, rank__gt=current.rank, bid__status=BidStatus.VALID
        ).exclude(bid_id__in=tried).order_by("rank").first().prefetch_related("bid")
        made = None
        if following is None:
            await Tender.filter(id=tender.id, status=TenderStatus.ACTIVE).update(
                status=TenderStatus.UNSUCCESSFUL, status_reason="no_award", updated_at=now)
        else:
            made = await Award.create(tender_id=tender.id, bid_id=following.bid_id,
                                      organisation_id=following.bid.organisation_id,
                                      value=following.bid.price, created_at=now)
        await _publish(conn, settings, tender, "awardCancellation", now)
    return made


# --- contract and milestones ----------------------------------------------------------------

def shanghai_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


async def sign(contract_id: int, user: StaffUser, settings: Settings, *, signed_on: date,
               now: datetime | None = None) -> Contract:
    """Record the signature: the contract becomes active."""
    now = now or datetime.now(UTC)
    need_centre(user)
    if signed_on > now.astimezone(SHANGHAI).date():
        raise OrgError(_("The day of signature cannot be in the future."), 422)
    async with in_transaction() as conn:
        contract = await Contract.get_or_none(id=contract_id).prefetch_related("tender")
        if contract is None:
            raise OrgError(_("There is no such contract."), 404)
        if not await Contract.filter(id=contract.id, status=ContractStatus.PENDING).update(
                status=ContractStatus.ACTIVE, date_signed=shanghai_start(signed_on)):
            raise OrgError(_("This contract was already signed or closed."), 409)
        await notify.to_org(contract.organisation_id, conn=conn, topic="contract.active",
                            ref=f"contract-active:{contract.id}", code=contract.tender.code,
                            title=_("Contract for tender {tender} signed"),
                            body=_("The contract for tender {tender} is active from {day}."),
                            url=f"/org/contracts/{contract.id}", tender=contract.tender.code,
                            day=signed_on.isoformat())
        await _publish(conn, settings, contract.tender, "contract", now)
    return await Contract.get(id=contract.id)


async def add_milestone(contract_id: int, user: StaffUser, settings: Settings, *, title: str,
                        description: str, due_date: date, now: datetime | None = None
                        ) -> Milestone:
    now = now or datetime.now(UTC)
    need_centre(user)
    title, description = title.strip(), description.strip()
    if not 1 <= len(title) <= TITLE_CHARS:
        raise OrgError(_("Please give a title of at most {n} characters."), 422, n=TITLE_CHARS)
    if len(description) > DESCRIPTION_CHARS:
        raise OrgError(_("The description may be at most {n} characters."), 422,
                       n=DESCRIPTION_CHARS)
    async with in_transaction() as conn:
        contract = await Contract.get_or_none(id=contract_id).prefetch_related("tender")
        if contract is None:
            raise OrgError(_("There is no such contract."), 404)
        if contract.status not in (ContractStatus.PENDING, ContractStatus.ACTIVE):
            raise OrgError(_("This contract is closed."), 409)
        # Serialises concurrent additions on the contract row, so positions stay unique.
        await Contract.filter(id=contract.id).update(status=contract.status)
        count = await Milestone.filter(contract_id=contract.id).count()
        if count >= MAX_MILESTONES:
            raise OrgError(_("A contract can have at most {n} milestones."), 409,
                           n=MAX_MILESTONES)
        made = await Milestone.create(contract_id=contract.id, position=count + 1, title=title,
                                      description=description, due_date=due_date,
                                      date_modified=now)
        await _publish(conn, settings, contract.tender, "implementation", now)
    return made


async def report(milestone_id: int, org_id: int, account: Account, *, text: str,
                 photos: list[StoredPhoto], now: datetime | None = None) -> MilestoneReport:
    """The organisation's progress report on one of its milestones, with up to 4 photos."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if not 1 <= len(text) <= REPORT_CHARS:
        raise OrgError(_("Please describe the progress in at most {n} characters."), 422,
                       n=REPORT_CHARS)
    if len(photos) > MAX_PHOTOS:
        raise OrgError(_("At most {n} photos can be sent."), 422, n=MAX_PHOTOS)
    milestone = await Milestone.get_or_none(id=milestone_id, contract__organisation_id=org_id) \
        .prefetch_related("contract")
    if milestone is None:
        raise OrgError(_("There is no such milestone."), 404)
    if milestone.contract.status != ContractStatus.ACTIVE:
        raise OrgError(_("Progress can be reported once the contract is signed."), 409)
    if milestone.status == MilestoneStatus.MET:
        raise OrgError(_("This milestone was already accepted."), 409)
    async with in_transaction():
        made = await MilestoneReport.create(milestone_id=milestone.id, account_id=account.id,
                                            text=text, submitted_at=now)
        for p in photos:
            await MilestonePhoto.create(report_id=made.id, path=p.path,
                                        content_type=p.content_type, width=p.width,
                                        height=p.height, size=p.size)
    return made


async def decide(report_id: int, user: StaffUser, settings: Settings, *, decision: str,
                 reason: str,
                 now: datetime | None = None) -> MilestoneReport:
    """accepted → met (date_met = when reported, late ones included), partial → partiallyMet,
    rejected → the milestone stays as it was and the organisation reports again."""
    now = now or datetime.now(UTC)
    need_centre(user)
    if decision not in REPORT_DECISIONS:
        raise OrgError(_("Choose to accept, partly accept or reject the report."), 422)
    reason = reason.strip()
    if len(reason) > REASON_CHARS or (decision != "accepted" and not reason):
        raise OrgError(_("Please give a reason of at most {n} characters."), 422,
                       n=REASON_CHARS)
    found = await MilestoneReport.get_or_none(id=report_id).prefetch_related(
        "milestone__contract__tender")
    if found is None:
        raise OrgError(_("There is no such report."), 404)
    milestone = found.milestone
    async with in_transaction() as conn:
        if not await MilestoneReport.filter(id=found.id, decision__isnull=True).update(
                decision=decision, decided_by=web.staff_actor(user), decided_at=now,
                reason=reason or None):
            raise OrgError(_("This report was already decided."), 409)
        to = REPORT_DECISIONS[decision]
        if to is not None:
            moved = await Milestone.filter(id=milestone.id).exclude(
                status=MilestoneStatus.MET).update(
                status=to, date_modified=now,
                date_met=found.submitted_at if to == MilestoneStatus.MET else None)
            if not moved:
                raise OrgError(_("This milestone was already accepted."), 409)
        contract = milestone.contract
        await notify.to_org(contract.organisation_id, conn=conn, topic="milestone.decided",
                            ref=f"milestone-report:{found.id}", code=contract.tender.code,
                            title=_("Milestone report decided"),
                            body=DECISION_BODIES[decision],
                            url=f"/org/contracts/{contract.id}", milestone=milestone.title,
                            reason=reason)
        if to is not None:
            await _publish(conn, settings, contract.tender, "implementation", now)
    return await MilestoneReport.get(id=found.id)


DECISION_BODIES = {
    "accepted": _("Your report on “{milestone}” was accepted. {reason}"),
    "partial": _("Your report on “{milestone}” was partly accepted: {reason}"),
    "rejected": _("Your report on “{milestone}” was not accepted: {reason}. Please report "
                  "again."),
}


async def mark_overdue(settings: Settings, now: datetime | None = None) -> int:
    """The sweep: scheduled milestones of active contracts whose due day (Shanghai) has ended
    become notMet. Idempotent: a second run finds nothing."""
    now = now or datetime.now(UTC)
    today = now.astimezone(SHANGHAI).date()
    due = await Milestone.filter(status=MilestoneStatus.SCHEDULED, due_date__lt=today,
                                 contract__status=ContractStatus.ACTIVE).values_list(
        "id", "contract__tender_id")
    marked = 0
    for tender_id in sorted({t for _id, t in due}):
        async with in_transaction() as conn:
            moved = await Milestone.filter(
                id__in=[i for i, t in due if t == tender_id],
                status=MilestoneStatus.SCHEDULED).update(status=MilestoneStatus.NOT_MET,
                                                         date_modified=now)
            if moved:
                await _publish(conn, settings, await Tender.get(id=tender_id), "implementation",
                               now)
            marked += moved
    return marked
