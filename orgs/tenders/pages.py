"""Public tender pages (/tenders) and the organisation side (/org/tenders): the bid form, the
receipt, withdrawing.

Before the opening nobody sees anything of the bids: the bidder only its receipt. After it the
public sees how many bids are valid, and each bidder's admins the opening record (bidders,
prices, validity), never the others' proposals or teams.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from orgs import web
from orgs.registry.service import OrgError
from orgs.service_types import service_name
from orgs.tenders import bids as bidding
from orgs.tenders import service
from orgs.tenders.models import Award, AwardStatus, Bid, BidStatus, Tender, TenderStatus
from orgs.tenders.opening import REASONS, open_if_due
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 200


def labels(lang: str) -> dict:
    """What the tender templates (public, organisations' and staff) call to name codes."""
    t = gettext_for(lang)
    return {
        "tender_status": lambda s: t(service.STATUS_LABELS[TenderStatus(s)]),
        "service_name": lambda k: service_name(k, lang),
        "procedure_name": web.pick(t, service.PROCEDURES),
        "method_name": web.pick(t, service.METHODS),
        "reason_name": lambda k: t(REASONS.get(k, k)) if k else "",
        "percent": lambda w: f"{Decimal(w) * 100:.2f}%" if w is not None else "",
    }


async def _published(request: Request, code: str) -> Tender:
    """A published tender (opened first if due); drafts do not exist for the public."""
    try:
        tender = await service.by_code(code)
    except OrgError:
        tender = None
    if tender is None or tender.status == TenderStatus.PLANNING:
        raise web.refuse(request, _("There is no such tender."), 404)
    return await open_if_due(request.app.state.settings, tender)


async def _valid_count(tender: Tender) -> int | None:
    if tender.opened_at is None:
        return None
    return await Bid.filter(tender_id=tender.id, status=BidStatus.VALID).count()


@router.get("/tenders")
async def tender_list(request: Request):
    tenders = await Tender.exclude(status=TenderStatus.PLANNING).order_by(
        "-published_at", "-id").limit(PAGE_SIZE)
    return render(request, "orgs/tenders/list.html", {
        "tenders": tenders, "mine": None, **labels(page_language(request))})


@router.get("/tenders/{code}")
async def tender_page(code: str, request: Request):
    tender = await _published(request, code)
    await tender.fetch_related("area")
    # Filled in once an award is confirmed (the awards module writes it).
    award = await Award.filter(tender_id=tender.id, status=AwardStatus.ACTIVE) \
        .prefetch_related("organisation").first()
    lang = page_language(request)
    return render(request, "orgs/tenders/tender.html", {
        "tender": tender, "area": tender.area.name(lang),
        "valid_count": await _valid_count(tender), "award": award, **labels(lang)})


@router.get("/org/tenders")
async def org_tenders(request: Request, member: web.SignedIn):
    tenders = await Tender.filter(status=TenderStatus.ACTIVE).order_by("deadline", "id") \
        .limit(PAGE_SIZE)
    mine = {}
    if member.organisation is not None:
        mine = {b.tender_id: b for b in await Bid.filter(
            organisation_id=member.organisation.id, tender_id__in=[t.id for t in tenders])}
    return render(request, "orgs/tenders/list.html", {
        "tenders": tenders, "mine": mine, "member": member,
        **labels(page_language(request))})


async def _bid_page(request: Request, member: web.Member, tender: Tender, *,
                    error: str = "", status_code: int = 200):
    org = member.organisation
    bid = await Bid.get_or_none(tender_id=tender.id, organisation_id=org.id)
    record = []
    if tender.opened_at is not None and bid is not None and bid.opened_at is not None:
        # The opening record for the bidders: names, prices and validity only.
        record = await Bid.filter(tender_id=tender.id, opened_at__isnull=False).order_by(
            "price", "id").prefetch_related("organisation")
    problem = await bidding.can_bid(org, tender)
    t = gettext_for(page_language(request))
    return render(request, "orgs/tenders/bid.html", {
        "tender": tender, "org": org, "receipt": bidding.receipt_of(bid) if bid else None,
        "withdrawn": bid is not None and bid.status == BidStatus.WITHDRAWN,
        "open": tender.status == TenderStatus.ACTIVE and tender.opened_at is None,
        "problem": problem.translated(t) if problem else "", "error": error,
        "record": record, **labels(page_language(request))}, status_code=status_code)


@router.get("/org/tenders/{code}/bid")
async def bid_form(code: str, request: Request, member: web.OrgAdmin):
    return await _bid_page(request, member, await _published(request, code))


@router.post("/org/tenders/{code}/bid")
async def bid_submit(code: str, request: Request, member: web.OrgAdmin):
    tender = await _published(request, code)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        await bidding.submit(
            request.app.state.settings, tender, member.organisation,
            actor=f"account:{member.account.id}",
            price=web.text(request, form, "price", 40),
            proposal=web.text(request, form, "proposal", bidding.PROPOSAL_CHARS + 1),
            team=bidding.parse_team(web.text(request, form, "team", 20000)))
    except OrgError as exc:
        # The form comes back empty: a bid is never echoed, not even to its author.
        return await _bid_page(request, member, tender, error=exc.translated(t),
                               status_code=exc.status)
    # No log line here or at the withdrawal: before the opening even "a bid came" tells how
    # many bid and when.
    return RedirectResponse(f"/org/tenders/{tender.code}/receipt", status_code=303)


@router.post("/org/tenders/{code}/withdraw")
async def bid_withdraw(code: str, request: Request, member: web.OrgAdmin):
    tender = await _published(request, code)
    await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        await bidding.withdraw(tender, member.organisation,
                               actor=f"account:{member.account.id}")
    except OrgError as exc:
        raise HTTPException(exc.status, exc.translated(t)) from exc
    return RedirectResponse(f"/org/tenders/{tender.code}/receipt", status_code=303)


@router.get("/org/tenders/{code}/receipt")
async def receipt(code: str, request: Request, member: web.OrgAdmin):
    tender = await _published(request, code)
    bid = await Bid.get_or_none(tender_id=tender.id, organisation_id=member.organisation.id)
    return render(request, "orgs/tenders/receipt.html", {
        "tender": tender, "receipt": bidding.receipt_of(bid) if bid else None,
        "withdrawn": bid is not None and bid.status == BidStatus.WITHDRAWN})
