"""The account's inbox: every notice written to the signed-in person (tender results, released
claims...), also the ones no chat or mailbox could take, newest first. Seeing a page of them
marks them read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from feedback.models import PersonNotice
from feedback.notices import texts_in
from orgs import web
from portal.cases.service import SHANGHAI, utcnow
from portal.i18n import _
from portal.web.lang import page_language
from portal.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
MAX_PAGE = 10_000


def _page_number(request: Request) -> int:
    page = web.number(request.query_params.get("page", "1"), MAX_PAGE)
    if page is None:
        raise web.refuse(request, _("There is no such page."), 404)
    return page


def _safe(url: str) -> str:
    # Only our pages and web addresses become links.
    return url if url.startswith(("/", "https://", "http://")) and not url.startswith("//") \
        else ""


@router.get("/account/notices")
async def notices(request: Request, member: web.SignedIn):
    page = _page_number(request)
    lang = page_language(request)
    mine = PersonNotice.filter(person_id=member.account.person_id)
    total = await mine.count()
    rows = list(await mine.order_by("-id").offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    unread = [n.id for n in rows if n.read_at is None]
    if unread:
        await PersonNotice.filter(id__in=unread, read_at__isnull=True).update(read_at=utcnow())
    shown = [{**texts_in(n, lang), "url": _safe(n.url), "code": n.code, "unread": n.id in unread,
              "when": f"{n.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"} for n in rows]
    return render(request, "orgs/account/notices.html", {
        "notices": shown, "page": page, "more": page * PAGE_SIZE < total,
        "any_unread": await mine.filter(read_at__isnull=True).exists()})


@router.post("/account/notices/read-all")
async def read_all(request: Request, member: web.SignedIn):
    await web.read_form(request)
    await PersonNotice.filter(person_id=member.account.person_id, read_at__isnull=True) \
        .update(read_at=utcnow())
    return RedirectResponse("/account/notices", status_code=303)
