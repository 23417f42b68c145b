"""An organisation's side of the evaluation and after (/org/…): its own result once the award is
active, the explanation of an abnormally low price, its contracts and the progress reports on
their milestones, with photos (stored like every photo, without EXIF).

An organisation sees its own score and rank and the winner's, never the others' scores, and
only its own contracts: anything else is 404.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from orgs import web
from orgs.registry.service import OrgError
from orgs.tenders import awards, scoring
from orgs.tenders.evaluation_pages import labels, money
from orgs.tenders.models import (
    Award,
    AwardStatus,
    Bid,
    BidResult,
    Contract,
    LowBidReview,
    Milestone,
    MilestonePhoto,
    MilestoneReport,
    Tender,
)
from portal.http import BodyTooLarge, bounded_stream
from portal.i18n import _, gettext_for
from portal.photos import PhotoError, store_photo
from portal.web import csrf
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)


async def _own_bid(request: Request, code: str, org_id: int) -> tuple[Tender, Bid]:
    bid = await Bid.get_or_none(tender__code=code, organisation_id=org_id).prefetch_related(
        "tender") if len(code) <= 20 else None
    if bid is None or bid.tender.opened_at is None:
        raise web.refuse(request, _("Page not found"), 404)
    return bid.tender, bid


@router.get("/org/tenders/{code}/result")
async def result_page(code: str, request: Request, member: web.SignedIn):
    tender, bid = await _own_bid(request, code, web.org_id(request, member))
    award = await Award.get_or_none(tender_id=tender.id, status=AwardStatus.ACTIVE) \
        .prefetch_related("organisation")
    if award is None:
        raise web.refuse(request, _("Page not found"), 404)
    return render(request, "orgs/tenders/award_result.html", {
        "tender": tender, "bid": bid, "award": award, "money": money,
        "mine": await BidResult.get_or_none(bid_id=bid.id),
        "winner": await BidResult.get_or_none(bid_id=award.bid_id).prefetch_related("bid"),
        "ranked": await BidResult.filter(bid__tender_id=tender.id).count(),
        "criteria": {str(c.id): c.name for c in await tender.criteria.all()},
        **labels(page_language(request))})


async def _review(request: Request, code: str, member: web.Member
                  ) -> tuple[Tender, Bid, LowBidReview]:
    tender, bid = await _own_bid(request, code, web.org_id(request, member))
    review = await LowBidReview.get_or_none(bid_id=bid.id)
    if review is None:
        raise web.refuse(request, _("Page not found"), 404)
    return tender, bid, review


@router.get("/org/tenders/{code}/explain")
async def explain_page(code: str, request: Request, member: web.OrgAdmin):
    tender, bid, review = await _review(request, code, member)
    due = scoring.explain_due(review, request.app.state.settings)
    return render(request, "orgs/tenders/award_explain.html", {
        "tender": tender, "bid": bid, "review": review, "money": money, "due": due,
        "open": tender.finalised_at is None and review.decision is None
        and datetime.now(UTC) <= due})


@router.post("/org/tenders/{code}/explain")
async def explain(code: str, request: Request, member: web.OrgAdmin):
    tender, bid, review = await _review(request, code, member)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        await scoring.explain_low_bid(
            tender, bid.organisation_id, actor=f"account:{member.account.username}",
            explanation=web.text(request, form, "explanation", scoring.EXPLANATION_CHARS + 1),
            settings=request.app.state.settings)
    except OrgError as exc:
        raise HTTPException(exc.status, exc.translated(t)) from exc
    return render(request, "orgs/tenders/award_explain.html", {
        "tender": tender, "bid": bid, "review": await LowBidReview.get(id=review.id),
        "money": money, "open": True, "saved": True,
        "due": scoring.explain_due(review, request.app.state.settings)})


@router.get("/org/contracts")
async def contracts_page(request: Request, member: web.SignedIn):
    org_id = web.org_id(request, member)
    contracts = await Contract.filter(organisation_id=org_id).prefetch_related("tender") \
        .order_by("-id").limit(200)
    return render(request, "orgs/tenders/contract_list.html", {
        "contracts": contracts, "money": money, **labels(page_language(request))})


async def _contract(request: Request, contract_id: str, member: web.Member) -> Contract:
    contract = await Contract.get_or_none(id=web.path_id(request, contract_id),
                                          organisation_id=web.org_id(request, member)) \
        .prefetch_related("tender")
    if contract is None:
        raise web.refuse(request, _("Page not found"), 404)
    return contract


async def _contract_page(request: Request, contract: Contract, member: web.Member, *,
                         status_code: int = 200, refusal: str = ""):
    milestones = await Milestone.filter(contract_id=contract.id).order_by("position")
    reports = await MilestoneReport.filter(milestone__contract_id=contract.id).prefetch_related(
        "photos").order_by("id")
    for m in milestones:
        m.report_list = [r for r in reports if r.milestone_id == m.id]
    return render(request, "orgs/tenders/contract_page.html", {
        "contract": contract, "milestones": milestones, "money": money,
        "is_admin": member.is_org_admin, "max_photos": awards.MAX_PHOTOS, "refusal": refusal,
        **labels(page_language(request))}, status_code=status_code)


@router.get("/org/contracts/{contract_id}")
async def contract_page(contract_id: str, request: Request, member: web.SignedIn):
    return await _contract_page(request, await _contract(request, contract_id, member), member)


async def _multipart(request: Request, limit: int, files: int) -> FormData:
    """A CSRF-checked multipart form, bounded in bytes, fields and files."""
    content_type, _params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise web.refuse(request, _("The form could not be read."), 415)
    try:
        data = await MultiPartParser(request.headers, bounded_stream(request, limit),
                                     max_files=files, max_fields=20,
                                     max_part_size=web.FORM_LIMIT).parse()
    except BodyTooLarge as exc:
        raise web.refuse(request, _("What was sent is too large."), 413) from exc
    except MultiPartException as exc:
        raise web.refuse(request, _("The form could not be read.")) from exc
    token = data.get(csrf.FIELD)
    try:
        csrf.check(request, token if isinstance(token, str) else None, page_language(request))
    except HTTPException:
        await data.close()
        raise
    return data


@router.post("/org/contracts/{contract_id}/milestones/{milestone_id}/report")
async def report(contract_id: str, milestone_id: str, request: Request, member: web.OrgAdmin):
    contract = await _contract(request, contract_id, member)
    milestone = await Milestone.get_or_none(id=web.path_id(request, milestone_id),
                                            contract_id=contract.id)
    if milestone is None:
        raise web.refuse(request, _("Page not found"), 404)
    settings = request.app.state.settings
    form = await _multipart(request, awards.MAX_PHOTOS * settings.max_photo_bytes
                            + web.FORM_LIMIT, awards.MAX_PHOTOS)
    t = gettext_for(page_language(request))
    # Photos wait in a staging folder until the report is recorded: a refused report leaves
    # nothing in the media folder, where a photo's name is its hash and may be another's too.
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=settings.media_dir))
    try:
        text = form.get("text", "")
        if not isinstance(text, str):
            raise web.refuse(request, _("The form could not be read."))
        uploads = [u for u in form.getlist("photos")
                   if isinstance(u, UploadFile) and u.filename]
        stored = []
        for upload in uploads:
            data = await upload.read(settings.max_photo_bytes + 1)
            try:
                stored.append(await store_photo(
                    data, staging, max_bytes=settings.max_photo_bytes,
                    max_pixels=settings.max_photo_pixels, max_side=settings.photo_max_side))
            except PhotoError as exc:
                status = 413 if len(data) > settings.max_photo_bytes else 400
                return await _contract_page(request, contract, member, status_code=status,
                                            refusal=t(str(exc)))
        try:
            await awards.report(milestone.id, contract.organisation_id, member.account,
                                text=text[:awards.REPORT_CHARS + 1], photos=stored)
        except OrgError as exc:
            return await _contract_page(request, contract, member, status_code=exc.status,
                                        refusal=exc.translated(t))
        for photo in stored:
            target = settings.media_dir / photo.path
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / photo.path).replace(target)
    finally:
        await form.close()
        shutil.rmtree(staging, ignore_errors=True)
    log.info("account %s reported on milestone %s", member.account.id, milestone.id)
    return RedirectResponse(f"/org/contracts/{contract.id}", status_code=303)


@router.get("/org/contracts/{contract_id}/photos/{photo_id}")
async def contract_photo(contract_id: str, photo_id: str, request: Request,
                         member: web.SignedIn):
    contract = await _contract(request, contract_id, member)
    found = await MilestonePhoto.get_or_none(id=web.path_id(request, photo_id),
                                             report__milestone__contract_id=contract.id)
    return web.photo_file(request, found)
