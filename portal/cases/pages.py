"""The resident pages: home, the report form and its receipt, a case's tracking page with live
updates (server-sent events), the public list of open cases, and public photos of repairs.

A web reporter is a long-lived random browser cookie (identity `web:browser:<its SHA-256>`: what
staff see and the database keeps cannot be replayed as the cookie), throttled by the intake per
person like every channel. Clearing cookies makes a new person, so every form post is also
counted per network address (ADDRESS_LIMITS), generously: a whole housing estate may reach us
through one address of its provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import math
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from tortoise import connections

from portal.cases import public
from portal.cases.categories import BY_KEY
from portal.cases.models import (
    OPEN_STATUSES,
    RATEABLE,
    Case,
    Person,
    Report,
    Subscription,
)
from portal.cases.rating_form import RatingForm, reporter_id
from portal.cases.service import subscribe, utcnow
from portal.i18n import _, gettext_for
from portal.intake.service import person_for, submit, validate
from portal.intake.submission import InvalidSubmission, Submission, Throttled
from portal.intake.text import CONTROL_CHARS
from portal.intake.throttle import Throttle, storage_for
from portal.open311.service import MAX_EMAIL_CHARS, PHONE_PATTERN, Open311Error, size_text
from portal.open311.service import public_photo as open311_public_photo
from portal.open311.web import Form, read_form
from portal.photos import PhotoError, store_photo
from portal.web import csrf
from portal.web.lang import page_language
from portal.web.templating import local_time, render

router = APIRouter(include_in_schema=False)

REPORTER_COOKIE = "gl_reporter"
REPORTER_COOKIE_DAYS = 2 * 365
# Per network address, whatever the cookies: form posts that reach the intake, and follows.
ADDRESS_LIMITS = {"report": "30/10 minutes;300/day", "follow": "10/10 minutes;50/day",
                  # Member and volunteer sign-ups (orgs.accounts.pages).
                  "account": "10/hour;50/day"}
# Live updates: each connection reads the case's new public events when told of news and every
# settings.live_poll_seconds, and ends after a while; the browser reconnects with
# Last-Event-ID, which also bounds how long a server shutdown waits for open streams.
STREAM_LIFETIME_S = 25.0
STREAM_RETRY_MS = 2000
# Open streams per server process (each reads the database now and then); past this a
# stream is refused with 503 and the page simply stays as loaded.
MAX_STREAMS = 1000
# Of which from one network address: one client cannot take them all.
MAX_STREAMS_PER_ADDRESS = 50

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
# Row ids and cursors in paths and queries: ASCII digits only (str.isdigit also takes "²" and
# "١", which int() refuses or reads), few enough for a BIGINT.
_ID = re.compile(r"[0-9]{1,18}")
_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_PHONE = re.compile(PHONE_PATTERN)
# Which form field an intake refusal belongs next to.
FIELD_OF = {"category": "category", "text": "description", "address": "location",
            "lat": "location", "crs": "location", "media": "photos", "contact": "contact"}
SENT_SEVERAL = _("You have sent several reports in a short time.")
NETWORK_BUSY = _("Too many requests from your network.")
# Stand-ins for a refused field, to look for problems in the other fields.
FILLERS = {"category": {"category": "other"}, "text": {"text": "-"},
           "lat": {"lat": None, "lng": None, "address": "-"}, "address": {"address": "-"}}


# ------------------------------------------------------------------------------ home, list


@router.get("/")
async def home(request: Request):
    lang = page_language(request)
    return render(request, "cases/home.html", {
        "categories": public.categories(lang),
        "cases": await public.recent_cases(lang),
    })


@router.get("/cases")
async def case_list(request: Request, category: str | None = None, status: str | None = None,
                    before: str | None = None):
    lang = page_language(request)
    # Filters from a hand-made or stale link: an unknown value is no filter.
    category = category if category in BY_KEY else None
    status = status if status in public.LISTED_STATUSES else None
    before_id = _id(before)
    cases, next_before = await public.list_cases(lang, category=category, status=status,
                                                 before_id=before_id)
    return render(request, "cases/list.html", {
        "cases": cases, "next_before": next_before, "first_page": before_id is None,
        "categories": public.categories(lang), "category": category, "status": status,
        "statuses": [(s.value, public.status_label(s, lang)) for s in public.LISTED_STATUSES],
        "points": _points(cases),
    })


def _id(value: str | None) -> int | None:
    return int(value) if value and _ID.fullmatch(value) else None


def _points(cases: list[public.PublicCase]) -> list[dict]:
    return [{"code": c.code, "lat": c.lat, "lng": c.lng, "title": c.category,
             "status": c.status_label} for c in cases if c.lat is not None]


# ------------------------------------------------------------------------------ report form


@dataclass
class ReportForm:
    category: str = ""
    description: str = ""
    address: str = ""
    lat: str = ""
    lng: str = ""
    contact: str = ""
    form_id: str = ""
    had_photos: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, fields: dict[str, list[str]]) -> ReportForm:
        def one(name: str, limit: int = 4000) -> str:
            values = fields.get(name) or [""]
            return CONTROL_CHARS.sub("", values[0])[:limit]

        form_id = one("form_id", 64)
        return cls(category=one("category", 40), description=one("description"),
                   address=one("address", 400), lat=one("lat", 40), lng=one("lng", 40),
                   contact=one("contact", 300),
                   form_id=form_id if _FORM_ID.fullmatch(form_id) else _new_form_id())


def _new_form_id() -> str:
    return secrets.token_urlsafe(16)


def _reporter_token(request: Request) -> str:
    token = request.cookies.get(REPORTER_COOKIE)
    if token and _TOKEN.fullmatch(token):
        return token
    if not getattr(request.state, "new_reporter", None):
        request.state.new_reporter = secrets.token_urlsafe(32)
    return request.state.new_reporter


def web_reporter(request: Request) -> str | None:
    """This browser's reporter identity, as `_submission` files it; None without the cookie
    (no new one is made: a browser that never reported is nobody yet)."""
    token = request.cookies.get(REPORTER_COOKIE)
    if not token or not _TOKEN.fullmatch(token):
        return None
    return _identity_of(token)


def _identity_of(token: str) -> str:
    return "web:browser:" + hashlib.sha256(token.encode()).hexdigest()[:40]


def _keep_reporter(request: Request, response) -> None:
    token = getattr(request.state, "new_reporter", None)
    if token:
        response.set_cookie(REPORTER_COOKIE, token, max_age=REPORTER_COOKIE_DAYS * 86400,
                            httponly=True, samesite="lax",
                            secure=request.app.state.settings.secure_cookies)


def _form_page(request: Request, form: ReportForm, *, status_code: int = 200,
               notice: str | None = None, headers: dict | None = None):
    settings = request.app.state.settings
    lang = page_language(request)
    _reporter_token(request)
    response = render(request, "cases/report.html", {
        "form": form, "errors": form.errors, "notice": notice,
        "categories": public.categories(lang),
        "max_photos": settings.max_photos, "max_photo_bytes": settings.max_photo_bytes,
        "max_photo_size": size_text(settings.max_photo_bytes),
        "max_text_chars": settings.max_text_chars,
        "report_as": getattr(request.state, "report_as", None),
    }, status_code=status_code, headers=headers)
    _keep_reporter(request, response)
    return response


async def _find_report_as(request: Request) -> None:
    """Who a signed-in member reports as (request.state.report_as): set by the composition
    (portal/app.py) so that the resident pages know nothing of organisations."""
    hook = getattr(request.app.state, "report_as", None)
    request.state.report_as = await hook(request) if hook else None


@router.get("/report")
async def report_form(request: Request, category: str | None = None):
    await _find_report_as(request)
    return _form_page(request, ReportForm(category=category if category in BY_KEY else "",
                                          form_id=_new_form_id()))


def _point(form: ReportForm) -> tuple[float | None, float | None]:
    if not form.lat.strip() and not form.lng.strip():
        return None, None
    try:
        return float(form.lat), float(form.lng)
    except ValueError:
        raise InvalidSubmission(_("The location is not a valid point."), "lat") from None


def _contact(value: str) -> tuple[str | None, str | None]:
    """(email, phone) from the one contact field."""
    value = value.strip()
    if not value:
        return None, None
    if "@" in value:
        if len(value) <= MAX_EMAIL_CHARS and _EMAIL.fullmatch(value):
            return value.lower(), None
    elif _PHONE.fullmatch(value):
        return None, ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)
    raise InvalidSubmission(_("Enter an e-mail address or a phone number, or leave this "
                              "empty."), "contact")


def _submission(form: ReportForm, request: Request, lang: str, settings
                ) -> tuple[Submission, dict[str, str]]:
    """The submission, and what is wrong with the form (field: message), all at once."""
    t = gettext_for(lang)
    errors: dict[str, str] = {}
    lat = lng = email = phone = None
    try:
        lat, lng = _point(form)
    except InvalidSubmission as exc:
        errors["location"] = t(exc.message)
    try:
        email, phone = _contact(form.contact)
    except InvalidSubmission as exc:
        errors["contact"] = t(exc.message)
    token = _reporter_token(request)
    # The same form sent twice (a double tap, a resend after a timeout) files one report.
    ref = hashlib.sha256(f"{token}:{form.form_id}".encode()).hexdigest()[:40]
    reporter = _identity_of(token)
    sub = Submission(reporter=reporter, channel="web", text=form.description,
                     category=form.category, lat=lat, lng=lng, crs="wgs84",
                     address=form.address or None, language=lang, email=email, phone=phone,
                     external_ref=f"web:{ref}")
    # The intake's validation stops at the first problem; a check of a copy with that field
    # filled in finds the next one.
    probe = dataclasses.replace(sub)
    for _attempt in range(len(FILLERS) + 1):
        try:
            validate(probe, settings)
            break
        except InvalidSubmission as exc:
            errors.setdefault(FIELD_OF.get(exc.field or "", "general"), t(exc.message))
            if exc.field not in FILLERS:
                break
            for name, value in FILLERS[exc.field].items():
                setattr(probe, name, value)
    return sub, errors


def _wait_text(lang: str, seconds: int) -> str:
    """When someone throttled may send again, as a local time and a rough duration."""
    t = gettext_for(lang)
    at = utcnow() + timedelta(seconds=seconds)
    minutes = max(1, math.ceil(seconds / 60))
    if minutes >= 120:
        return t(_("You can send again after {time} (in about {h} hours).")).format(
            time=local_time(at, "%m-%d %H:%M"), h=math.ceil(minutes / 60))
    return t(_("You can send again after {time} (in about {m} minutes).")).format(
        time=local_time(at, "%H:%M"), m=minutes)


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


async def address_wait(request: Request, kind: str) -> int | None:
    """Count one post of `kind` from the client's address; seconds to wait when over."""
    state = request.app.state
    throttles = getattr(state, "web_address_throttles", None)
    if throttles is None:
        throttles = {k: Throttle(storage_for(state.settings.redis_url), limits,
                                 namespace=f"gridlink:web-{k}")
                     for k, limits in ADDRESS_LIMITS.items()}
        state.web_address_throttles = throttles
    wait = await throttles[kind].hit(_address(request))
    return int(wait) if wait is not None else None


def _sentences(lang: str, *texts: str) -> str:
    return ("" if lang == "zh-CN" else " ").join(texts)


def _throttled(request: Request, form: ReportForm, lang: str, seconds: int, reason: str):
    notice = _sentences(lang, gettext_for(lang)(reason), _wait_text(lang, seconds))
    return _form_page(request, form, status_code=429, notice=notice,
                      headers={"Retry-After": str(seconds)})


async def _posted(request: Request, lang: str) -> Form:
    """The posted form, CSRF-checked (Open311Error when it cannot be read)."""
    posted = await read_form(request, request.app.state.settings)
    csrf.check(request, (posted.fields.get(csrf.FIELD) or [None])[0], lang)
    return posted


@router.post("/report")
async def report_post(request: Request):
    settings = request.app.state.settings
    lang = page_language(request)
    t = gettext_for(lang)
    try:
        posted = await _posted(request, lang)
    except Open311Error as exc:
        # Nothing of the form could be kept: the body was over the bound or not a form.
        form = ReportForm(form_id=_new_form_id(), had_photos=True)
        form.errors["photos" if exc.status == 413 else "general"] = exc.text(lang)
        return _form_page(request, form, status_code=exc.status)

    await _find_report_as(request)
    form = ReportForm.of(posted.fields)
    uploads = [data for data in posted.uploads if data]
    form.had_photos = bool(uploads)
    # What the intake would refuse is refused before any work on photos.
    sub, form.errors = _submission(form, request, lang, settings)
    if (who := request.state.report_as) is not None:
        # A signed-in member's reports join their account's person, and count for their
        # organisation when they say so.
        sub.reporter = who.identity
        if who.organisation_id and (posted.fields.get("for_org") or [""])[0] == "1":
            sub.extra["organisation_id"] = who.organisation_id
    if form.errors:
        return _form_page(request, form, status_code=422)

    wait = await address_wait(request, "report")
    if wait is not None:
        return _throttled(request, form, lang, wait, NETWORK_BUSY)

    try:
        for data in uploads:
            sub.photos.append(await store_photo(
                data, Path(settings.media_dir), max_bytes=settings.max_photo_bytes,
                max_pixels=settings.max_photo_pixels, max_side=settings.photo_max_side))
    except PhotoError as exc:
        form.errors["photos"] = t(str(exc))
        return _form_page(request, form, status_code=422)

    try:
        receipt = await submit(sub, throttle=request.app.state.throttle, settings=settings)
    except InvalidSubmission as exc:
        form.errors[FIELD_OF.get(exc.field or "", "general")] = t(exc.message)
        return _form_page(request, form, status_code=422)
    except Throttled as exc:
        return _throttled(request, form, lang, exc.retry_after, SENT_SEVERAL)
    response = RedirectResponse(f"/receipts/{_receipt_token(request, receipt.report_id)}",
                                status_code=303)
    _keep_reporter(request, response)
    return response


# ------------------------------------------------------------------------------ receipt


def _mac(request: Request, report_id: int) -> str:
    return hmac.new(request.app.state.secret_key, f"receipt:{report_id}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def _receipt_token(request: Request, report_id: int) -> str:
    """The receipt's address: only the browser that filed the report knows it."""
    return f"{report_id}-{_mac(request, report_id)}"


@router.get("/receipts/{token}")
async def receipt(token: str, request: Request):
    number, _sep, mac = token.partition("-")
    report_id = _id(number)
    report = None
    if report_id is not None and hmac.compare_digest(mac.encode(),
                                                     _mac(request, report_id).encode()):
        report = await Report.get_or_none(id=report_id)
    if report is None:
        raise HTTPException(404, gettext_for(page_language(request))(
            _("There is no such receipt. Check the address, or find your case by its number.")))
    case = await public.living_case(await Case.get(id=report.case_id))
    return render(request, "cases/receipt.html", {
        "code": case.code, "join": report.join, "reporter_count": case.reporter_count,
        "status_label": public.status_label(case.status, page_language(request)),
    })


# ------------------------------------------------------------------------------ tracking


async def _case(code: str, request: Request) -> Case:
    case = await public.find_case(code)
    if case is None:
        raise HTTPException(404, gettext_for(page_language(request))(
            _("There is no case with this number. Case numbers look like GL-20261128-0042.")))
    return case


@router.get("/cases/{code}")
async def case_page(request: Request, case: Case = Depends(_case)):
    living = await public.living_case(case)
    if living.id != case.id:
        return RedirectResponse(f"/cases/{living.code}?merged_from={case.code}",
                                status_code=303)
    merged_from = request.query_params.get("merged_from", "")
    return await _tracking_page(
        request, case, merged_from=merged_from if public.CODE.fullmatch(merged_from) else None,
        following=request.query_params.get("following") == "1",
        rated=request.query_params.get("rated") == "1")


async def _tracking_page(request: Request, case: Case, *, merged_from: str | None = None,
                         following: bool = False, follow_error: str | None = None,
                         follow_email: str = "", rated: bool = False,
                         status_code: int = 200):
    lang = page_language(request)
    depts = await public.departments()
    events = await public.public_events(case.id)
    view = public.public_case(case, lang, depts)
    view.last_event_id = events[-1].id if events else 0
    return render(request, "cases/case.html", {
        "case": view, "entries": public.timeline(events, lang, depts),
        "photos": await public.fix_photos(case.id), "merged_from": merged_from,
        "following": following, "follow_error": follow_error, "follow_email": follow_email,
        "rating": await _rating_form(request, case, rated),
    }, status_code=status_code)


async def _rating_form(request: Request, case: Case, rated: bool) -> RatingForm | None:
    """The rating form (POST /cases/{code}/rating, feedback/routes.py) for the browser that
    reported the case; None for everyone else. Hidden until the case is resolved: the page's
    script shows it when the live update says so."""
    if case.status not in (*OPEN_STATUSES, *RATEABLE):
        return None
    person_id = await reporter_id(web_reporter(request), case)
    if person_id is None:
        return None
    # The person's rating so far, through the case's `ratings` (feedback.models.Rating).
    previous = await case.ratings.filter(person_id=person_id).first()
    return RatingForm.filled(f"/cases/{case.code}/rating", previous,
                             done=rated and previous is not None,
                             hidden=case.status not in RATEABLE)


def _last_event_id(request: Request) -> int:
    value = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    return _id(value) or 0


async def _stream_room(request: Request, response: Response) -> None:
    """Runs before the stream starts (the generator's own code runs only once it streams)."""
    response.headers["Content-Language"] = page_language(request)
    state = request.app.state
    if getattr(state, "open_streams", 0) >= MAX_STREAMS or getattr(
            state, "address_streams", {}).get(_address(request), 0) >= MAX_STREAMS_PER_ADDRESS:
        raise HTTPException(503, gettext_for(page_language(request))(
            _("Too many people are following cases live right now. Reload the page to see "
              "the latest.")), headers={"Retry-After": "60"})


@router.get("/cases/{code}/events", response_class=EventSourceResponse,
            dependencies=[Depends(_stream_room)])
async def case_events(request: Request, case: Case = Depends(_case)
                      ) -> AsyncIterable[ServerSentEvent]:
    """New public events of the case as they happen: one `case` message per change, with the
    case's status and counts and the new timeline entries."""
    lang = page_language(request)
    last = _last_event_id(request)
    end = asyncio.get_running_loop().time() + STREAM_LIFETIME_S
    state = request.app.state
    state.open_streams = getattr(state, "open_streams", 0) + 1
    if not hasattr(state, "address_streams"):
        state.address_streams = Counter()
    address = _address(request)
    state.address_streams[address] += 1
    try:
        yield ServerSentEvent(comment="gridlink", retry=STREAM_RETRY_MS)
        async for message in _case_changes(request.app, case.id, last, lang, end):
            yield message
    finally:
        state.open_streams -= 1
        state.address_streams[address] -= 1
        if not state.address_streams[address]:
            del state.address_streams[address]


async def _case_changes(app, case_id: int, last: int, lang: str, end: float
                        ) -> AsyncIterable[ServerSentEvent]:
    """A message whenever the case has public events after `last`, until the loop time `end`:
    read when the live-update bus says the case has news (feedback/live.py), else every
    `live_poll_seconds`."""
    poll = app.state.settings.live_poll_seconds
    while True:
        events = await public.public_events(case_id, last)
        if events:
            last = events[-1].id
            current = await Case.get(id=case_id)
            depts = await public.departments()
            entries = public.timeline(events, lang, depts)
            master = await public.living_case(current)
            yield ServerSentEvent(event="case", id=str(last), data={
                "status": current.status.value,
                "status_label": public.status_label(current.status, lang),
                "reporter_count": current.reporter_count,
                "entries": [e.as_json(local_time(e.at)) for e in entries],
                "merged_into": master.code if master.id != current.id else None,
            })
        left = end - asyncio.get_running_loop().time()
        if left <= 0:
            return
        await app.state.live.wait(case_id, min(poll, left))
        if asyncio.get_running_loop().time() >= end:
            return  # what came meanwhile, the browser's next stream reads


@router.post("/cases/{code}/follow")
async def follow(request: Request, case: Case = Depends(_case)):
    """Record that this e-mail address wants to hear about the case."""
    lang = page_language(request)
    t = gettext_for(lang)
    try:
        posted = await _posted(request, lang)
    except Open311Error as exc:
        raise HTTPException(exc.status, exc.text(lang)) from exc
    case = await public.living_case(case)
    email = CONTROL_CHARS.sub("", (posted.fields.get("email") or [""])[0]).strip()[:300]
    error = None
    if not (len(email) <= MAX_EMAIL_CHARS and _EMAIL.fullmatch(email)):
        error, status = t(_("Enter an e-mail address such as name@example.com.")), 422
    elif (wait := await address_wait(request, "follow")) is not None:
        error = _sentences(lang, t(NETWORK_BUSY), _wait_text(lang, wait))
        status = 429
    if error:
        return await _tracking_page(request, case, follow_error=error, follow_email=email,
                                    status_code=status)
    email = email.lower()
    identity = f"web:{email}"
    person: Person = await person_for(identity, lang, email=email)
    if not await Subscription.exists(case_id=case.id, person_id=person.id):
        await subscribe(case, person, identity, connections.get("default"), reason="follower")
    return RedirectResponse(f"/cases/{case.code}?following=1#follow", status_code=303)


# ------------------------------------------------------------------------------ photos


@router.get("/photos/{photo_id}")
async def photo(photo_id: str, request: Request):
    """A photo of a repair. Residents' own photos are evidence for staff and never served."""
    try:
        number = _id(photo_id)
        if number is None:
            raise Open311Error(404, "")
        path = await open311_public_photo(number, request.app.state.settings)
    except Open311Error:
        raise HTTPException(404, gettext_for(page_language(request))(
            _("There is no published photo with this number."))) from None
    return FileResponse(path, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})

