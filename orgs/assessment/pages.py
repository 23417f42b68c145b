"""An organisation's own assessments (/org/assessments): its published scores and grades, how
each was computed, consequences, suspension from bidding and appeals. Members read; admins
appeal. Another organisation's assessment is 404, as is one not yet published.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from orgs import web
from orgs.assessment import service
from orgs.assessment.models import Appeal, Assessment, BiddingSuspension
from orgs.assessment.staff_pages import helpers
from orgs.registry.service import OrgError
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
DONE = {"appealed": _("Your appeal was sent. The grid centre will decide it.")}


@router.get("/org/assessments")
async def assessments(request: Request, member: web.SignedIn, done: str = ""):
    org_id = web.org_id(request, member)
    window = timedelta(days=request.app.state.settings.appeal_window_days)
    now = datetime.now(UTC)
    rows = await Assessment.filter(organisation_id=org_id, period__status="published").order_by(
        "-period__starts_on").prefetch_related("period", "consequences")
    suspensions = await BiddingSuspension.filter(organisation_id=org_id).order_by("-starts_at")
    appeals = await Appeal.filter(organisation_id=org_id).order_by("-submitted_at")
    open_keys = {a.active_key for a in appeals if a.active_key}
    t = gettext_for(page_language(request))
    return render(request, "orgs/assessment/list.html", {
        "member": member, "assessments": rows, "suspensions": suspensions, "appeals": appeals,
        "final_grade": service.final_grade, "final_score": service.final_score,
        "in_force": await service.suspended_from_bidding(org_id, now),
        "may_appeal": lambda key, since: member.is_org_admin and key not in open_keys
        and now <= since + window,
        "done": t(DONE[done]) if done in DONE else "",
        **helpers(page_language(request))})


@router.get("/org/assessments/{assessment_id}")
async def assessment(assessment_id: str, request: Request, member: web.SignedIn):
    org_id = web.org_id(request, member)
    found = await Assessment.get_or_none(
        id=web.path_id(request, assessment_id), organisation_id=org_id,
        period__status="published").prefetch_related("period__indicator_set", "consequences")
    if found is None:
        raise web.refuse(request, _("Page not found"), 404)
    return render(request, "orgs/assessment/detail.html", {
        "a": found, "breakdown": found.breakdown, "bands": found.period.indicator_set.bands,
        "final_grade": service.final_grade, **helpers(page_language(request))})


@router.post("/org/appeals")
async def appeal(request: Request, member: web.OrgAdmin):
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        made = await service.file_appeal(
            member.organisation.id, member.account.id, web.text(request, form, "subject", 40),
            web.text(request, form, "text", 8000),
            window_days=request.app.state.settings.appeal_window_days)
    except OrgError as exc:
        raise HTTPException(exc.status, exc.translated(t)) from exc
    log.info("organisation %s appealed (%s)", member.organisation.id, made.id)
    return RedirectResponse("/org/assessments?done=appealed", status_code=303)
