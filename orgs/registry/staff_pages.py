"""Staff console pages for organisations (/staff/orgs): the queue of registrations, verify,
reject, suspend, reinstate, the pilot-code override (administrators), training and agreements.

Operators and administrators only: a department account gets 404, as for cases outside its
scope. Full contact details are shown here (to check the registration); the list masks them.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request

from orgs import web
from orgs.privacy import mask_phone
from orgs.registry import service
from orgs.registry.documents import kind_names
from orgs.registry.models import (
    DataAgreement,
    Organisation,
    OrgDocument,
    OrgEvent,
    OrgStatus,
    TrainingRecord,
)
from orgs.service_types import SERVICE_TYPES as SERVICE_LIST
from orgs.service_types import service_name
from portal.i18n import _, gettext_for
from portal.staff.models import Role, StaffUser
from portal.staff.pages import Console, console_page
from portal.staff.pages import redirect_to as redirect
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(prefix="/staff/orgs", include_in_schema=False)
PAGE_SIZE = 100
EVENT_LABELS = {
    "registered": _("Registered"), "verified": _("Verified"), "rejected": _("Rejected"),
    "resubmitted": _("Sent again"), "suspended": _("Suspended"), "reinstated": _("Reinstated"),
    "uscc_override": _("Pilot credit code accepted"), "training_recorded": _("Training recorded"),
    "dpa_recorded": _("Data-processing agreement recorded"),
}
# Which form changes the status to what.
STEPS = {"verify": (OrgStatus.VERIFIED, _("The organisation was verified.")),
         "reject": (OrgStatus.REJECTED, _("The registration was rejected.")),
         "suspend": (OrgStatus.SUSPENDED, _("The organisation was suspended.")),
         "reinstate": (OrgStatus.VERIFIED, _("The organisation was reinstated."))}


def _url(org: Organisation) -> str:
    return f"/staff/orgs/{org.id}"


def _helpers(lang: str) -> dict:
    t = gettext_for(lang)
    return {
        "org_status": lambda s: t(service.STATUS_LABELS[OrgStatus(s)]),
        "service_name": lambda k: service_name(k, lang),
        "org_event": lambda k: t(EVENT_LABELS[k]) if k in EVENT_LABELS else k,
        "data_type_name": web.pick(t, service.DATA_TYPES),
        "end_action_name": web.pick(t, service.END_ACTIONS),
    }


@router.get("")
async def org_queue(request: Request, user: Console, status: str = "pending"):
    web.centre_only(request, user)
    query = Organisation.all()
    if status != "all":
        if status not in OrgStatus._value2member_map_:
            raise web.refuse(request, _("There is no such status."), 400)
        query = query.filter(status=status)
    orgs = await query.order_by("created_at", "id").limit(PAGE_SIZE)
    lang = page_language(request)
    return await console_page(request, user, "staff/orgs/list.html", {
        "orgs": orgs, "status": status, "statuses": list(OrgStatus),
        "mask_phone": mask_phone, **_helpers(lang)})


@router.get("/{org_id}")
async def org_page(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    await org.fetch_related("areas__area")
    lang = page_language(request)
    return await console_page(request, user, "staff/orgs/org.html", {
        "org": org, "areas": [oa.area.name(lang) for oa in org.areas],
        "events": await OrgEvent.filter(organisation_id=org.id).order_by("id"),
        "training": await TrainingRecord.filter(organisation_id=org.id).order_by(
            "service_type", "-valid_until"),
        "agreements": await DataAgreement.filter(organisation_id=org.id).order_by("-ends_on"),
        "documents": await OrgDocument.filter(organisation_id=org.id).order_by("id"),
        "document_kinds": kind_names(lang),
        "needs_override": not org.uscc_valid and org.uscc_override_at is None,
        "service_types": [(s.key, s.name(lang)) for s in SERVICE_LIST],
        "data_types": list(service.DATA_TYPES), "end_actions": list(service.END_ACTIONS),
        **_helpers(lang)})


async def _step(request: Request, user: StaffUser, org_id: str, step: str):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    form = await web.read_form(request)
    to, done = STEPS[step]
    t = gettext_for(page_language(request))
    try:
        await service.change_status(org.id, to, actor=web.staff_actor(user),
                                    reason=web.text(request, form, "reason", 2000))
    except service.OrgError as exc:
        return redirect(request, _url(org), exc.translated(t), "bad")
    log.info("staff %s: organisation %s %s", user.username, org.id, to.value)
    return redirect(request, _url(org), t(done))


@router.post("/{org_id}/verify")
async def verify(org_id: str, request: Request, user: Console):
    return await _step(request, user, org_id, "verify")


@router.post("/{org_id}/reject")
async def reject(org_id: str, request: Request, user: Console):
    return await _step(request, user, org_id, "reject")


@router.post("/{org_id}/suspend")
async def suspend(org_id: str, request: Request, user: Console):
    return await _step(request, user, org_id, "suspend")


@router.post("/{org_id}/reinstate")
async def reinstate(org_id: str, request: Request, user: Console):
    return await _step(request, user, org_id, "reinstate")


@router.post("/{org_id}/uscc-override")
async def uscc_override(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    form = await web.read_form(request)
    if user.role != Role.ADMIN:
        raise web.refuse(request, _("Only an administrator can accept a pilot credit code."),
                         403)
    t = gettext_for(page_language(request))
    try:
        await service.override_uscc(org.id, actor=web.staff_actor(user),
                                    reason=web.text(request, form, "reason", 2000))
    except service.OrgError as exc:
        return redirect(request, _url(org), exc.translated(t), "bad")
    log.info("staff %s accepted the pilot credit code of organisation %s", user.username, org.id)
    return redirect(request, _url(org), t(_("The pilot credit code was accepted.")))


@router.post("/{org_id}/training")
async def training(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        await service.record_training(
            organisation_id=org.id, service_type=web.text(request, form, "service_type", 64),
            certificate_no=web.text(request, form, "certificate_no", 200),
            issued_by=web.text(request, form, "issued_by", 400),
            issued_at=web.day(request, web.text(request, form, "issued_at", 40), t(_("the day of issue"))),
            valid_until=web.day(request, web.text(request, form, "valid_until", 40),
                             t(_("the last valid day"))),
            actor=web.staff_actor(user))
    except service.OrgError as exc:
        if exc.status == 422:
            raise HTTPException(422, exc.translated(t)) from exc
        return redirect(request, _url(org), exc.translated(t), "bad")
    return redirect(request, _url(org), t(_("The training was recorded.")))


@router.post("/{org_id}/dpa")
async def agreement(org_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    org = await web.organisation(request, org_id)
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    try:
        await service.record_agreement(
            org.id, purpose=web.text(request, form, "purpose", 4000),
            data_types=web.texts(request, form, "data_types"),
            starts_on=web.day(request, web.text(request, form, "starts_on", 40), t(_("the first day"))),
            ends_on=web.day(request, web.text(request, form, "ends_on", 40), t(_("the last day"))),
            end_action=web.text(request, form, "end_action", 16), actor=web.staff_actor(user))
    except service.OrgError as exc:
        if exc.status == 422:
            raise HTTPException(422, exc.translated(t)) from exc
        return redirect(request, _url(org), exc.translated(t), "bad")
    return redirect(request, _url(org), t(_("The data-processing agreement was recorded.")))
