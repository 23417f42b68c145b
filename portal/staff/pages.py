"""The staff console under /staff: sign-in, the queue, the case page and its actions, accounts.

Server-rendered pages on the rules of `portal.staff.casework`, which the JSON API shares: who
sees which case and who may take which step. The session is a StaffSession token in an HttpOnly
cookie; every form that changes something carries the CSRF token. A refused step comes back as
a message on the next page (a flash, signed so that no one else can put words there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from feedback import metrics
from feedback.models import Rating
from portal.cases.categories import BY_KEY as CATEGORIES
from portal.cases.categories import CATEGORIES as CATEGORY_LIST
from portal.cases.models import OPEN_STATUSES, Department, Report, Status
from portal.cases.service import STATUS_LABELS, CaseError
from portal.http import BodyTooLarge, bounded_stream
from portal.i18n import _, gettext_for
from portal.intake.text import CONTROL_CHARS
from portal.photos import PhotoError, store_photo
from portal.staff import casework, schemas
from portal.staff import service as staff
from portal.staff.models import Role, StaffUser
from portal.web import csrf
from portal.web.lang import local_path, page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.staff")
router = APIRouter(prefix="/staff", include_in_schema=False)

COOKIE = "gl_staff"
FLASH = "gl_flash"
PAGE_SIZE = 50
BIGINT_MAX = 2**63 - 1
# A form without a photo: notes of NOTE_CHARS at four bytes a character, and room to spare.
FORM_LIMIT = 64 * 1024
MAX_FIELDS = 20
NUMBER = re.compile(r"^[0-9]{1,19}$")

# How each kind of case event reads on the timeline.
EVENT_LABELS = {
    "created": _("Case opened"),
    "report_added": _("Another report joined the case"),
    "status": _("Status changed"),
    "note": _("Note"),
    "department": _("Department assigned"),
    "organisation": _("Organisation assigned"),
    "merged": _("Merged"),
    "unmerged": _("A report was taken out into a case of its own"),
    "flagged": _("Flagged as a possible duplicate"),
    "recurrence": _("A problem reported here before came back"),
    "photo": _("Photo added"),
    "review": _("Sent back for review after a rating"),
}
CHANNEL_LABELS = {
    "web": _("web portal"), "open311": _("Open311 app"), "hotline": _("hotline"),
    "telegram": _("Telegram"), "wechat": _("WeChat"),
}
# How a report joined its case (Report.join), when not as the case's first report.
JOIN_LABELS = {"repeat": _("repeat report"), "merged": _("merged"),
               "staff": _("merged by staff"), "unmerged": _("taken out of another case")}
ROLE_LABELS = {Role.OPERATOR: _("grid centre operator"), Role.DEPARTMENT: _("department"),
               Role.ADMIN: _("administrator"), Role.EVALUATOR: _("evaluator")}


def _t(request: Request):
    return gettext_for(page_language(request))


# --- session and flash ----------------------------------------------------------------------

def _back_to(request: Request) -> str:
    """Where to return after signing in: this page, or for a form post the page it came from."""
    path = request.url.path
    if request.method != "GET":
        match = re.match(r"^/staff/cases/[^/]+", path)
        return match.group(0) if match else "/staff"
    return path + (f"?{request.url.query}" if request.url.query else "")


async def console_user(request: Request) -> StaffUser:
    """The signed-in staff member; anyone else is sent to the sign-in page."""
    user = await staff.session_user(request.cookies.get(COOKIE))
    if user is None:
        target = "/staff/login?" + urlencode({"next": _back_to(request)})
        raise HTTPException(303, headers={"Location": target})
    await user.fetch_related("department")
    return user


Console = Annotated[StaffUser, Depends(console_user)]


def _signature(request: Request, payload: str) -> str:
    return hmac.new(request.app.state.secret_key, b"flash:" + payload.encode(),
                    hashlib.sha256).hexdigest()[:32]


def redirect_to(request: Request, location: str, message: str | None = None,
              kind: str = "ok") -> RedirectResponse:
    """303 to `location`, with a message (already translated) shown once on that page."""
    response = RedirectResponse(location, status_code=303)
    if message:
        payload = base64.urlsafe_b64encode(json.dumps([kind, message]).encode()).decode()
        response.set_cookie(FLASH, f"{payload}.{_signature(request, payload)}", max_age=120,
                            httponly=True, samesite="lax", path="/staff",
                            secure=request.app.state.settings.secure_cookies)
    return response


def _flash(request: Request) -> dict | None:
    value = request.cookies.get(FLASH, "")
    payload, _dot, signature = value.partition(".")
    if not payload or len(value) > 3000 or not hmac.compare_digest(
            signature, _signature(request, payload)):
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    return {"kind": kind if kind in ("ok", "bad") else "ok", "text": str(text)}


def _department_name(dept: Department | None, lang: str) -> str:
    if dept is None:
        return ""
    return dept.name_en if lang == "en" else dept.name_zh


async def console_page(request: Request, user: StaffUser | None, name: str, context: dict, *,
                status_code: int = 200) -> Response:
    """A console page: the signed-in user, the departments, and a flash if there is one."""
    lang = page_language(request)
    t = gettext_for(lang)
    departments = await Department.all().order_by("id")
    names = {d.code: _department_name(d, lang) for d in departments}
    now = datetime.now(UTC)
    ctx = {
        "user": user, "flash": _flash(request), "departments": departments,
        "is_centre": user is not None and casework.centre(user),
        "works_cases": user is not None and casework.works_cases(user),
        "is_admin": user is not None and user.role == Role.ADMIN,
        "status_name": lambda s: t(STATUS_LABELS[Status(s)]) if s in Status._value2member_map_
        else s,
        "category_name": lambda k: (CATEGORIES[k].name_en if lang == "en" else
                                    CATEGORIES[k].name_zh) if k in CATEGORIES else k,
        "department_name": lambda code: names.get(code, code or ""),
        "role_name": lambda r: t(ROLE_LABELS[Role(r)]),
        "channel_name": lambda c: t(CHANNEL_LABELS[c]) if c in CHANNEL_LABELS else c,
        "join_label": lambda j: t(JOIN_LABELS[j]) if j in JOIN_LABELS else j,
        "event_label": lambda k: t(EVENT_LABELS[k]) if k in EVENT_LABELS else k,
        "age": lambda at: _age(lang, now - at),
        "user_department": _department_name(user.department, lang)
        if user is not None and user.role == Role.DEPARTMENT else "",
    }
    ctx.update(context)
    response = render(request, name, ctx, status_code=status_code)
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/staff")
    response.headers["Cache-Control"] = "no-store"
    # Console addresses name cases: other sites (map tiles) do not learn them.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _age(lang: str, delta: timedelta) -> str:
    # Abbreviated units: one form for any number (no plural forms in the catalogs).
    t = gettext_for(lang)
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return t(_("{n} min")).format(n=minutes)
    if minutes < 48 * 60:
        return t(_("{n} h")).format(n=minutes // 60)
    return t(_("{n} d")).format(n=minutes // 1440)


# --- reading forms ----------------------------------------------------------------------------

def _bad_request(request: Request, message: str, status: int = 400, **params) -> HTTPException:
    return HTTPException(status, _t(request)(message).format(**params))


async def _form(request: Request, *, limit: int = FORM_LIMIT, files: int = 0) -> FormData:
    """The posted form, bounded (declared length, streamed bytes, fields, files), CSRF-checked."""
    declared = request.headers.get("content-length", "")
    content_type, _params = parse_options_header(request.headers.get("content-type", ""))
    if not content_type and declared in ("", "0"):
        # Nothing was posted (so no token either).
        data = FormData()
    elif content_type == b"multipart/form-data":
        data = await _parse(request, MultiPartParser(
            request.headers, bounded_stream(request, limit), max_files=files,
            max_fields=MAX_FIELDS, max_part_size=FORM_LIMIT))
    elif content_type == b"application/x-www-form-urlencoded":
        data = await _parse(request, FormParser(
            request.headers, bounded_stream(request, limit), max_fields=MAX_FIELDS,
            max_part_size=FORM_LIMIT))
    else:
        raise _bad_request(request, _("The form could not be read."), 415)
    token = data.get(csrf.FIELD)
    csrf.check(request, token if isinstance(token, str) else None, page_language(request))
    return data


async def _parse(request: Request, parser: MultiPartParser | FormParser) -> FormData:
    try:
        return await parser.parse()
    except BodyTooLarge as exc:
        raise _bad_request(request, _("What was sent is too large."), 413) from exc
    except MultiPartException as exc:
        raise _bad_request(request, _("The form could not be read.")) from exc


def _text(request: Request, form: FormData, name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise _bad_request(request, _("The form could not be read."))
    return value


def _model(request: Request, model, **values):
    """A casework body from form fields; what a person cannot have typed is a 422."""
    try:
        return model(**values)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc")) or "?"
        raise _bad_request(request, _("Please check what you entered ({fields})."), 422,
                           fields=fields) from exc


async def _act(request: Request, back: str, coro, done: str) -> RedirectResponse:
    """Run a casework step; back to `back` with `done`, or with why it was refused."""
    t = _t(request)
    try:
        await coro
    except casework.Refused as exc:
        if exc.kind == "not_found":
            raise HTTPException(404, exc.translated(t)) from exc
        return redirect_to(request, back, exc.translated(t), "bad")
    except CaseError as exc:
        return redirect_to(request, back, exc.translated(t), "bad")
    return redirect_to(request, back, t(done))


def _case_url(code: str) -> str:
    return f"/staff/cases/{quote(casework.normalise_code(code))}"


# --- sign-in ----------------------------------------------------------------------------------

def _next(value: str | None) -> str:
    target = local_path(value, "/staff")
    return target if target == "/staff" or target.startswith("/staff/") or \
        target.startswith("/staff?") else "/staff"


@router.get("/login")
async def login_page(request: Request, next: str | None = None):
    if await staff.session_user(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(_next(next), status_code=303)
    return await console_page(request, None, "staff/login.html", {"next": _next(next), "username": ""})


@router.post("/login")
async def login(request: Request):
    form = await _form(request)
    settings = request.app.state.settings
    username = _text(request, form, "username").strip()
    password = _text(request, form, "password")
    target = _next(_text(request, form, "next"))
    user = None
    # PostgreSQL refuses NUL in text: such a name is simply wrong.
    if username and password and not CONTROL_CHARS.search(username):
        user = await staff.authenticate(
            username, password, max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes))
    if user is None:
        # The same answer whether the name exists, the password is wrong or sign-in is
        # paused; "try again after" is when a pause set now would end, a bound for any pause.
        t = _t(request)
        until = datetime.now(UTC) + timedelta(minutes=settings.login_lockout_minutes)
        error = t(_("The username or password is not correct. After {n} failed attempts in a "
                    "row, sign-in is paused for {m} minutes: if that has happened, try again "
                    "after {time}.")).format(
            n=settings.login_max_failures, m=settings.login_lockout_minutes,
            time=until.astimezone(casework.SHANGHAI).strftime("%H:%M"))
        return await console_page(request, None, "staff/login.html",
                           {"next": target, "username": username[:64], "error": error},
                           status_code=401)
    token, session = await staff.start_session(user)
    log.info("staff %s signed in to the console", user.username)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/staff",
                        secure=settings.secure_cookies,
                        max_age=int((session.expires_at - datetime.now(UTC)).total_seconds()))
    return response


@router.post("/logout")
async def logout(request: Request):
    await _form(request)
    token = request.cookies.get(COOKIE)
    if token:
        await staff.end_session(token)
    response = redirect_to(request, "/staff/login", _t(request)(_("You have signed out.")))
    response.delete_cookie(COOKIE, path="/staff")
    return response


# --- the queue --------------------------------------------------------------------------------

def _cursor(request: Request, value: str | None) -> int | None:
    if not value:
        return None
    if not NUMBER.match(value) or not 1 <= int(value) <= BIGINT_MAX:
        raise _bad_request(request, _("That page does not exist."))
    return int(value)


@router.get("")
@router.get("/cases")
async def queue(request: Request, user: Console, status: str = "open", category: str = "",
                department: str = "", duplicates: str = "", overdue: str = "", q: str = "",
                review: str = "", before: str | None = None, after: str | None = None):
    if not casework.works_cases(user):
        return RedirectResponse("/staff/tenders", status_code=303)
    if status == "open":
        statuses = list(OPEN_STATUSES)
    elif status == "all":
        statuses = None
    elif status in Status._value2member_map_:
        statuses = [Status(status)]
    else:
        raise _bad_request(request, _("There is no such status."))
    if category and category not in CATEGORIES:
        raise _bad_request(request, _("There is no such category."))
    if user.role == Role.DEPARTMENT:
        department = ""
    if department and not re.match(schemas.DEPARTMENT_CODE, department):
        raise _bad_request(request, _("There is no such department."))
    code = casework.normalise_code(q) if q else ""
    if len(code) > 40:
        raise _bad_request(request, _("There is no such case."))
    if code:
        # A case number finds its case whatever the other filters say.
        status, statuses, category, department, duplicates, overdue = "all", None, "", "", "", ""
        review = ""
    f = schemas.CaseFilter.model_construct(
        status=statuses, category=[category] if category else None,
        department=department or None, possible_duplicate=True if duplicates else None,
        needs_review=True if review else None, q=code or None, created_from=None,
        created_to=None, before_id=_cursor(request, before), limit=PAGE_SIZE)
    settings = request.app.state.settings
    now = datetime.now(UTC)
    try:
        page = await casework.queue(user, f, after_id=_cursor(request, after), now=now,
                                    overdue_days=settings.overdue_days if overdue else None)
    except casework.Refused as exc:
        raise HTTPException(400, exc.translated(_t(request))) from exc
    filters = {"status": status, "category": category, "department": department,
               "duplicates": "1" if duplicates else "", "overdue": "1" if overdue else "",
               "review": "1" if review else "", "q": code}
    kept = {k: v for k, v in filters.items() if v and not (k == "status" and v == "open")}
    return await console_page(request, user, "staff/queue.html", {
        "page": page, "filters": filters, "categories": CATEGORY_LIST,
        "statuses": list(Status),
        "overdue_ids": {c.id for c in page.cases
                        if casework.is_overdue(c, now, settings.overdue_days)},
        "older_url": "/staff?" + urlencode({**kept, "before": page.older}) if page.older
        else None,
        "newer_url": "/staff?" + urlencode({**kept, "after": page.newer}) if page.newer
        else None,
        "filtered": bool(kept),
    })


# --- one case ---------------------------------------------------------------------------------

@router.get("/cases/{code}")
async def case_page(code: str, request: Request, user: Console):
    return await _case_view(request, user, code)


async def _case_view(request: Request, user: StaffUser, code: str, *,
                     refusal: str | None = None, status_code: int = 200) -> Response:
    """The case page; with `refusal`, answering a form that could not be used (4xx)."""
    try:
        case = await casework.case_detail(user, code)
    except casework.Refused as exc:
        raise HTTPException(404, exc.translated(_t(request))) from exc
    settings = request.app.state.settings
    status = Status(case.status)
    offered = casework.offered_statuses(user, status)
    centre = casework.centre(user)
    report_photos: dict[int, list] = {}
    for photo in case.photos:
        if photo.report_id is not None:
            report_photos.setdefault(photo.report_id, []).append(photo)
    return await console_page(request, user, "staff/case.html", {
        "case": case, "offered": [s for s in offered if s != Status.REJECTED],
        "may_accept": status == Status.NEW and Status.ACCEPTED in offered,
        "may_reject": Status.REJECTED in offered,
        "is_open": status in OPEN_STATUSES,
        "may_dispatch": centre and status in OPEN_STATUSES,
        "may_merge": centre and status in OPEN_STATUSES,
        "may_unmerge": centre and case.report_count > 1,
        "report_photos": report_photos,
        "fix_photos": [p for p in case.photos if p.kind == "fix"],
        "overdue": casework.is_overdue(case, datetime.now(UTC), settings.overdue_days),
        "map_points": _map_points(case) if settings.map_tile_url else [],
        "max_photo_mb": settings.max_photo_bytes // (1024 * 1024),
        "review_requested_at": case.review_requested_at,
        **await _satisfaction(case.id),
        **({"flash": {"kind": "bad", "text": refusal}} if refusal else {}),
    }, status_code=status_code)


async def _satisfaction(case_id: int) -> dict:
    """The case's ratings for the case page."""
    return {
        "rating_rollup": await metrics.case_rollup(case_id),
        "ratings": await Rating.filter(case_id=case_id).order_by("-updated_at", "-id"),
    }


def _map_points(case: schemas.CaseDetail) -> list[dict]:
    """The case's point and where each report was made (staff see the exact points)."""
    points = [{"lat": case.lat, "lng": case.lng, "title": case.code}] \
        if case.lat is not None else []
    seen = {(case.lat, case.lng)}
    for n, r in enumerate(case.reports, start=1):
        if r.lat is not None and (r.lat, r.lng) not in seen:
            seen.add((r.lat, r.lng))
            points.append({"lat": r.lat, "lng": r.lng, "title": f"#{n}"})
    return points


@router.post("/cases/{code}/status")
async def set_status(code: str, request: Request, user: Console):
    form = await _form(request)
    body = _model(request, schemas.StatusIn, status=_text(request, form, "status"),
                  public_note=_text(request, form, "public_note") or None,
                  internal_note=_text(request, form, "internal_note") or None,
                  reason=_text(request, form, "reason") or None)
    return await _act(request, _case_url(code), casework.set_status(user, code, body),
                      _("The status was changed."))


@router.post("/cases/{code}/notes")
async def add_note(code: str, request: Request, user: Console):
    form = await _form(request)
    public = _text(request, form, "public_note").strip()
    internal = _text(request, form, "internal_note").strip()
    if not (public or internal):
        return redirect_to(request, _case_url(code),
                         _t(request)(_("Write a public or an internal note.")), "bad")
    body = _model(request, schemas.NoteIn, public_note=public or None,
                  internal_note=internal or None)
    return await _act(request, _case_url(code), casework.add_note(user, code, body),
                      _("The note was added."))


@router.post("/cases/{code}/department")
async def dispatch(code: str, request: Request, user: Console):
    form = await _form(request)
    body = _model(request, schemas.DepartmentIn,
                  department_code=_text(request, form, "department_code") or None)
    return await _act(request, _case_url(code), casework.assign_department(user, code, body),
                      _("The department was set."))


@router.post("/cases/{code}/merge")
async def merge(code: str, request: Request, user: Console):
    form = await _form(request)
    into = _text(request, form, "into").strip()
    if not into:
        return redirect_to(request, _case_url(code),
                         _t(request)(_("Give the number of the case to merge into.")), "bad")
    body = _model(request, schemas.MergeIn, into=into)
    t = _t(request)
    try:
        target = await casework.merge(user, code, body)
    except casework.Refused as exc:
        if exc.kind == "not_found":
            # 404 when it is this case that is unknown; otherwise the other one is.
            await _visible_or_404(request, user, code)
            return redirect_to(request, _case_url(code), t(_("There is no case {code}.")).format(
                code=casework.normalise_code(into)[:40]), "bad")
        return redirect_to(request, _case_url(code), exc.translated(t), "bad")
    except CaseError as exc:
        return redirect_to(request, _case_url(code), exc.translated(t), "bad")
    return redirect_to(request, _case_url(target.code),
                     t(_("{code} was merged into this case.")).format(
                         code=casework.normalise_code(code)))


@router.post("/cases/{code}/reports/{report_id}/unmerge")
async def unmerge(code: str, report_id: str, request: Request, user: Console):
    await _form(request)
    case = await _visible_or_404(request, user, code)
    if not NUMBER.match(report_id) or int(report_id) > BIGINT_MAX or not await \
            Report.filter(id=int(report_id), case_id=case.id).exists():
        raise _bad_request(request, _("No such report."), 404)
    t = _t(request)
    try:
        new = await casework.unmerge(user, int(report_id))
    except casework.Refused as exc:
        return redirect_to(request, _case_url(code), exc.translated(t), "bad")
    except CaseError as exc:
        return redirect_to(request, _case_url(code), exc.translated(t), "bad")
    return redirect_to(request, _case_url(code), t(_(
        "The report was taken out into the new case {code}.")).format(code=new.code))


@router.post("/cases/{code}/photos")
async def add_photo(code: str, request: Request, user: Console):
    settings = request.app.state.settings
    form = await _form(request, limit=settings.max_photo_bytes + FORM_LIMIT, files=1)
    try:
        await _visible_or_404(request, user, code)
        upload = form.get("photo")
        t = _t(request)
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await _case_view(request, user, code, status_code=400,
                                    refusal=t(_("Choose a photo to upload.")))
        data = await upload.read(settings.max_photo_bytes + 1)
        note = _text(request, form, "public_note").strip() or None
        if note:
            _model(request, schemas.NoteIn, public_note=note)
        try:
            stored = await store_photo(data, settings.media_dir,
                                       max_bytes=settings.max_photo_bytes,
                                       max_pixels=settings.max_photo_pixels,
                                       max_side=settings.photo_max_side)
        except PhotoError as exc:
            too_large = len(data) > settings.max_photo_bytes
            return await _case_view(request, user, code, refusal=t(str(exc)),
                                    status_code=413 if too_large else 400)
        return await _act(request, _case_url(code),
                          casework.add_fix_photo(user, code, stored, note),
                          _("The photo of the repair was added."))
    finally:
        await form.close()


async def _visible_or_404(request: Request, user: StaffUser, code: str):
    try:
        return await casework.visible_case(user, code)
    except casework.Refused as exc:
        raise HTTPException(404, exc.translated(_t(request))) from exc


@router.get("/photos/{photo_id}")
async def photo(photo_id: str, request: Request, user: Console):
    """A photo of a case the user may see (residents' evidence included, so staff only)."""
    if not NUMBER.match(photo_id) or int(photo_id) > BIGINT_MAX:
        raise _bad_request(request, _("No such photo."), 404)
    try:
        found = await casework.visible_photo(user, int(photo_id))
    except casework.Refused as exc:
        raise HTTPException(404, exc.translated(_t(request))) from exc
    media = request.app.state.settings.media_dir.resolve()
    path = (media / found.path).resolve()
    if not path.is_relative_to(media) or not path.is_file():
        raise _bad_request(request, _("No such photo."), 404)
    return FileResponse(path, media_type=found.content_type,
                        headers={"Cache-Control": "private, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


# --- satisfaction -----------------------------------------------------------------------------

def _day(request: Request, value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise _bad_request(request, _("Please give the days as YYYY-MM-DD, e.g. 2026-11-28."))


@router.get("/metrics")
async def metrics_page(request: Request, user: Console,
                       since: Annotated[str, Query(alias="from")] = "",
                       until: Annotated[str, Query(alias="to")] = ""):
    """Satisfaction ratings of a period: the total, and a table per category, department,
    organisation and case (the worst first). A department account sees its own department's cases."""
    first, last = _day(request, since), _day(request, until)
    try:
        start, end = casework.day_bounds(first, last)
    except casework.Refused as exc:
        raise HTTPException(400, exc.translated(_t(request))) from exc
    scope = {"since": start, "until": end, "department_id": casework.metrics_department(user)}
    groups = {group: await metrics.rollup(group, **scope, limit=PAGE_SIZE)
              for group in ("category", "department", "organisation", "case")}
    return await console_page(request, user, "staff/metrics.html", {
        "since": first.isoformat() if first else "", "until": last.isoformat() if last else "",
        "total": (await metrics.rollup(None, **scope))[0], "groups": groups,
        "review_count": await casework.scope(user).filter(
            review_requested_at__isnull=False).count(),
    })


# --- accounts (admin) -------------------------------------------------------------------------

def _admin(request: Request, user: StaffUser) -> None:
    if user.role != Role.ADMIN:
        raise _bad_request(
            request, _("Only an administrator can manage accounts and API keys."), 403)


@router.get("/users")
async def users_page(request: Request, user: Console):
    _admin(request, user)
    accounts = await StaffUser.all().order_by("username").prefetch_related("department")
    return await console_page(request, user, "staff/users.html",
                       {"accounts": accounts, "roles": list(Role)})


@router.post("/users")
async def create_user(request: Request, user: Console):
    _admin(request, user)
    form = await _form(request)
    t = _t(request)
    role = _text(request, form, "role")
    if role not in Role._value2member_map_:
        raise _bad_request(request, _("There is no such role."), 422)
    department = _text(request, form, "department") if role == Role.DEPARTMENT else ""
    if department and not re.match(schemas.DEPARTMENT_CODE, department):
        raise _bad_request(request, _("There is no such department."), 422)
    try:
        # create_user checks the name (letters, digits, . - _ only) and the password.
        created = await staff.create_user(_text(request, form, "username").strip(),
                                          _text(request, form, "password"), role,
                                          department or None)
    except staff.StaffError as exc:
        return redirect_to(request, "/staff/users", exc.translated(t), "bad")
    log.info("staff %s created the %s account %s", user.username, created.role.value,
             created.username)
    return redirect_to(request, "/staff/users", t(_("The account {username} was created.")).format(
        username=created.username))


@router.post("/users/{username}/deactivate")
async def deactivate_user(username: str, request: Request, user: Console):
    _admin(request, user)
    await _form(request)
    t = _t(request)
    try:
        target = await staff.deactivate_user(username[:65], by=user)
    except staff.NoSuchAccount as exc:
        raise HTTPException(404, exc.translated(t)) from exc
    except staff.StaffError as exc:
        return redirect_to(request, "/staff/users", exc.translated(t), "bad")
    log.info("staff %s deactivated the account %s", user.username, target.username)
    return redirect_to(request, "/staff/users", t(_(
        "The account {username} was deactivated; its sessions have ended.")).format(
        username=target.username))


# --- API keys (admin) -------------------------------------------------------------------------

# A new key rides to the page that shows it in a cookie of its own, signed, for that page only
# and for two minutes; the page shows it once and drops the cookie. (Answering the form with
# the page itself would make a second key whenever the page is reloaded.)
NEW_KEY = "gl_new_key"


def _new_key_signature(request: Request, payload: str) -> str:
    return _signature(request, "new-key:" + payload)


async def _new_key(request: Request) -> dict | None:
    value = request.cookies.get(NEW_KEY, "")
    payload, _dot, signature = value.rpartition(".")
    key_id, _colon, key = payload.partition(":")
    if not key or len(value) > 500 or not NUMBER.match(key_id) or not hmac.compare_digest(
            signature, _new_key_signature(request, payload)):
        return None
    row = await staff.api_key(int(key_id))
    return {"row": row, "key": key} if row is not None else None


@router.get("/apikeys")
async def api_keys_page(request: Request, user: Console):
    _admin(request, user)
    response = await console_page(request, user, "staff/apikeys.html", {
        "keys": await staff.api_keys(), "lines": staff.HOTLINE_LINES,
        "created": await _new_key(request)})
    if NEW_KEY in request.cookies:
        response.delete_cookie(NEW_KEY, path="/staff/apikeys")
    return response


@router.post("/apikeys")
async def create_api_key(request: Request, user: Console):
    _admin(request, user)
    form = await _form(request)
    kind = _text(request, form, "kind")
    try:
        row, key = await staff.create_api_key(
            _text(request, form, "name"), kind,
            _text(request, form, "line") if kind == "hotline" else None)
    except staff.StaffError as exc:
        return redirect_to(request, "/staff/apikeys", exc.translated(_t(request)), "bad")
    log.info("staff %s created %s API key %d", user.username, row.kind, row.id)
    response = redirect_to(request, "/staff/apikeys")
    payload = f"{row.id}:{key}"
    response.set_cookie(NEW_KEY, f"{payload}.{_new_key_signature(request, payload)}",
                        max_age=120, httponly=True, samesite="strict", path="/staff/apikeys",
                        secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/apikeys/{key_id}/deactivate")
async def deactivate_api_key(key_id: str, request: Request, user: Console):
    _admin(request, user)
    await _form(request)
    t = _t(request)
    try:
        row = await staff.deactivate_api_key(int(key_id) if NUMBER.match(key_id) else 0)
    except staff.NoSuchApiKey as exc:
        raise HTTPException(404, exc.translated(t)) from exc
    log.info("staff %s deactivated %s API key %d", user.username, row.kind, row.id)
    return redirect_to(request, "/staff/apikeys", t(_(
        "The key {id} ({name}) is deactivated: every server refuses it within 30 seconds.")
    ).format(id=row.id, name=row.name))
