"""Open311 GeoReport v2 under /open311/v2/: parse, call portal.open311.service, render.

Every endpoint answers JSON or XML after the URL's extension (`services.json`,
`services.xml`); any other extension is a 404 in the spec's error format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse

from portal.cases.categories import CATEGORIES
from portal.open311 import service
from portal.open311.schemas import (
    MEDIA_REQUEST_BODY,
    POST_REQUEST_BODY,
    Discovery,
    PostedRequest,
    Service,
    ServiceDefinition,
    ServiceRequest,
    responses,
)
from portal.open311.web import Open311Route, language_of, read_form, render

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], route_class=Open311Route)
# Service Discovery lives beside the versions it lists, at an address ending in /discovery.
discovery_router = APIRouter(prefix="/open311", tags=["Open311 GeoReport v2"],
                             route_class=Open311Route)

Format = Literal["json", "xml"]
FMT = Path(description="Response format: json or xml.")
LOCALE = Query(None, max_length=35, description="zh-CN (default) or en; else Accept-Language.")
SERVICE_CODES = [c.key for c in CATEGORIES]
STATUS_PATTERN = r"^\s*((open|closed)\s*(,\s*(open|closed)\s*)*)?$"
JURISDICTION = Query(None, max_length=100, description="Accepted and ignored: one jurisdiction.")


@discovery_router.get("/discovery.{fmt}", summary="Service discovery: the API's address, "
                      "formats, contact and how to get a key", responses=responses(Discovery, 404))
async def discovery(request: Request, fmt: Format = FMT, locale: str | None = LOCALE):
    language = language_of(request, locale)
    return render(fmt, service.discovery(request.app.state.settings, language), root="discovery")


@router.get("/services.{fmt}", summary="List the services (problem categories)",
            responses=responses(list[Service], 400, 404))
async def services(request: Request, fmt: Format = FMT, locale: str | None = LOCALE,
                   jurisdiction_id: str | None = JURISDICTION):
    language = language_of(request, locale)
    return render(fmt, service.list_services(language), root="services", item="service")


@router.get("/services/{service_code}.{fmt}", summary="One service's definition",
            responses=responses(ServiceDefinition, 400, 404))
async def service_definition(request: Request, fmt: Format = FMT,
                             service_code: str = Path(
                                 max_length=100, json_schema_extra={"enum": SERVICE_CODES}),
                             locale: str | None = LOCALE,
                             jurisdiction_id: str | None = JURISDICTION):
    language_of(request, locale)
    return render(fmt, service.service_definition(service_code), root="service_definition")


async def _signed_form(request: Request, settings):
    """The posted form, its language and the client its api_key belongs to."""
    # Errors while reading the form already speak the header's language.
    language_of(request)
    form = await read_form(request, settings)
    language = language_of(request, _one(form.fields, "locale"))
    client = await service.authenticate(_one(form.fields, "api_key")
                                        or request.query_params.get("api_key"))
    return form, language, client


@router.post("/requests.{fmt}", summary="Post a service request (needs an api_key)",
             openapi_extra={"requestBody": POST_REQUEST_BODY},
             responses=responses(list[PostedRequest], 400, 403, 404, 413, 415, 429))
async def post_request(request: Request, fmt: Format = FMT):
    """Form-encoded as the spec says, or multipart/form-data with photos in `media`. The
    answer's service_request_id is the public case code; a report of a problem already
    reported answers the existing case's code, and service_notice says so."""
    settings = request.app.state.settings
    form, language, client = await _signed_form(request, settings)
    new = service.parse_new_request(form.fields, settings)
    answer = await service.create_request(new, client, form.uploads, language=language,
                                          throttle=request.app.state.throttle,
                                          settings=settings)
    return render(fmt, answer)


@router.get("/requests.{fmt}", summary="Find service requests",
            responses=responses(list[ServiceRequest], 400, 404))
async def get_requests(
    request: Request,
    fmt: Format = FMT,
    service_request_id: str | None = Query(
        None, max_length=5000, description="Comma-separated ids; overrides the other filters."),
    service_code: str | None = Query(None, max_length=1000,
                                     description="Comma-separated service codes."),
    start_date: datetime | None = Query(None, description="Earliest requested_datetime "
                                        "(W3C date and time; without a zone, Shanghai time)."),
    end_date: datetime | None = Query(None, description="Latest requested_datetime. "
                                      "Default: the last 90 days; at most 90 days apart."),
    status: str | None = Query(None, max_length=40, pattern=STATUS_PATTERN,
                               description="open, closed or open,closed."),
    page: int = Query(1, ge=1, le=100000, description="Extension: page number, from 1."),
    page_size: int = Query(service.MAX_PAGE_SIZE, ge=1, le=service.MAX_PAGE_SIZE,
                           description="Extension: requests per page (at most 200)."),
    locale: str | None = LOCALE,
    jurisdiction_id: str | None = JURISDICTION,
):
    language = language_of(request, locale)
    found = await service.find_requests(
        service_request_id=service_request_id, service_code=service_code,
        start_date=start_date, end_date=end_date, status=status, page=page,
        page_size=page_size, language=language, settings=request.app.state.settings)
    return render(fmt, found)


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request",
            responses=responses(list[ServiceRequest], 400, 404))
async def get_request(request: Request, service_request_id: str, fmt: Format = FMT,
                      locale: str | None = LOCALE, jurisdiction_id: str | None = JURISDICTION):
    language = language_of(request, locale)
    found = await service.get_request(service_request_id, language=language,
                                      settings=request.app.state.settings)
    return render(fmt, found)


@router.post("/requests/{service_request_id}/media.{fmt}",
             summary="Add photos to a request your client posted (extension)",
             openapi_extra={"requestBody": MEDIA_REQUEST_BODY},
             responses=responses(list[PostedRequest], 400, 403, 404, 413, 415))
async def post_media(request: Request, service_request_id: str, fmt: Format = FMT):
    settings = request.app.state.settings
    form, language, client = await _signed_form(request, settings)
    answer = await service.add_media(service_request_id, client, form.uploads,
                                     language=language, settings=settings)
    return render(fmt, answer)


@router.get("/media/{media_id}.jpg", summary="A published photo of a repair",
            response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}, "description": "The photo."},
                       404: {"description": "No such published photo."}})
async def media(request: Request, media_id: int = Path(ge=1, le=2**62)):
    language_of(request)
    path = await service.public_photo(media_id, request.app.state.settings)
    return FileResponse(path, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400"})


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None
