"""Staff console pages for tenders (/staff/tenders): the list, the new-tender form, publish,
cancel, re-tender, evaluators, and a tender's page.

Operators and administrators only; departments and evaluators get 404 here (evaluators have
their own evaluation page). Before the opening the page says nothing about bids, not even how
many there are.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import FormData

from orgs import web
from orgs.registry.models import Area
from orgs.registry.service import OrgError
from orgs.service_types import SERVICE_TYPES as SERVICE_LIST
from orgs.tenders import service
from orgs.tenders.models import (
    Bid,
    LowBidReview,
    Tender,
    TenderCriterion,
    TenderEvaluator,
)
from orgs.tenders.opening import SEAL_BROKEN, open_if_due
from orgs.tenders.pages import labels
from portal.i18n import _, gettext_for
from portal.staff.models import Role, StaffUser
from portal.staff.pages import Console, console_page
from portal.staff.pages import redirect_to as redirect
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(prefix="/staff/tenders", include_in_schema=False)
PAGE_SIZE = 200
CRITERIA_ROWS = 5


async def _tender(request: Request, code: str) -> Tender:
    try:
        return await service.by_code(code)
    except OrgError as exc:
        raise web.refuse(request, exc.message, 404) from exc


def _decimal(request: Request, value: str, name: str) -> Decimal:
    try:
        number = Decimal(value.strip().replace(",", ""))
        if number.is_finite() and number == round(number, 2) and abs(number) < Decimal("1e12"):
            return number
    except InvalidOperation:
        pass
    raise web.refuse(request, _("{name}: give a number with at most two decimals."), 422,
                     name=name)


def _share(request: Request, value: str, name: str) -> Decimal:
    """A percentage from the form (≤ 2 decimals) as a share of 1."""
    percent = _decimal(request, value, name)
    if not 0 <= percent <= 100:
        raise web.refuse(request, _("{name}: give a percentage from 0 to 100."), 422, name=name)
    return percent / 100


def _list(request: Request, form: FormData, name: str, limit: int) -> list[str]:
    values = form.getlist(name)
    if not all(isinstance(v, str) for v in values):
        raise web.refuse(request, _("The form could not be read."))
    return [v[:limit] for v in values]


def _draft(request: Request, form: FormData) -> service.Draft:
    t = gettext_for(page_language(request))

    def field(name: str, limit: int = 200) -> str:
        return web.text(request, form, name, limit)

    area = field("area", 10)
    method = field("method", 24)
    criteria = []
    names = _list(request, form, "criterion_name", 61)
    notes = _list(request, form, "criterion_description", 2001)
    weights = _list(request, form, "criterion_weight", 20)
    for i, name in enumerate(names[:service.MAX_CRITERIA + 1]):
        if not name.strip():
            continue
        weight = weights[i] if i < len(weights) else ""
        criteria.append((name, notes[i] if i < len(notes) else "",
                         _share(request, weight, t("Criterion weight"))))
    return service.Draft(
        title=field("title", 121), description=field("description", 20001),
        service_type=field("service_type", 24),
        area_id=web.number(area, web.INT4_MAX) or -1,
        budget=_decimal(request, field("budget", 30), t("Budget")),
        contract_start=web.day(request, field("contract_start", 20), t("Contract start")),
        contract_end=web.day(request, field("contract_end", 20), t("Contract end")),
        long_period_reason=field("long_period_reason", 2001),
        procedure=field("procedure", 24), method=method,
        price_weight=(_share(request, field("price_weight", 20), t("Price weight"))
                      if method == "comprehensive" else None),
        deadline=web.moment(request, field("deadline", 30), t("Bid deadline")),
        handles_resident_data=field("handles_resident_data", 4) == "1",
        criteria=criteria, source_case=field("source_case", 40))


@router.get("")
async def tender_list(request: Request, user: Console):
    if user.role == Role.EVALUATOR:
        # An evaluator's console is the tenders it is assigned to, each leading to its
        # evaluation page once opened.
        tenders = await Tender.filter(evaluators__staff_user_id=user.id) \
            .order_by("-created_at", "-id").limit(PAGE_SIZE)
    else:
        web.centre_only(request, user)
        tenders = await Tender.all().order_by("-created_at", "-id").limit(PAGE_SIZE)
    return await console_page(request, user, "staff/tenders/list.html", {
        "tenders": tenders, "evaluator": user.role == Role.EVALUATOR,
        **labels(page_language(request))})


@router.get("/new")
async def new_form(request: Request, user: Console, source_case: str = ""):
    web.centre_only(request, user)
    lang = page_language(request)
    return await console_page(request, user, "staff/tenders/new.html", {
        "service_types": [(s.key, s.name(lang)) for s in SERVICE_LIST],
        "areas": [(a.id, a.name(lang)) for a in await Area.all().order_by("kind", "code")],
        "procedures": service.PROCEDURES, "methods": service.METHODS,
        "rows": range(CRITERIA_ROWS), "source_case": source_case[:32],
        **labels(lang)})


@router.post("")
async def create(request: Request, user: Console):
    web.centre_only(request, user)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        tender = await service.create(_draft(request, form), actor=web.staff_actor(user))
    except OrgError as exc:
        raise HTTPException(exc.status, exc.translated(t)) from exc
    log.info("staff %s: tender %s drafted", user.username, tender.code)
    return redirect(request, f"/staff/tenders/{tender.code}",
                    t("The draft was saved. Check it, then publish it."))


@router.get("/{code}")
async def tender_page(code: str, request: Request, user: Console):
    web.centre_only(request, user)
    settings = request.app.state.settings
    tender = await open_if_due(settings, await _tender(request, code))
    lang = page_language(request)
    bids, reviews = [], {}
    if tender.opened_at is not None:
        bids = await Bid.filter(tender_id=tender.id, opened_at__isnull=False).order_by(
            "price", "id").prefetch_related("organisation")
        reviews = {r.bid_id: r for r in await LowBidReview.filter(bid__tender_id=tender.id)}
    await tender.fetch_related("area")
    return await console_page(request, user, "staff/tenders/tender.html", {
        "tender": tender, "area": tender.area.name(lang),
        "criteria": await TenderCriterion.filter(tender_id=tender.id).order_by("position"),
        "evaluators": await TenderEvaluator.filter(tender_id=tender.id).prefetch_related(
            "staff_user"),
        "bids": bids, "reviews": reviews,
        "seal_broken": tender.opened_at is None and tender.status_reason == SEAL_BROKEN,
        "valid_count": sum(1 for b in bids if b.status == "valid"),
        **labels(lang)})


async def _step(request: Request, user: StaffUser, code: str, step: str):
    web.centre_only(request, user)
    tender = await _tender(request, code)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    settings = request.app.state.settings
    url = f"/staff/tenders/{tender.code}"
    try:
        if step == "publish":
            await service.publish(tender, settings, actor=web.staff_actor(user))
            done = t("The tender is published: bids are open until the deadline.")
        elif step == "cancel":
            await service.cancel(tender, settings, actor=web.staff_actor(user),
                                 reason=web.text(request, form, "reason", 2000))
            done = t("The tender was cancelled.")
        elif step == "retender":
            new = await service.retender(
                tender, actor=web.staff_actor(user),
                deadline=web.moment(request, web.text(request, form, "deadline", 30),
                                 t("Bid deadline")))
            url, done = f"/staff/tenders/{new.code}", t("A new draft was made: check and "
                                                        "publish it.")
        else:
            await service.assign_evaluator(tender, web.text(request, form, "username", 64),
                                           actor=web.staff_actor(user))
            done = t("The evaluator was added.")
    except OrgError as exc:
        return redirect(request, url, exc.translated(t), "bad")
    log.info("staff %s: tender %s %s", user.username, tender.code, step)
    return redirect(request, url, done)


@router.post("/{code}/publish")
async def publish(code: str, request: Request, user: Console):
    return await _step(request, user, code, "publish")


@router.post("/{code}/cancel")
async def cancel(code: str, request: Request, user: Console):
    return await _step(request, user, code, "cancel")


@router.post("/{code}/retender")
async def retender(code: str, request: Request, user: Console):
    return await _step(request, user, code, "retender")


@router.post("/{code}/evaluators")
async def evaluators(code: str, request: Request, user: Console):
    return await _step(request, user, code, "evaluators")
