"""Becoming a volunteer (/volunteer) and the leaderboard (/volunteers/leaderboard)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from orgs import web
from orgs.registry.models import Area
from orgs.volunteers import service
from orgs.volunteers.models import Volunteer
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)


async def _form(request: Request, member: web.Member, form: dict, error: str = "",
                status_code: int = 200, done: bool = False):
    lang = page_language(request)
    t = gettext_for(lang)
    return render(request, "orgs/volunteers/register.html", {
        "form": form, "error": t(error) if error else "", "done": done,
        "grids": [(a.id, a.name(lang)) for a in await service.grids()]},
        status_code=status_code)


@router.get("/volunteer")
async def volunteer_form(request: Request, member: web.SignedIn):
    found = await Volunteer.get_or_none(person_id=member.account.person_id)
    form = {"display_name": found.display_name if found else member.account.display_name,
            "home_area_id": found.home_area_id if found else 0,
            "consent": found is not None and found.status == "active"}
    return await _form(request, member, form, done=form["consent"])


@router.post("/volunteer")
async def volunteer_register(request: Request, member: web.SignedIn):
    data = await web.read_form(request)
    area = web.text(request, data, "home_area_id", 20).strip()
    form = {"display_name": web.text(request, data, "display_name", 200),
            "home_area_id": web.number(area, web.INT4_MAX) or -1,
            "consent": web.text(request, data, "consent", 4) == "1"}
    try:
        v = await service.register(member.account.person_id, form["display_name"],
                                   form["home_area_id"], via="web", consent=form["consent"])
    except service.VolunteerError as exc:
        return await _form(request, member, form, exc.message, exc.status)
    log.info("volunteer %s registered (account %s)", v.id, member.account.id)
    return await _form(request, member, form, done=True, status_code=201)


@router.get("/volunteers/leaderboard")
async def leaderboard(request: Request, area: str = "", period: str = "month"):
    lang = page_language(request)
    t = gettext_for(lang)
    if period not in service.PERIODS:
        raise web.refuse(request, _("There is no such period."), 400)
    areas = await Area.all().order_by("kind", "code")
    chosen = None
    if area:
        chosen = next((a for a in areas if a.code == area or str(a.id) == area), None)
        if chosen is None:
            raise web.refuse(request, _("There is no such area."), 404)
    elif areas:
        chosen = next((a for a in areas if a.kind == "street"), areas[0])
    rows = await service.leaderboard(chosen, period, t) if chosen else []
    member = await web.current_member(request)
    mine = None
    if member is not None:
        mine = next((r for r in rows if r.person_id == member.account.person_id), None)
    return render(request, "orgs/volunteers/leaderboard.html", {
        "rows": rows[:service.TOP], "mine": mine, "signed_in": member is not None,
        "areas": [(a.code, a.name(lang), a.kind) for a in areas],
        "area": chosen.code if chosen else "", "area_name": chosen.name(lang) if chosen else "",
        "period": period, "periods": [(k, t(v)) for k, v in service.PERIODS.items()]})
