"""Staff console pages for assessment: periods (compute a month, publish), a period's scores
with their consequences, the indicator sets (versions: administrators change them) and the
appeals queue.

Operators and administrators only: department and evaluator accounts get 404.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, HTTPException, Request

from orgs import web
from orgs.assessment import service
from orgs.assessment.models import (
    Appeal,
    Assessment,
    ConsequenceRecord,
    Indicator,
    IndicatorSet,
    Period,
)
from orgs.registry.service import OrgError
from portal.i18n import _, gettext_for
from portal.staff.models import Role, StaffUser
from portal.staff.pages import Console, console_page
from portal.staff.pages import redirect_to as redirect
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(prefix="/staff", include_in_schema=False)
MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
LIST_SIZE = 200



def helpers(lang: str) -> dict:
    t = gettext_for(lang)
    return {
        "indicator_name": lambda k: t(service.INDICATOR_NAMES[k])
        if k in service.INDICATOR_NAMES else k,
        "consequence_name": lambda k: t(service.CONSEQUENCE_NAMES[k])
        if k in service.CONSEQUENCE_NAMES else k,
        "month_label": service.month_label,
    }


def _failed(request: Request, exc: OrgError, back: str):
    t = gettext_for(page_language(request))
    if exc.status in (404, 422):
        raise HTTPException(exc.status, exc.translated(t)) from exc
    return redirect(request, back, exc.translated(t), "bad")


@router.get("/assessment")
async def periods(request: Request, user: Console):
    web.centre_only(request, user)
    rows = await Period.all().order_by("-starts_on").limit(LIST_SIZE).prefetch_related(
        "indicator_set")
    counts = {p.id: await Assessment.filter(period_id=p.id).count() for p in rows}
    return await console_page(request, user, "staff/assessment/periods.html", {
        "periods": rows, "counts": counts,
        "waiting": await Appeal.filter(decision__isnull=True).count(),
        **helpers(page_language(request))})


@router.post("/assessment/compute")
async def compute(request: Request, user: Console):
    web.centre_only(request, user)
    form = await web.read_form(request)
    found = MONTH.match(web.text(request, form, "month", 20).strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise web.refuse(request, _("Give the month as YYYY-MM, e.g. 2026-10."), 422)
    starts_on, ends_on = service.month_bounds(int(found.group(1)), int(found.group(2)))
    switch = web.text(request, form, "switch_set", 10) == "1"
    try:
        period = await service.compute(starts_on, ends_on, switch_set=switch)
    except OrgError as exc:
        return _failed(request, exc, "/staff/assessment")
    log.info("staff %s computed assessment period %s (switch set: %s)", user.username,
             period.id, switch)
    t = gettext_for(page_language(request))
    return redirect(request, f"/staff/assessment/periods/{period.id}",
                    t(_("The period was computed.")))


@router.post("/assessment/periods/{period_id}/publish")
async def publish(period_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    pid = web.path_id(request, period_id)
    await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        done = await service.publish(pid, user)
    except OrgError as exc:
        return _failed(request, exc, "/staff/assessment")
    log.info("staff %s published assessment period %s", user.username, pid)
    return redirect(request, f"/staff/assessment/periods/{pid}",
                    t(_("The period was published.")) if done
                    else t(_("This period was already published.")))


@router.get("/assessment/periods/{period_id}")
async def period_page(period_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    period = await Period.get_or_none(id=web.path_id(request, period_id)).prefetch_related(
        "indicator_set")
    if period is None:
        raise web.refuse(request, _("There is no such period."), 404)
    rows = await Assessment.filter(period_id=period.id).order_by("-score", "id").prefetch_related(
        "organisation", "consequences")
    return await console_page(request, user, "staff/assessment/period.html", {
        "period": period, "assessments": rows,
        "not_assessable": len(await service.assessed_orgs(period.starts_on, period.ends_on))
        - len(rows), **helpers(page_language(request))})


@router.post("/assessment/consequences/{record_id}")
async def consequence(record_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    rid = web.path_id(request, record_id)
    form = await web.read_form(request)
    record = await ConsequenceRecord.get_or_none(id=rid).prefetch_related("assessment")
    if record is None:
        raise web.refuse(request, _("Page not found"), 404)
    back = f"/staff/assessment/periods/{record.assessment.period_id}"
    try:
        await service.decide_consequence(rid, user, web.text(request, form, "decision", 20),
                                         web.text(request, form, "note", 4000))
    except OrgError as exc:
        return _failed(request, exc, back)
    t = gettext_for(page_language(request))
    return redirect(request, back, t(_("The consequence was recorded.")))


@router.get("/assessment/sets")
async def sets(request: Request, user: Console):
    web.centre_only(request, user)
    await service.active_set()
    rows = await IndicatorSet.all().order_by("name", "-version")
    indicators = {s.id: await Indicator.filter(set_id=s.id).order_by("position") for s in rows}
    return await console_page(request, user, "staff/assessment/sets.html", {
        "sets": rows, "indicators": indicators, "may_change": user.role == Role.ADMIN,
        **helpers(page_language(request))})


async def _set_step(request: Request, user: StaffUser, set_id: str, step: str):
    web.centre_only(request, user)
    sid = web.path_id(request, set_id)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        if step == "version":
            await service.new_version(sid, user)
            done = _("A draft of the next version was made.")
        elif step == "edit":
            await service.edit_draft(
                sid, user, missing=web.text(request, form, "missing", 20),
                weights={k[2:]: web.text(request, form, k, 20) for k in form if k.startswith("w_")},
                bands={k[2:]: web.text(request, form, k, 20) for k in form if k.startswith("b_")})
            done = _("The draft was saved.")
        else:
            await service.activate(sid, user)
            done = _("The set is active; the one before is retired.")
    except OrgError as exc:
        if exc.status == 403:
            raise HTTPException(403, exc.translated(t)) from exc
        return _failed(request, exc, "/staff/assessment/sets")
    log.info("staff %s: indicator set %s %s", user.username, sid, step)
    return redirect(request, "/staff/assessment/sets", t(done))


@router.post("/assessment/sets/{set_id}/new-version")
async def new_version(set_id: str, request: Request, user: Console):
    return await _set_step(request, user, set_id, "version")


@router.post("/assessment/sets/{set_id}/edit")
async def edit(set_id: str, request: Request, user: Console):
    return await _set_step(request, user, set_id, "edit")


@router.post("/assessment/sets/{set_id}/activate")
async def activate(set_id: str, request: Request, user: Console):
    return await _set_step(request, user, set_id, "activate")


@router.get("/appeals")
async def appeals(request: Request, user: Console):
    web.centre_only(request, user)
    rows = await Appeal.all().order_by("decision", "-submitted_at").limit(
        LIST_SIZE).prefetch_related("organisation", "assessment__period", "suspension")
    return await console_page(request, user, "staff/assessment/appeals.html", {
        "appeals": sorted(rows, key=lambda a: a.decision is not None),
        **helpers(page_language(request))})


@router.post("/appeals/{appeal_id}/decide")
async def decide(appeal_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    aid = web.path_id(request, appeal_id)
    form = await web.read_form(request)
    try:
        await service.decide_appeal(
            aid, user, web.text(request, form, "decision", 20),
            web.text(request, form, "reason", 4000),
            corrected_score=web.text(request, form, "corrected_score", 20))
    except OrgError as exc:
        return _failed(request, exc, "/staff/appeals")
    log.info("staff %s decided appeal %s", user.username, aid)
    t = gettext_for(page_language(request))
    return redirect(request, "/staff/appeals", t(_("The appeal was decided.")))
