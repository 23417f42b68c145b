"""The organisation's side of its cases (/org/cases): the list, one case as a department sees
it but without who reported it (no names, phones, e-mails or chat identities), and the
admins' steps: take it up, resolve it."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRouter

from orgs import web
from orgs.casework import service
from orgs.casework.models import CaseAssignment
from orgs.registry.service import OrgError
from portal.cases.categories import BY_KEY as CATEGORIES
from portal.cases.models import Department, Photo, Report, Status
from portal.cases.public import public_events, timeline
from portal.cases.service import STATUS_LABELS, TRANSITIONS, CaseError
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 200
DONE = {"in_progress": _("The case is in progress."), "resolved": _("The case is resolved.")}


def _organisation(request: Request, member: web.Member):
    if member.organisation is None:
        raise web.refuse(request, _("You are not a member of an organisation."), 403)
    return member.organisation


def _helpers(lang: str) -> dict:
    t = gettext_for(lang)
    return {"status_name": lambda s: t(STATUS_LABELS[Status(s)])
            if s in Status._value2member_map_ else s,
            "category_name": lambda k: (CATEGORIES[k].name_en if lang == "en" else
                                        CATEGORIES[k].name_zh) if k in CATEGORIES else k}


@router.get("/org/cases")
async def case_list(request: Request, member: web.SignedIn):
    org = _organisation(request, member)
    rows = await CaseAssignment.filter(organisation_id=org.id).order_by(
        "-assigned_at", "-id").limit(PAGE_SIZE).prefetch_related("case")
    # Current ones first, each group newest first.
    rows.sort(key=lambda a: a.active_key is None)
    lang = page_language(request)
    return render(request, "orgs/cases/list.html", {
        "org": org, "rows": rows, **_helpers(lang)})


async def _case_page(request: Request, member: web.Member, code: str, *, message: str = "",
                     kind: str = "ok", status_code: int = 200):
    org = _organisation(request, member)
    try:
        case = await service.org_case(org.id, code)
    except OrgError as exc:
        raise web.refuse(request, exc.message, exc.status) from None
    lang = page_language(request)
    depts = {d.id: d for d in await Department.all()}
    photos = await Photo.filter(case_id=case.id).order_by("id")
    status = Status(case.status)
    return render(request, "orgs/cases/case.html", {
        "org": org, "case": case, "member": member,
        # What residents wrote and where: not who they are.
        "reports": await Report.filter(case_id=case.id).order_by("received_at", "id")
        .values("id", "channel", "text", "address", "received_at"),
        "report_photos": [p for p in photos if p.kind != "fix"],
        "fix_photos": [p for p in photos if p.kind == "fix"],
        "entries": timeline(await public_events(case.id), lang, depts),
        "steps": [s for s in (Status.IN_PROGRESS, Status.RESOLVED)
                  if s in TRANSITIONS[status] and s in service.ORG_MAY_SET],
        "message": message, "kind": kind, **_helpers(lang)}, status_code=status_code)


@router.get("/org/cases/{code}")
async def case_page(code: str, request: Request, member: web.SignedIn, ok: str = ""):
    t = gettext_for(page_language(request))
    return await _case_page(request, member, code, message=t(DONE[ok]) if ok in DONE else "")


@router.post("/org/cases/{code}/status")
async def set_status(code: str, request: Request, member: web.OrgAdmin):
    form = await web.read_form(request)
    to = web.text(request, form, "status", 16)
    note = web.text(request, form, "public_note", 2001)
    org = member.organisation
    try:
        case = await service.set_status(org.id, member.account.username, code, to, note)
    except OrgError as exc:
        if exc.status == 404:
            raise web.refuse(request, exc.message, 404) from None
        t = gettext_for(page_language(request))
        return await _case_page(request, member, code, message=exc.translated(t), kind="bad",
                                status_code=exc.status)
    except CaseError as exc:
        t = gettext_for(page_language(request))
        return await _case_page(request, member, code, message=exc.translated(t), kind="bad",
                                status_code=409)
    log.info("org %s set case %s to %s", org.id, case.code, case.status)
    return RedirectResponse(f"/org/cases/{case.code}?ok={case.status.value}", status_code=303)


@router.get("/org/cases/{code}/photos/{photo_id}")
async def photo(code: str, photo_id: str, request: Request, member: web.SignedIn):
    """A photo of the case the organisation works on (residents' evidence: members only)."""
    org = _organisation(request, member)
    try:
        case = await service.org_case(org.id, code)
    except OrgError as exc:
        raise web.refuse(request, exc.message, exc.status) from None
    found = await Photo.get_or_none(id=web.path_id(request, photo_id, message=_("No such photo.")),
                                    case_id=case.id)
    return web.photo_file(request, found)
