"""Reading the orgs forms: bounded, CSRF-checked, with room for lists of checkboxes."""

from __future__ import annotations

from fastapi import HTTPException, Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException

from portal.http import BodyTooLarge, bounded_stream
from portal.i18n import _, gettext_for
from portal.web import csrf
from portal.web.lang import page_language

FORM_LIMIT = 64 * 1024
# Service types and areas are checkboxes: one field each.
MAX_FIELDS = 200


def refuse(request: Request, message: str, status: int = 400, **params) -> HTTPException:
    t = gettext_for(page_language(request))
    return HTTPException(status, t(message).format(**params))


async def read_form(request: Request) -> FormData:
    """The posted form (url-encoded only: these forms upload nothing), CSRF-checked."""
    declared = request.headers.get("content-length", "")
    content_type, _params = parse_options_header(request.headers.get("content-type", ""))
    if not content_type and declared in ("", "0"):
        data = FormData()
    elif content_type == b"application/x-www-form-urlencoded":
        try:
            data = await FormParser(request.headers, bounded_stream(request, FORM_LIMIT),
                                    max_fields=MAX_FIELDS, max_part_size=FORM_LIMIT).parse()
        except BodyTooLarge as exc:
            raise refuse(request, _("What was sent is too large."), 413) from exc
        except MultiPartException as exc:
            raise refuse(request, _("The form could not be read.")) from exc
    else:
        raise refuse(request, _("The form could not be read."), 415)
    token = data.get(csrf.FIELD)
    csrf.check(request, token if isinstance(token, str) else None, page_language(request))
    return data


def text(request: Request, form: FormData, name: str, limit: int = 4000) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise refuse(request, _("The form could not be read."))
    return value[:limit]


def texts(request: Request, form: FormData, name: str) -> list[str]:
    values = form.getlist(name)
    if not all(isinstance(v, str) for v in values):
        raise refuse(request, _("The form could not be read."))
    return [v[:64] for v in values]
