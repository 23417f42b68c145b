"""The evaluation console of a tender (/staff/tenders/{code}/evaluation): the opened bids, the
evaluators' scores, the abnormally low prices, the preview, the finalisation, then the award,
the contract and its milestones.

Only after the opening, and only for operators, administrators and the tender's assigned
evaluators: anyone else gets 404, as if there were no such page. Score forms are for
evaluators, every decision is an operator's.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from fastapi import APIRouter, HTTPException, Request

from orgs import web
from orgs.registry.service import OrgError
from orgs.tenders import awards, scoring
from orgs.tenders import service as tender_service
from orgs.tenders.models import (
    Award,
    Bid,
    BidResult,
    BidStatus,
    Contract,
    CriterionScore,
    LowBidReview,
    Milestone,
    MilestonePhoto,
    MilestoneReport,
    Tender,
    TieDraw,
)
from portal.i18n import _, gettext_for
from portal.staff.casework import centre
from portal.staff.models import StaffUser
from portal.staff.pages import Console, console_page
from portal.staff.pages import redirect_to as redirect
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(prefix="/staff/tenders", include_in_schema=False)
BID_STATUS = {"valid": _("valid"), "disqualified": _("disqualified"), "pending": _("pending"),
              "invited": _("invited"), "withdrawn": _("withdrawn")}
DISQUALIFIED = {"over_budget": _("over the budget"), "not_verified": _("not verified"),
                "suspended": _("suspended"), "no_training": _("no training"),
                "abnormally_low": _("abnormally low price"), "other": _("other")}
AWARD_STATUS = {"pending": _("pending confirmation"), "active": _("confirmed"),
                "cancelled": _("cancelled"), "unsuccessful": _("unsuccessful")}
CONTRACT_STATUS = {"pending": _("waiting for signature"), "active": _("in force"),
                   "cancelled": _("cancelled"), "terminated": _("terminated")}
MILESTONE_STATUS = {"scheduled": _("scheduled"), "met": _("met"), "notMet": _("not met"),
                    "partiallyMet": _("partly met")}
REPORT_DECISION = {"accepted": _("accepted"), "partial": _("partly accepted"),
                   "rejected": _("not accepted")}


def labels(lang: str) -> dict:
    t = gettext_for(lang)
    tables = {"bid_status": BID_STATUS, "disqualified_reason": DISQUALIFIED,
              "award_status": AWARD_STATUS, "contract_status": CONTRACT_STATUS,
              "milestone_status": MILESTONE_STATUS, "report_decision": REPORT_DECISION,
              "tender_status": {s.value: label for s, label in
                                tender_service.STATUS_LABELS.items()}}
    return {name: web.pick(t, table) for name, table in tables.items()}


async def _tender(request: Request, user: StaffUser, code: str) -> Tender:
    tender = await scoring.staff_tender(code, user)
    if tender is None:
        raise web.refuse(request, _("Page not found"), 404)
    return tender


def _url(tender: Tender) -> str:
    return f"/staff/tenders/{tender.code}/evaluation"


async def _step(request: Request, tender: Tender, coro, done: str):
    """Run a step; back to the page with `done`, or with why it was refused. Input that cannot
    have come from the form (422, 404) is answered as such."""
    t = gettext_for(page_language(request))
    try:
        await coro
    except OrgError as exc:
        if exc.status in (403, 404, 422):
            raise HTTPException(exc.status, exc.translated(t)) from exc
        return redirect(request, _url(tender), exc.translated(t), "bad")
    return redirect(request, _url(tender), t(done))


async def _contracts(tender: Tender) -> list[Contract]:
    """The tender's contracts with their milestones and reports: three queries, not one per
    milestone."""
    contracts = await Contract.filter(tender_id=tender.id).prefetch_related(
        "organisation").order_by("id")
    milestones = await Milestone.filter(contract__tender_id=tender.id).order_by("position")
    reports = await MilestoneReport.filter(
        milestone__contract__tender_id=tender.id).prefetch_related("photos").order_by("id")
    for m in milestones:
        m.report_list = [r for r in reports if r.milestone_id == m.id]
    for c in contracts:
        c.milestone_list = [m for m in milestones if m.contract_id == c.id]
    return contracts


@router.get("/{code}/evaluation")
async def evaluation_page(code: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    settings = request.app.state.settings
    lang = page_language(request)
    bids = await Bid.filter(tender_id=tender.id, status__in=(
        BidStatus.VALID, BidStatus.DISQUALIFIED)).prefetch_related("organisation").order_by("id")
    is_evaluator = await scoring.is_evaluator(tender, user)
    mine = {(s.bid_id, s.criterion_id): s for s in await CriterionScore.filter(
        bid__tender_id=tender.id, evaluator_id=user.id)}
    context = {
        "tender": tender, "bids": bids, "is_evaluator": is_evaluator,
        "is_operator": centre(user), "my_scores": mine,
        "reviews": await LowBidReview.filter(bid__tender_id=tender.id).prefetch_related(
            "bid__organisation").order_by("id"),
        "finalised": tender.finalised_at is not None, "money": money, **labels(lang),
        "explain_due": lambda review: scoring.explain_due(review, settings)}
    if tender.finalised_at is None and centre(user):
        # Evaluators score independently: the running ranking is the operators'.
        context["standing"] = await scoring.standing(tender, settings)
        context["min_evaluators"] = settings.tender_min_evaluators
    else:
        results = await BidResult.filter(bid__tender_id=tender.id).prefetch_related(
            "bid__organisation").order_by("rank")
        context.update(results=results, draws=await TieDraw.filter(tender_id=tender.id)
                       .order_by("group"),
                       awards=await Award.filter(tender_id=tender.id).prefetch_related(
                           "organisation").order_by("id"))
        context["contracts"] = await _contracts(tender)
    context["criteria"] = await tender.criteria.all().order_by("position")
    return await console_page(request, user, "staff/tenders/evaluation_page.html", context)


@router.post("/{code}/evaluation/bids/{bid_id}/scores")
async def enter_scores(code: str, bid_id: str, request: Request, user: Console):
    """One bid's scores on every criterion; a criterion left empty is left as it was."""
    tender = await _tender(request, user, code)
    bid = web.path_id(request, bid_id)
    form = await web.read_form(request)
    criteria = await tender.criteria.all().order_by("position")
    t = gettext_for(page_language(request))
    entered = []
    for c in criteria:
        value = web.text(request, form, f"score_{c.id}", 20).strip()
        if not value:
            continue
        try:
            entered.append((c.id, scoring.parse_score(value),
                            web.text(request, form, f"comment_{c.id}", 4000).strip()))
        except OrgError as exc:
            raise HTTPException(422, exc.translated(t)) from exc
    if not entered:
        return redirect(request, _url(tender), t(_("No score was entered.")), "bad")

    async def save():
        for criterion_id, score, comment in entered:
            await scoring.enter_score(tender, user, bid_id=bid, criterion_id=criterion_id,
                                      score=score, comment=comment)

    return await _step(request, tender, save(), _("The scores were saved."))


@router.post("/{code}/evaluation/low-bids/{review_id}")
async def decide_low_bid(code: str, review_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    review = web.path_id(request, review_id)
    form = await web.read_form(request)
    return await _step(request, tender, scoring.decide_low_bid(
        tender, user, review_id=review, decision=web.text(request, form, "decision", 16),
        reason=web.text(request, form, "reason", 4000)), _("The decision was recorded."))


@router.post("/{code}/evaluation/finalise")
async def finalise(code: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    await web.read_form(request)
    log.info("staff %s finalises the evaluation of %s", user.username, tender.code)
    return await _step(request, tender, scoring.finalise(
        tender, user, request.app.state.settings), _("The evaluation was finalised."))


async def _award(request: Request, tender: Tender, award_id: str) -> Award:
    award = await Award.get_or_none(id=web.path_id(request, award_id), tender_id=tender.id)
    if award is None:
        raise web.refuse(request, _("There is no such award."), 404)
    return award


@router.post("/{code}/evaluation/awards/{award_id}/confirm")
async def confirm_award(code: str, award_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    award = await _award(request, tender, award_id)
    await web.read_form(request)
    return await _step(request, tender, awards.confirm(award.id, user, request.app.state.settings),
                       _("The award was confirmed and every bidder told the result."))


@router.post("/{code}/evaluation/awards/{award_id}/cancel")
async def cancel_award(code: str, award_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    award = await _award(request, tender, award_id)
    form = await web.read_form(request)
    return await _step(request, tender, awards.cancel(
        award.id, user, request.app.state.settings, reason=web.text(request, form, "reason")),
        _("The award was cancelled."))


async def _contract(request: Request, tender: Tender, contract_id: str) -> Contract:
    contract = await Contract.get_or_none(id=web.path_id(request, contract_id), tender_id=tender.id)
    if contract is None:
        raise web.refuse(request, _("There is no such contract."), 404)
    return contract


@router.post("/{code}/evaluation/contracts/{contract_id}/sign")
async def sign_contract(code: str, contract_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    contract = await _contract(request, tender, contract_id)
    form = await web.read_form(request)
    day = web.day(request, web.text(request, form, "date_signed", 40), gettext_for(page_language(request))(_("the day")))
    return await _step(request, tender, awards.sign(
        contract.id, user, request.app.state.settings, signed_on=day),
        _("The contract was signed."))


@router.post("/{code}/evaluation/contracts/{contract_id}/milestones")
async def add_milestone(code: str, contract_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    contract = await _contract(request, tender, contract_id)
    form = await web.read_form(request)
    day = web.day(request, web.text(request, form, "due_date", 40), gettext_for(page_language(request))(_("the day")))
    return await _step(request, tender, awards.add_milestone(
        contract.id, user, request.app.state.settings, title=web.text(request, form, "title"),
        description=web.text(request, form, "description"), due_date=day),
        _("The milestone was added."))


@router.post("/{code}/evaluation/reports/{report_id}/decide")
async def decide_report(code: str, report_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    found = await MilestoneReport.get_or_none(id=web.path_id(request, report_id),
                                              milestone__contract__tender_id=tender.id)
    if found is None:
        raise web.refuse(request, _("There is no such report."), 404)
    form = await web.read_form(request)
    return await _step(request, tender, awards.decide(
        found.id, user, request.app.state.settings,
        decision=web.text(request, form, "decision", 16),
        reason=web.text(request, form, "reason")), _("The decision was recorded."))


@router.get("/{code}/evaluation/photos/{photo_id}")
async def milestone_photo(code: str, photo_id: str, request: Request, user: Console):
    tender = await _tender(request, user, code)
    found = await MilestonePhoto.get_or_none(
        id=web.path_id(request, photo_id), report__milestone__contract__tender_id=tender.id)
    return web.photo_file(request, found)


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"
