"""HTTP plumbing of the Open311 API: errors in the spec's format, bounded form reading, rendering.

- Open311Route turns every refusal (Open311Error, and FastAPI's own parameter validation) into
  the spec's error list, as JSON or XML after the format of the URL, with status 400, 403, 404,
  413, 415 or 429.
- read_form reads a form-encoded or multipart body without ever holding more than the body
  bound: the declared length is checked first and the stream is counted while parsed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from portal.http import BodyTooLarge, bounded_stream
from portal.i18n import _, normalise_language
from portal.open311 import xml
from portal.open311.service import Open311Error, photo_too_large, size_text, too_many_photos
from portal.settings import Settings

# Form fields besides photos: description and address with room to spare, and the rest.
MAX_FIELDS = 100

# What each query parameter FastAPI validates must look like.
PARAMETER_MESSAGES = {
    "start_date": _("start_date and end_date must be dates such as "
                    "2026-11-28T09:00:00+08:00."),
    "end_date": _("start_date and end_date must be dates such as 2026-11-28T09:00:00+08:00."),
    "page": _("page must be a whole number from 1 to 100000."),
    "page_size": _("page_size must be a whole number from 1 to 200."),
    "status": _("status must be open or closed (or open,closed)."),
    "service_code": _("There is no such service; services.json lists the codes."),
    "media_id": _("There is no published photo with this id."),
}


def language_of(request: Request, locale: str | None = None) -> str:
    """`locale` (query or form) first, then Accept-Language; zh-CN by default."""
    language = normalise_language(locale or request.query_params.get("locale")
                                  or request.headers.get("accept-language"))
    request.state.open311_language = language
    return language


def render(fmt: str, payload: Any, *, root: str = "service_requests", item: str = "request",
           status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A list (`root`/`item` elements in XML) or one object (`root` element) as JSON or XML."""
    if fmt == "xml":
        body = (xml.document(root, item, payload) if isinstance(payload, list)
                else xml.single(root, payload))
        return Response(body, status_code=status, headers=headers,
                        media_type="application/xml")
    return Response(json.dumps(payload, ensure_ascii=False).encode(), status_code=status,
                    headers=headers, media_type="application/json")


def error_response(request: Request, status: int, description: str,
                   headers: dict[str, str] | None = None) -> Response:
    fmt = request.path_params.get("fmt")
    return render("xml" if fmt == "xml" else "json", [{"code": status, "description": description}],
                  root="errors", item="error", status=status, headers=headers)


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    language = getattr(request.state, "open311_language", None) or language_of(request)
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = loc[-1] if loc else ""
        if name == "fmt":
            err = Open311Error(404, _("Unknown format: end the address in .json or .xml."))
        elif name in PARAMETER_MESSAGES:
            not_found = name == "media_id" or (name == "service_code" and loc[0] == "path")
            err = Open311Error(404 if not_found else 400, PARAMETER_MESSAGES[name])
        else:
            continue
        return error_response(request, err.status, err.text(language))
    err = Open311Error(400, _("A parameter is not valid: {names}."),
                       names=", ".join(str((e.get("loc") or ("?",))[-1]) for e in exc.errors()))
    return error_response(request, 400, err.text(language))


class Open311Route(APIRoute):
    """Renders refusals in the GeoReport v2 error format instead of FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(request, exc)
            except Open311Error as exc:
                language = getattr(request.state, "open311_language", None) \
                    or language_of(request)
                return error_response(request, exc.status, exc.text(language), exc.headers)

        return route


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    uploads: list[bytes] = field(default_factory=list)


def body_limit(settings: Settings) -> int:
    """The largest body accepted: the photos at their bound, and the text fields."""
    return settings.max_photos * settings.max_photo_bytes + 64 * 1024 \
        + 8 * settings.max_text_chars


def _too_large(settings: Settings) -> Open311Error:
    return Open311Error(413, _("The request is too large: send at most {n} photos of up to "
                               "{size} each."), n=settings.max_photos,
                        size=size_text(settings.max_photo_bytes))


class _Body:
    """The request stream within the bound (portal.http); keeps its last bytes for a check."""

    TAIL = 512

    def __init__(self, request: Request, limit: int, settings: Settings):
        self.request, self.limit, self.settings = request, limit, settings
        self.tail = b""

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in bounded_stream(self.request, self.limit):
                self.tail = (self.tail + chunk)[-self.TAIL:]
                yield chunk
        except BodyTooLarge:
            raise _too_large(self.settings) from None


async def read_form(request: Request, settings: Settings) -> Form:
    """The posted fields, and the bytes of the `media` files (each read up to its bound)."""
    limit = body_limit(settings)
    # bounded_stream checks the declared length too, but only once read: this answers 413
    # before the content type is judged.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(settings)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    # Text fields: a description at four bytes a character, with room for the encoding.
    part_limit = 4 * settings.max_text_chars + 4096
    body = _Body(request, limit, settings)
    stream = body.stream()
    if content_type == b"application/x-www-form-urlencoded":
        fields = await _read_urlencoded(stream, part_limit, settings)
        if "media" in fields:
            raise _media_as_text()
        return Form(fields=fields)
    try:
        if content_type == b"multipart/form-data":
            parser = MultiPartParser(
                request.headers, stream, max_files=settings.max_photos + 1,
                max_fields=MAX_FIELDS, max_part_size=part_limit)
        else:
            raise Open311Error(415, _("Send the fields form-encoded "
                                      "(application/x-www-form-urlencoded), or as "
                                      "multipart/form-data with photos."))
        data = await parser.parse()
        if content_type == b"multipart/form-data" and \
                b"--" + params.get(b"boundary", b"") + b"--" not in body.tail:
            await data.close()
            raise Open311Error(400, _("The form data ended early, as if the upload was cut "
                                      "off. Send the request again."))
    except MultiPartException as exc:
        if "exceeded maximum size" in exc.message:
            raise _field_too_long(settings) from exc
        if exc.message.startswith("Too many fields"):
            raise _too_many_fields() from exc
        if exc.message.startswith("Too many files"):
            raise too_many_photos(settings) from exc
        raise Open311Error(400, _("The form could not be read ({reason}). Send the fields "
                                  "form-encoded, or as multipart/form-data with photos."),
                           reason=exc.message) from exc
    form = Form()
    try:
        media = []
        for name, value in data.multi_items():
            if isinstance(value, UploadFile):
                if name != "media":
                    continue
                media.append(value)
            elif name == "media":
                raise _media_as_text()
            else:
                form.fields.setdefault(name, []).append(value)
        if len(media) > settings.max_photos:
            raise too_many_photos(settings)
        for upload in media:
            content = await upload.read(settings.max_photo_bytes + 1)
            if len(content) > settings.max_photo_bytes:
                raise photo_too_large(settings)
            form.uploads.append(content)
    finally:
        await data.close()
    return form


async def _read_urlencoded(stream: AsyncIterator[bytes], part_limit: int, settings: Settings
                           ) -> dict[str, list[str]]:
    """A form-encoded body, parsed as Starlette's FormParser (python-multipart) does: fields
    split on "&" (empty ones skipped), a name without "=" has an empty value, names and values
    are URL-decoded (UTF-8). Bounded alike: a field's name and value together at most
    `part_limit` bytes, at most MAX_FIELDS fields; only the field being read is held beyond
    the fields read. A plain split instead of a parser's callbacks for every piece."""
    fields: dict[str, list[str]] = {}
    count = 0

    def take(segment: bytes) -> None:
        nonlocal count
        name, _eq, value = segment.partition(b"=")
        if len(name) + len(value) > part_limit:
            raise _field_too_long(settings)
        count += 1
        if count > MAX_FIELDS:
            raise _too_many_fields()
        fields.setdefault(unquote_plus(name.decode("latin-1")), []).append(
            unquote_plus(value.decode("latin-1")))

    pending = b""
    async for chunk in stream:
        *segments, pending = (pending + chunk).split(b"&")
        for segment in segments:
            if segment:
                take(segment)
        if len(pending) > part_limit + 1:
            raise _field_too_long(settings)
    if pending:
        take(pending)
    return fields


def _field_too_long(settings: Settings) -> Open311Error:
    return Open311Error(400, _("A field is too long: description may have at most {n} "
                               "characters."), n=settings.max_text_chars)


def _too_many_fields() -> Open311Error:
    return Open311Error(400, _("Too many fields: send at most {n}."), n=MAX_FIELDS)


def _media_as_text() -> Open311Error:
    return Open311Error(400, _("media must be a photo file sent as multipart/form-data; to "
                               "link a photo, use media_url."))
