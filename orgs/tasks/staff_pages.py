"""Console pages for claimable tasks (/staff/tasks): the list, the new-task form, a task with
its claims (done / did not come), and cancelling with a reason. Operators and administrators
only; a department account gets 404."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request

from orgs import web
from orgs.registry.models import Area
from orgs.service_types import SERVICE_TYPES as SERVICE_LIST
from orgs.tasks import service
from orgs.tasks.models import Claim, ClaimTask
from orgs.tasks.pages import helpers
from portal.cases.models import Case
from portal.i18n import _, gettext_for
from portal.staff.models import StaffUser
from portal.staff.pages import Console, console_page
from portal.staff.pages import redirect_to as redirect
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
STATUSES = ("open", "closed", "cancelled", "all")


def _int(value: str, default: int = -1) -> int:
    """A whole number typed in the form; default (-1 is refused by check_task) otherwise."""
    value = value.strip()
    if value == "0":
        return 0
    n = web.number(value, web.INT4_MAX)
    return default if n is None else n


@router.get("/staff/tasks")
async def task_list(request: Request, user: Console, status: str = "open"):
    web.centre_only(request, user)
    if status not in STATUSES:
        raise web.refuse(request, _("There is no such status."), 400)
    query = ClaimTask.all() if status == "all" else ClaimTask.filter(status=status)
    tasks = await query.order_by("-starts_at", "-id").limit(PAGE_SIZE).prefetch_related("area")
    lang = page_language(request)
    return await console_page(request, user, "staff/tasks/list.html", {
        "tasks": tasks, "status": status, "statuses": STATUSES, "lang": lang,
        **helpers(lang)})


async def _form(request: Request, user: StaffUser, n: service.NewTask, errors: dict,
                case_code: str = "", status_code: int = 200):
    lang = page_language(request)
    t = gettext_for(lang)
    return await console_page(request, user, "staff/tasks/new.html", {
        "form": n, "errors": {k: t(v) for k, v in errors.items()}, "case": case_code,
        "service_types": [(s.key, s.name(lang)) for s in SERVICE_LIST],
        "areas": [(a.id, a.name(lang)) for a in await Area.all().order_by("kind", "code")],
        "who": list(service.WHO), **helpers(lang)}, status_code=status_code)


async def _case(request: Request, code: str) -> Case | None:
    if not code:
        return None
    case = await Case.get_or_none(code=code.strip().upper()[:32])
    if case is None:
        raise web.refuse(request, _("There is no such case."), 404)
    return case


@router.get("/staff/tasks/new")
async def new_form(request: Request, user: Console, case: str = ""):
    web.centre_only(request, user)
    found = await _case(request, case)
    return await _form(request, user, service.NewTask(), {}, found.code if found else "")


@router.post("/staff/tasks/new")
async def create(request: Request, user: Console):
    web.centre_only(request, user)
    form = await web.read_form(request)
    f = lambda name, limit=4000: web.text(request, form, name, limit)  # noqa: E731
    case = await _case(request, f("case", 40))
    n = service.NewTask(
        title=f("title", 200), description=f("description", 4001),
        service_type=f("service_type", 40), area_id=_int(f("area_id", 20)),
        places=_int(f("places", 20)), who=f("who", 20),
        requires_training=f("requires_training", 4) == "1",
        starts_at=web.local_time(f("starts_at", 40)), ends_at=web.local_time(f("ends_at", 40)),
        claim_until=web.local_time(f("claim_until", 40)) if f("claim_until", 40).strip() else None,
        points=_int(f("points", 20), 5 if not f("points", 20).strip() else -1),
        source_case_id=case.id if case else None)
    errors = service.check_task(n, set(await Area.all().values_list("id", flat=True)))
    if errors:
        return await _form(request, user, n, errors, case.code if case else "", 422)
    settings = request.app.state.settings
    task = await service.create_task(n, actor=f"staff:{user.username}",
                                     grace_minutes=settings.claim_start_grace_minutes)
    log.info("staff %s: task %s created", user.username, task.id)
    t = gettext_for(page_language(request))
    return redirect(request, f"/staff/tasks/{task.id}", t("The task was created."))


@router.get("/staff/tasks/{task_id}")
async def task_page(task_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    task = await ClaimTask.get_or_none(
        id=web.path_id(request, task_id, message=_("There is no such task."))).prefetch_related("area")
    if task is None:
        raise web.refuse(request, _("There is no such task."), 404)
    claims = await Claim.filter(task_id=task.id).order_by("id").prefetch_related(
        "claimed_by", "organisation")
    lang = page_language(request)
    return await console_page(request, user, "staff/tasks/task.html", {
        "task": task, "claims": claims, "area_name": task.area.name(lang),
        "holding": service.HOLDING, "begun": datetime.now(UTC) >= task.starts_at, **helpers(lang)})


@router.post("/staff/tasks/{task_id}/cancel")
async def cancel(task_id: str, request: Request, user: Console):
    web.centre_only(request, user)
    tid = web.path_id(request, task_id, message=_("There is no such task."))
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    if not await ClaimTask.exists(id=tid):
        raise web.refuse(request, _("There is no such task."), 404)
    try:
        told = await service.cancel_task(tid, web.text(request, form, "reason", 2000),
                                         actor=f"staff:{user.username}")
    except service.TaskError as exc:
        return redirect(request, f"/staff/tasks/{tid}", exc.translated(t), "bad")
    log.info("staff %s: task %s cancelled (%s claims)", user.username, tid, told)
    return redirect(request, f"/staff/tasks/{tid}", t("The task was cancelled."))


async def _settle(request: Request, user: StaffUser, claim_id: str, outcome: str):
    web.centre_only(request, user)
    cid = web.path_id(request, claim_id, message=_("There is no such claim."))
    await web.read_form(request)
    row = await Claim.get_or_none(id=cid)
    if row is None:
        raise web.refuse(request, _("There is no such claim."), 404)
    t = gettext_for(page_language(request))
    try:
        await service.finish(cid, outcome, actor=f"staff:{user.username}")
    except service.TaskError as exc:
        return redirect(request, f"/staff/tasks/{row.task_id}", exc.translated(t), "bad")
    return redirect(request, f"/staff/tasks/{row.task_id}", t("The claim was settled."))


@router.post("/staff/claims/{claim_id}/done")
async def claim_done(claim_id: str, request: Request, user: Console):
    return await _settle(request, user, claim_id, "done")


@router.post("/staff/claims/{claim_id}/no-show")
async def claim_no_show(claim_id: str, request: Request, user: Console):
    return await _settle(request, user, claim_id, "no_show")
