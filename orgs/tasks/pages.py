"""Public task pages: the list of open tasks, a task with its places, and the claim, start
and withdraw buttons of a signed-in volunteer or organisation administrator. Only an operator
marks a claim done (the console's task page)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from orgs import web
from orgs.registry.models import Area
from orgs.service_types import BY_KEY as SERVICE_TYPES
from orgs.service_types import SERVICE_TYPES as SERVICE_LIST
from orgs.service_types import service_name
from orgs.tasks import service
from orgs.tasks.models import Claim, ClaimTask
from orgs.volunteers.models import Volunteer
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
DONE = {"claimed": _("You hold a place. Start the task when you arrive."),
        "started": _("Started. The grid centre marks the task done when it is over."),
        "withdrawn": _("Your place was given back.")}
NO_TASK = _("There is no such task.")


def helpers(lang: str) -> dict:
    t = gettext_for(lang)
    return {"service_name": lambda k: service_name(k, lang),
            "who_name": web.pick(t, service.WHO),
            "task_status": web.pick(t, service.TASK_STATUS),
            "claim_status": web.pick(t, service.CLAIM_STATUS)}


@router.get("/tasks")
async def task_list(request: Request, area: str = "", type: str = ""):
    lang = page_language(request)
    query = ClaimTask.filter(status="open", ends_at__gt=datetime.now(UTC))
    if area:
        query = query.filter(area_id=web.path_id(request, area, web.INT4_MAX,
                                                 _("There is no such area.")))
    if type:
        if type not in SERVICE_TYPES:
            raise web.refuse(request, _("Choose a service type from the list."), 400)
        query = query.filter(service_type=type)
    tasks = await query.order_by("starts_at", "id").limit(PAGE_SIZE).prefetch_related("area")
    areas = await Area.all().order_by("kind", "code")
    return render(request, "orgs/tasks/list.html", {
        "tasks": tasks, "areas": [(a.id, a.name(lang)) for a in areas],
        "service_types": [(s.key, s.name(lang)) for s in SERVICE_LIST],
        "area": area, "type": type, "lang": lang, **helpers(lang)})


async def _task_page(request: Request, task_id: int, *, message: str = "", kind: str = "ok",
                     status_code: int = 200):
    task = await ClaimTask.get_or_none(id=task_id).prefetch_related("area")
    if task is None:
        raise web.refuse(request, _("There is no such task."), 404)
    lang = page_language(request)
    member = await web.current_member(request)
    mine: list[Claim] = []
    can_person = can_org = False
    if member is not None:
        keys = [f"p:{member.account.person_id}"]
        if member.is_org_admin:
            keys.append(f"o:{member.organisation.id}")
        mine = await Claim.filter(task_id=task.id, claimant_key__in=keys).order_by("-id")
        held = {c.claimant_key for c in mine if c.status in service.HOLDING}
        can_person = task.who != "organisation" and keys[0] not in held and \
            await Volunteer.filter(person_id=member.account.person_id, status="active").exists()
        can_org = member.is_org_admin and task.who != "volunteer" and keys[-1] not in held
    now = datetime.now(UTC)
    return render(request, "orgs/tasks/task.html", {
        "task": task, "area_name": task.area.name(lang), "member": member, "mine": mine,
        "open": task.status == "open" and task.claim_until > now and task.claimed < task.places,
        "can_person": can_person, "can_org": can_org,
        "startable": now >= task.starts_at - service.START_EARLY and now <= task.start_by,
        "message": message, "kind": kind, **helpers(lang)}, status_code=status_code)


@router.get("/tasks/{task_id}")
async def task_page(task_id: str, request: Request, ok: str = ""):
    t = gettext_for(page_language(request))
    return await _task_page(request, web.path_id(request, task_id, message=NO_TASK),
                            message=t(DONE[ok]) if ok in DONE else "")


async def _refused(request: Request, task_id: int, exc: service.TaskError):
    t = gettext_for(page_language(request))
    return await _task_page(request, task_id, message=exc.translated(t), kind="bad",
                            status_code=exc.status)


@router.post("/tasks/{task_id}/claim")
async def claim(task_id: str, request: Request, member: web.SignedIn):
    tid = web.path_id(request, task_id, message=NO_TASK)
    form = await web.read_form(request)
    as_org = web.text(request, form, "as", 16) == "org"
    try:
        row = await service.claim(tid, member.account, as_org=as_org)
    except service.TaskError as exc:
        if exc.status == 404:
            raise web.refuse(request, exc.message, 404) from None
        return await _refused(request, tid, exc)
    log.info("task %s: claim %s by account %s", tid, row.id, member.account.id)
    return RedirectResponse(f"/tasks/{tid}?ok=claimed", status_code=303)


async def _claim_step(request: Request, task_id: str, member: web.Member, step: str):
    tid = web.path_id(request, task_id, message=NO_TASK)
    form = await web.read_form(request)
    claim_id = web.path_id(request, web.text(request, form, "claim", 20),
                           message=_("There is no such claim."))
    if not await Claim.filter(id=claim_id, task_id=tid).exists():
        raise web.refuse(request, _("There is no such claim."), 404)
    try:
        if step == "started":
            await service.start(claim_id, member.account)
        else:
            await service.withdraw(claim_id, member.account)
    except service.TaskError as exc:
        if exc.status == 404:
            raise web.refuse(request, exc.message, 404) from None
        return await _refused(request, tid, exc)
    return RedirectResponse(f"/tasks/{tid}?ok={step}", status_code=303)


@router.post("/tasks/{task_id}/start")
async def start(task_id: str, request: Request, member: web.SignedIn):
    return await _claim_step(request, task_id, member, "started")


@router.post("/tasks/{task_id}/withdraw")
async def withdraw(task_id: str, request: Request, member: web.SignedIn):
    return await _claim_step(request, task_id, member, "withdrawn")
