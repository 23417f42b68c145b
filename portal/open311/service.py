"""Open311 GeoReport v2: the service list, posting requests, reading them back.

Plain async functions; the HTTP side (portal/open311/web.py, routes.py) parses and renders.
Every refusal is an Open311Error carrying the HTTP status and an English msgid that is
translated into the request's language when it is rendered.

Decisions (README.md, "Open311 API"):
- posting needs an api_key of kind open311 (trusted clients); reading is public;
- service_request_id is the public case code (GL-YYYYMMDD-NNNN); a report merged into an
  existing case answers that case's code;
- what is published is the case, never the reporter: no email, phone, names, device or account
  ids; the point is rounded to 3 decimals (about 100 m), the address to its road names, and
  phone numbers and e-mail addresses in the description are masked;
- merged cases are listed through their master; asked for by id, a merged case answers with its
  master's status and a notice naming the master.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise.transactions import in_transaction

from portal.cases.categories import BY_KEY, CATEGORIES, CategoryInfo
from portal.cases.models import OPEN_STATUSES, Case, CaseEvent, Department, Photo, Report, Status
from portal.cases.public import public_address, public_text, round_point
from portal.cases.service import SHANGHAI, add_event, utcnow
from portal.i18n import _, gettext_for
from portal.intake.service import submit, validate
from portal.intake.submission import InvalidSubmission, Submission, Throttled
from portal.intake.text import CONTROL_CHARS
from portal.intake.throttle import Throttle
from portal.photos import PhotoError, StoredPhoto, store_photo
from portal.settings import Settings
from portal.staff.models import ApiKey
from portal.staff.service import check_api_key

# GET requests: the spec's default window, and our cap on one page (the spec allows 1000).
DEFAULT_DAYS = 90
MAX_PAGE_SIZE = 200
MAX_IDS = 200
MAX_ATTRIBUTES = 20
MAX_ATTRIBUTE_CHARS = 500
MAX_ID_CHARS = 100
MAX_ADDRESS_CHARS = 300
MAX_URL_CHARS = 1000

CLOSED_STATUSES = (Status.CLOSED, Status.REJECTED)

# Groups of the service list (the spec's "group").
GROUPS: dict[str, str] = {
    "garbage": _("Environment"),
    "noise": _("Environment"),
    "greenery": _("Environment"),
    "street_vendor": _("Public order"),
    "illegal_parking": _("Public order"),
    "illegal_construction": _("Public order"),
    "road_damage": _("Public facilities"),
    "street_light": _("Public facilities"),
    "manhole": _("Public facilities"),
    "water_leak": _("Public facilities"),
    "other": _("Other"),
}

# Identity-like fields: printable, not only blanks. The same pattern is in the OpenAPI schema.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{4,30}$"
_ID = re.compile(ID_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_URL = re.compile(r"^https?://[^\s/\x00-\x1f\x7f][^\s\x00-\x1f\x7f]*$")
# Public case codes (GL-YYYYMMDD-NNNN); anything else cannot be one of ours.
_CODE = re.compile(r"^[A-Za-z0-9-]{1,20}$")
MAX_EMAIL_CHARS = 190


class Open311Error(Exception):
    """A refusal: HTTP `status` and an English msgid `message` formatted with `params`."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 **params):
        super().__init__(message.format(**params) if params else message)
        self.status = status
        self.message = message
        self.params = params
        self.headers = headers or {}

    def text(self, language: str) -> str:
        t = gettext_for(language)(self.message)
        return t.format(**self.params) if self.params else t


def _quote(value: str, limit: int = 40) -> str:
    """A piece of the input echoed in a message, kept short."""
    return value if len(value) <= limit else value[:limit] + "…"


# ---------------------------------------------------------------------------------- services


def _service(c: CategoryInfo, language: str) -> dict:
    t = gettext_for(language)
    en = language == "en"
    hint = c.hint_en if en else c.hint_zh
    keywords = [k.strip() for k in re.split(r"[、,，]", hint) if k.strip()]
    return {
        "service_code": c.key,
        "service_name": c.name_en if en else c.name_zh,
        "description": hint,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": t(GROUPS.get(c.key, GROUPS["other"])),
    }


SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When the service list or a service definition last changed (portal/cases/categories.py):
# clients that cache them refresh when it moves. tests/test_open311.py holds it to the list.
SERVICES_CHANGESET = "2026-11-28T00:00:00Z"


def discovery(settings: Settings, language: str) -> dict:
    """Open311 Service Discovery: where the API is, in which formats, and whom to ask."""
    t = gettext_for(language)
    return {
        "changeset": SERVICES_CHANGESET,
        "contact": settings.open311_contact or t(_(
            "The Gridlink administrators of the grid management centre.")),
        "key_service": t(_("Reading is open to all. Posting needs an API key: the Gridlink "
                           "administrators of the grid management centre issue them.")),
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": settings.public_base_url.rstrip("/") + "/open311/v2",
            "changeset": SERVICES_CHANGESET,
            "type": "production",
            "formats": ["application/json", "application/xml"],
        }],
    }


def list_services(language: str) -> list[dict]:
    return [_service(c, language) for c in CATEGORIES]


def _category(code: str) -> CategoryInfo:
    info = BY_KEY.get(code)
    if info is None:
        raise Open311Error(404, _("There is no service with the code {code}; services.json "
                                  "lists the codes."), code=_quote(code))
    return info


def service_definition(code: str) -> dict:
    """No service asks for extra attributes (metadata is false for all of them)."""
    return {"service_code": _category(code).key, "attributes": []}


# ---------------------------------------------------------------------------------- api keys


async def authenticate(api_key: str | None) -> ApiKey:
    """The client's key, if it is a valid open311 key; 403 otherwise."""
    if not api_key:
        raise Open311Error(403, _("Posting needs a valid api_key. Ask the city's Gridlink "
                                  "administrators for one."))
    client = await check_api_key(api_key, "open311")
    if client is None:
        raise Open311Error(403, _("The api_key is not valid. Check it, or ask the city's "
                                  "Gridlink administrators for a new one."))
    return client


# -------------------------------------------------------------------------- posting requests


@dataclass
class NewRequest:
    """The fields of a POST requests.{format}, checked."""

    service_code: str
    description: str
    lat: float | None = None
    lng: float | None = None
    address: str | None = None
    address_id: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    media_url: str | None = None
    attributes: dict[str, str | list[str]] = field(default_factory=dict)


def _first(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    value = values[0].strip()
    return value or None


def _identifier(fields: Mapping[str, list[str]], name: str) -> str | None:
    value = _first(fields, name)
    if value is None:
        return None
    if len(value) > MAX_ID_CHARS or not _ID.fullmatch(value):
        raise Open311Error(400, _("{field} must be 1 to 100 characters without control "
                                  "characters."), field=name)
    return value


def _degrees(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise Open311Error(400, _("{field} must be a number in decimal degrees (WGS-84), for "
                                  "example lat=31.2304 and long=121.4737."), field=name)
    return number


def parse_new_request(fields: Mapping[str, list[str]], settings: Settings) -> NewRequest:
    """Check the posted fields (name -> values); every problem is a 400 or 404 that says what
    to send instead."""
    code = _first(fields, "service_code")
    if code is None:
        raise Open311Error(400, _("service_code is missing: use one of the codes that "
                                  "services.json lists."))
    _category(code)

    description = CONTROL_CHARS.sub("", _first(fields, "description") or "").strip()
    if not description:
        raise Open311Error(400, _("description is missing: describe the problem in a few "
                                  "words."))
    if len(description) > settings.max_text_chars:
        raise Open311Error(400, _("description is too long: use at most {n} characters."),
                           n=settings.max_text_chars)

    raw_lat, raw_lng = _first(fields, "lat"), _first(fields, "long")
    lat = lng = None
    if raw_lat is not None or raw_lng is not None:
        if raw_lat is None or raw_lng is None:
            raise Open311Error(400, _("Send lat and long together, in decimal degrees "
                                      "(WGS-84)."))
        lat, lng = _degrees(raw_lat, "lat"), _degrees(raw_lng, "long")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
            raise Open311Error(400, _("lat must be between -90 and 90 and long between -180 "
                                      "and 180 (decimal degrees, WGS-84)."))
    address = CONTROL_CHARS.sub("", _first(fields, "address_string") or "").strip() or None
    if address is not None and len(address) > MAX_ADDRESS_CHARS:
        raise Open311Error(400, _("address_string is too long: use at most {n} characters."),
                           n=MAX_ADDRESS_CHARS)
    if lat is None and address is None:
        raise Open311Error(400, _("Tell us where the problem is: send lat and long, or "
                                  "address_string."))

    email = _first(fields, "email")
    if email is not None:
        if len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
            raise Open311Error(400, _("email is not a valid e-mail address."))
        email = email.lower()
    phone = _first(fields, "phone")
    if phone is not None:
        if not _PHONE.fullmatch(phone):
            raise Open311Error(400, _("phone is not a valid phone number: use digits, with an "
                                      "optional leading +."))
        phone = ("+" if phone.startswith("+") else "") + re.sub(r"\D", "", phone)
    device_id = _identifier(fields, "device_id")
    account_id = _identifier(fields, "account_id")
    if not (email or phone or device_id or account_id):
        raise Open311Error(400, _("Send the reporter's email, phone, device_id or account_id, "
                                  "so that they can follow their request."))

    media_url = _first(fields, "media_url")
    if media_url is not None and (len(media_url) > MAX_URL_CHARS
                                  or not _URL.fullmatch(media_url)):
        raise Open311Error(400, _("media_url must be an http or https URL of at most {n} "
                                  "characters."), n=MAX_URL_CHARS)

    attributes: dict[str, str | list[str]] = {}
    for name, values in fields.items():
        m = re.fullmatch(r"attribute\[([^\[\]\x00-\x1f\x7f]{1,100})\](\[\])?", name)
        if not m:
            continue
        if len(attributes) >= MAX_ATTRIBUTES:
            raise Open311Error(400, _("Send at most {n} attributes."), n=MAX_ATTRIBUTES)
        cleaned = [CONTROL_CHARS.sub("", v) for v in values]
        if any(len(v) > MAX_ATTRIBUTE_CHARS for v in cleaned):
            raise Open311Error(400, _("An attribute value may have at most {n} characters."),
                               n=MAX_ATTRIBUTE_CHARS)
        attributes[m.group(1)] = cleaned if m.group(2) or len(cleaned) > 1 else cleaned[0]

    return NewRequest(
        service_code=code, description=description, lat=lat, lng=lng, address=address,
        address_id=_identifier(fields, "address_id"), email=email, phone=phone,
        device_id=device_id, account_id=account_id,
        first_name=_identifier(fields, "first_name"), last_name=_identifier(fields, "last_name"),
        media_url=media_url, attributes=attributes,
    )


def reporter_of(req: NewRequest, client: ApiKey) -> str:
    """email -> web:<email>; else account_id or device_id -> open311:<client>:<id>;
    else phone -> tel:<phone>."""
    if req.email:
        return f"web:{req.email}"
    if req.account_id or req.device_id:
        return f"open311:{client.id}:{req.account_id or req.device_id}"
    return f"tel:{req.phone}"


async def _store(uploads: list[bytes], settings: Settings) -> list[StoredPhoto]:
    stored = []
    for data in uploads:
        if len(data) > settings.max_photo_bytes:
            raise photo_too_large(settings)
        try:
            stored.append(await store_photo(
                data, Path(settings.media_dir), max_bytes=settings.max_photo_bytes,
                max_pixels=settings.max_photo_pixels, max_side=settings.photo_max_side))
        except PhotoError as exc:
            raise Open311Error(400, str(exc)) from exc
    return stored


def size_text(n: int) -> str:
    """10485760 -> "10 MB", 20000 -> "19 KB"."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    return f"{max(1, n // 1024)} KB"


def photo_too_large(settings: Settings) -> Open311Error:
    return Open311Error(413, _("A photo may be at most {size}."),
                        size=size_text(settings.max_photo_bytes))


def too_many_photos(settings: Settings) -> Open311Error:
    return Open311Error(400, _("Send at most {n} photos with one request."),
                        n=settings.max_photos)


async def create_request(req: NewRequest, client: ApiKey, uploads: list[bytes], *,
                         language: str, throttle: Throttle, settings: Settings) -> list[dict]:
    """File the request through the intake; the spec's answer (one element)."""
    if len(uploads) > settings.max_photos:
        raise too_many_photos(settings)
    extra: dict = {"open311_client": client.id}
    for name in ("address_id", "device_id", "account_id", "first_name", "last_name",
                 "media_url"):
        value = getattr(req, name)
        if value is not None:
            extra[name] = value
    if req.attributes:
        extra["attributes"] = req.attributes
    sub = Submission(
        reporter=reporter_of(req, client), channel="open311", text=req.description,
        category=req.service_code, lat=req.lat, lng=req.lng, crs="wgs84", address=req.address,
        language=language, email=req.email, phone=req.phone, extra=extra,
    )
    try:
        # Refuse what the intake would refuse before spending time on photos.
        validate(sub, settings)
        sub.photos = await _store(uploads, settings)
        receipt = await submit(sub, throttle=throttle, settings=settings)
    except InvalidSubmission as exc:
        raise Open311Error(400, exc.message) from exc
    except Throttled as exc:
        # The intake's message is already in the reporter's language.
        raise Open311Error(429, exc.message,
                           headers={"Retry-After": str(exc.retry_after)}) from exc
    return [{"service_request_id": receipt.case_code, "service_notice": receipt.message,
             "account_id": req.account_id}]


async def add_media(code: str, client: ApiKey, uploads: list[bytes], *,
                    language: str, settings: Settings) -> list[dict]:
    """Attach photos to a request this client posted."""
    if not uploads:
        raise Open311Error(400, _("Attach the photo as a file in the field media "
                                  "(multipart/form-data)."))
    case = await _case_or_404(code)
    while case.status == Status.MERGED and case.master_id:
        case = await Case.get(id=case.master_id)
    report = None
    for candidate in await Report.filter(case_id=case.id, channel="open311").order_by("-id") \
            .limit(200):
        if (candidate.extra or {}).get("open311_client") == client.id:
            report = candidate
            break
    if report is None:
        raise Open311Error(404, _("Your client has not posted a request {id}; photos can be "
                                  "added only to your own requests."), id=_quote(code))
    if await Photo.filter(report_id=report.id).count() + len(uploads) > settings.max_photos:
        raise too_many_photos(settings)
    stored = await _store(uploads, settings)
    async with in_transaction() as conn:
        for photo in stored:
            row = await Photo.create(case_id=case.id, report_id=report.id, path=photo.path,
                                     width=photo.width, height=photo.height, size=photo.size,
                                     content_type=photo.content_type, using_db=conn)
            await add_event(case, "photo", conn, public=False,
                            data={"photo": row.id, "report": report.id})
    t = gettext_for(language)
    return [{"service_request_id": case.code,
             "service_notice": t(_("Thank you. The photo was added to request {id}.")).format(
                 id=case.code),
             "account_id": (report.extra or {}).get("account_id")}]


# -------------------------------------------------------------------------- reading requests


def _when(dt: datetime | None) -> str | None:
    return dt.astimezone(SHANGHAI).isoformat(timespec="seconds") if dt else None


def _status(status: Status) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def photo_url(photo_id: int, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/open311/v2/media/{photo_id}.jpg"


async def _records(cases: list[Case], language: str, settings: Settings) -> list[dict]:
    if not cases:
        return []
    t = gettext_for(language)
    en = language == "en"
    # A merged case reads as its master (a chain of merges ends at the case that lives on).
    master: dict[int, Case] = {}
    known = {c.id: c for c in cases}
    for case in cases:
        m, hops = case, 0
        while m.status == Status.MERGED and m.master_id and hops < 10:
            m = known.get(m.master_id) or await Case.get_or_none(id=m.master_id) or m
            known[m.id] = m
            hops += 1
        master[case.id] = m
    ids = sorted({m.id for m in master.values()})
    dept_ids = {m.department_id for m in master.values() if m.department_id}
    departments = {d.id: d for d in await Department.filter(id__in=dept_ids)} if dept_ids else {}
    notes: dict[int, str] = {}
    for event in await CaseEvent.filter(case_id__in=ids, public=True,
                                        public_note__isnull=False).order_by("created_at", "id"):
        if event.public_note:
            notes[event.case_id] = event.public_note
    fixes: dict[int, int] = {}
    for photo in await Photo.filter(case_id__in=ids, kind="fix").order_by("-id"):
        fixes[photo.case_id] = photo.id

    out = []
    for case in cases:
        m = master[case.id]
        info = BY_KEY.get(case.category)
        dept = departments.get(m.department_id) if m.department_id else None
        notice = None
        if m.id != case.id:
            notice = t(_("This request was merged into {id}; follow that request for "
                         "progress.")).format(id=m.code)
        out.append({
            "service_request_id": case.code,
            "status": _status(m.status),
            "status_notes": public_text(notes.get(m.id)),
            "service_name": (info.name_en if en else info.name_zh) if info else case.category,
            "service_code": case.category,
            "description": public_text(case.summary),
            "agency_responsible": (dept.name_en if en else dept.name_zh) if dept else None,
            "service_notice": notice,
            "requested_datetime": _when(case.first_reported_at),
            "updated_datetime": _when(max(case.updated_at, m.updated_at)),
            "expected_datetime": None,
            "address": public_address(case),
            "address_id": None,
            "zipcode": None,
            "lat": round_point(case.lat),
            "long": round_point(case.lng),
            "media_url": photo_url(fixes[m.id], settings) if m.id in fixes else None,
        })
    return out


async def _case_or_404(code: str) -> Case:
    case = await Case.get_or_none(code=code) if _CODE.fullmatch(code) else None
    if case is None:
        raise Open311Error(404, _("There is no request with the id {id}."), id=_quote(code))
    return case


async def get_request(code: str, *, language: str, settings: Settings) -> list[dict]:
    return await _records([await _case_or_404(code)], language, settings)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _aware(dt: datetime) -> datetime:
    """A date without a time zone is a time in Shanghai."""
    return dt.replace(tzinfo=SHANGHAI) if dt.tzinfo is None else dt


async def find_requests(*, service_request_id: str | None = None,
                        service_code: str | None = None, start_date: datetime | None = None,
                        end_date: datetime | None = None, status: str | None = None,
                        page: int = 1, page_size: int = MAX_PAGE_SIZE, language: str,
                        settings: Settings) -> list[dict]:
    """GET requests: by ids (which overrides every other filter, as the spec says), or by
    service codes, dates (default: the last 90 days) and status, newest first."""
    ids = _split(service_request_id)
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error(400, _("Ask for at most {n} service_request_id values at a "
                                      "time."), n=MAX_IDS)
        cases = await Case.filter(code__in=[i for i in ids if _CODE.fullmatch(i)]) \
            .order_by("-first_reported_at", "-id")
        return await _records(list(cases), language, settings)

    codes = _split(service_code)
    for code in codes:
        _category(code)
    wanted = _split(status)
    for value in wanted:
        if value not in ("open", "closed"):
            raise Open311Error(400, _("status must be open or closed (or open,closed)."))

    try:
        start = _aware(start_date).astimezone(UTC) if start_date else None
        end = _aware(end_date).astimezone(UTC) if end_date else None
        if start is None and end is None:
            end = utcnow()
        if start is None:
            start = end - timedelta(days=DEFAULT_DAYS)
        if end is None:
            end = start + timedelta(days=DEFAULT_DAYS)
    except OverflowError as exc:
        raise Open311Error(400, _("start_date and end_date must be dates such as "
                                  "2026-11-28T09:00:00+08:00.")) from exc
    if start > end:
        raise Open311Error(400, _("start_date must be before end_date."))
    if end - start > timedelta(days=DEFAULT_DAYS):
        raise Open311Error(400, _("start_date and end_date may be at most {n} days apart."),
                           n=DEFAULT_DAYS)

    query = Case.filter(first_reported_at__gte=start, first_reported_at__lte=end) \
        .exclude(status=Status.MERGED)
    if codes:
        query = query.filter(category__in=codes)
    if set(wanted) == {"open"}:
        query = query.filter(status__in=list(OPEN_STATUSES))
    elif set(wanted) == {"closed"}:
        query = query.filter(status__in=list(CLOSED_STATUSES))
    cases = await query.order_by("-first_reported_at", "-id") \
        .offset((page - 1) * page_size).limit(page_size)
    return await _records(list(cases), language, settings)


async def public_photo(photo_id: int, settings: Settings) -> Path:
    """The file of a photo of a repair (kind "fix"); residents' photos are never served."""
    photo = await Photo.get_or_none(id=photo_id, kind="fix")
    path = Path(settings.media_dir) / photo.path if photo is not None else None
    if path is None or not path.is_file():
        raise Open311Error(404, _("There is no published photo with this id."))
    return path
