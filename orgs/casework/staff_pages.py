"""Staff console pages for cases worked by organisations: give a case to an organisation or
take it back (/staff/orgs/assign), and complaints about an organisation
(/staff/orgs/{id}/complaints). Operators and administrators only.

Included before orgs.registry.staff_pages, whose /staff/orgs/{org_id} would take "assign".
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request

from orgs import web
from orgs.casework import service
from orgs.casework.models import Complaint
from orgs.registry.models import Organisation, OrgStatus
from orgs.registry.service import OrgError
from orgs.tenders.models import Contract, ContractStatus
from portal.i18n import _, gettext_for
from portal.staff.models import StaffUser
from portal.staff.pages import Console, console_page, redirect_to
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(prefix="/staff/orgs", include_in_schema=False)
PAGE_SIZE = 200


def _number(request: Request, value: str, message: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    n = web.number(value)
    if n is None:
        raise web.refuse(request, message, 422)
    return n


async def _assign_page(request: Request, user: StaffUser, code: str, *, refusal: str = "",
                       status_code: int = 200):
    try:
        case = await service.case_by_code(code)
    except OrgError as exc:
        raise web.refuse(request, exc.message, 404) from None
    orgs = await Organisation.filter(status=OrgStatus.VERIFIED).order_by("name", "id") \
        .limit(PAGE_SIZE)
    return await console_page(request, user, "staff/orgs/assign.html", {
        "case": case, "orgs": orgs, "current": await service.current(case.id),
        "contracts": await Contract.filter(status=ContractStatus.ACTIVE,
                                           organisation__status=OrgStatus.VERIFIED)
        .order_by("organisation__name", "id").limit(PAGE_SIZE)
        .prefetch_related("organisation", "tender"),
        **({"flash": {"kind": "bad", "text": refusal}} if refusal else {}),
    }, status_code=status_code)


@router.get("/assign")
async def assign_page(request: Request, user: Console, case: str = ""):
    web.centre_only(request, user)
    return await _assign_page(request, user, case[:64])


@router.post("/assign")
async def assign(request: Request, user: Console):
    web.centre_only(request, user)
    form = await web.read_form(request)
    code = web.text(request, form, "case", 64)
    case = await _case(request, code)
    org_id = _number(request, web.text(request, form, "organisation", 32),
                     _("Choose an organisation."))
    if org_id is None:
        raise web.refuse(request, _("Choose an organisation."), 422)
    contract_id = _number(request, web.text(request, form, "contract", 32),
                          _("Choose a contract from the list."))
    t = gettext_for(page_language(request))
    try:
        done = await service.assign(case.id, org_id, actor=web.staff_actor(user),
                                    contract_id=contract_id)
    except OrgError as exc:
        if exc.status == 404:
            raise web.refuse(request, exc.message, 404) from None
        return await _assign_page(request, user, case.code, refusal=exc.translated(t),
                                  status_code=exc.status)
    await done.fetch_related("organisation")
    log.info("staff %s gave case %s to organisation %s", user.username, case.code, org_id)
    return redirect_to(request, f"/staff/cases/{quote(case.code)}",
                       t(_("{org} now works on the case.")).format(org=done.organisation.name))


@router.post("/unassign")
async def unassign(request: Request, user: Console):
    web.centre_only(request, user)
    form = await web.read_form(request)
    case = await _case(request, web.text(request, form, "case", 64))
    t = gettext_for(page_language(request))
    try:
        await service.unassign(case.id, actor=web.staff_actor(user))
    except OrgError as exc:
        return redirect_to(request, "/staff/orgs/assign?" + urlencode({"case": case.code}),
                           exc.translated(t), "bad")
    log.info("staff %s took case %s back from its organisation", user.username, case.code)
    return redirect_to(request, f"/staff/cases/{quote(case.code)}",
                       t(_("The case was taken back from the organisation.")))


async def _case(request: Request, code: str):
    try:
        return await service.case_by_code(code)
    except OrgError as exc:
        raise web.refuse(request, exc.message, 404) from None


async def _complaints_page(request: Request, user: StaffUser, org: Organisation, *,
                           refusal: str = "", status_code: int = 200, text: str = "",
                           case: str = ""):
    return await console_page(request, user, "staff/orgs/complaints.html", {
        "org": org, "text": text, "case_code": case,
        "complaints": await Complaint.filter(organisation_id=org.id)
        .order_by("-recorded_at", "-id").limit(PAGE_SIZE).prefetch_related("case"),
        **({"flash": {"kind": "bad", "text": refusal}} if refusal else {}),
    }, status_code=status_code)


@router.get("/{org_id}/complaints")
async def complaints(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    return await _complaints_page(request, user, await web.organisation(request, org_id))


@router.post("/{org_id}/complaints")
async def record_complaint(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    form = await web.read_form(request)
    text = web.text(request, form, "text", 2001)
    case = web.text(request, form, "case", 64)
    t = gettext_for(page_language(request))
    try:
        await service.record_complaint(org.id, text, actor=web.staff_actor(user), case_code=case)
    except OrgError as exc:
        return await _complaints_page(request, user, org, refusal=exc.translated(t),
                                      status_code=exc.status, text=text[:2000], case=case)
    log.info("staff %s recorded a complaint about organisation %s", user.username, org.id)
    return redirect_to(request, f"/staff/orgs/{org.id}/complaints",
                       t(_("The complaint was recorded.")))
