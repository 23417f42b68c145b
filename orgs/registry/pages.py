"""The public pages: the registration form and the directory of verified organisations.

Anyone may register; an operator verifies before the organisation counts for anything. The
directory shows the contact phone and e-mail masked.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from orgs import web
from orgs.accounts.service import AccountError
from orgs.privacy import mask_email, mask_name, mask_phone
from orgs.registry import service
from orgs.registry.models import Area, Organisation, OrgStatus
from orgs.service_types import BY_KEY as SERVICE_TYPES
from orgs.service_types import SERVICE_TYPES as SERVICE_LIST
from portal.i18n import gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
DIRECTORY_SIZE = 200


async def _areas() -> list[Area]:
    return await Area.all().order_by("kind", "code")


def _int_list(values: list[str]) -> list[int]:
    # Junk ids become -1, which no area has: the form says "choose from the list".
    return [web.number(v, web.INT4_MAX) or -1 for v in values]


async def _form_page(request: Request, r: service.Registration, errors: dict[str, str], *,
                     status_code: int = 200):
    lang = page_language(request)
    t = gettext_for(lang)
    return render(request, "orgs/register.html", {
        "form": r, "errors": {k: t(v) for k, v in errors.items()},
        "service_types": [(s.key, s.name(lang)) for s in SERVICE_LIST],
        "areas": [(a.id, a.name(lang)) for a in await _areas()],
    }, status_code=status_code)


@router.get("/orgs/register")
async def register_form(request: Request, member: web.SignedIn):
    if member.organisation is not None:
        return RedirectResponse("/org", status_code=303)
    return await _form_page(request, service.Registration(), {})


@router.post("/orgs/register")
async def register(request: Request, member: web.SignedIn):
    form = await web.read_form(request)
    r = service.Registration(
        name=web.text(request, form, "name"), uscc=web.text(request, form, "uscc", 200),
        pilot=web.text(request, form, "pilot") == "1",
        address=web.text(request, form, "address"),
        contact_name=web.text(request, form, "contact_name"),
        contact_phone=web.text(request, form, "contact_phone", 100),
        contact_email=web.text(request, form, "contact_email", 400),
        service_types=web.texts(request, form, "service_types"),
        area_ids=_int_list(web.texts(request, form, "areas")))
    errors = service.check_registration(r, {a.id for a in await _areas()})
    if errors:
        return await _form_page(request, r, errors, status_code=422)
    try:
        org = await service.register(r, by=member.account)
    except (service.OrgError, AccountError) as exc:
        field = "form" if "account" in exc.message else "uscc"
        return await _form_page(request, r, {field: exc.message}, status_code=exc.status)
    log.info("organisation %s registered (pending)", org.id)
    return RedirectResponse("/org?done=registered", status_code=303)


@router.get("/orgs")
async def directory(request: Request):
    lang = page_language(request)
    orgs = await Organisation.filter(status=OrgStatus.VERIFIED).order_by("name").limit(
        DIRECTORY_SIZE).prefetch_related("areas__area")
    return render(request, "orgs/directory.html", {"orgs": [{
        "name": o.name, "uscc": o.uscc, "contact_name": mask_name(o.contact_name),
        "phone": mask_phone(o.contact_phone), "email": mask_email(o.contact_email),
        "services": [SERVICE_TYPES[k].name(lang) for k in o.service_types if k in SERVICE_TYPES],
        "areas": [oa.area.name(lang) for oa in o.areas],
    } for o in orgs]})
