"""POST /api/v1/hotline/tickets: hotline systems (12345, 12319, 962121) push their tickets.

Authentication: header `X-Api-Key` with a hotline key of the line (`gridlink apikey NAME --kind
hotline --line 12345`). The body is read here, within a size bound, and validated against
HotlineBatch; refusals never echo what was sent (a ticket may carry a caller's phone number).
"""

from __future__ import annotations

import logging
from collections import Counter

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError

from portal.hotline import service
from portal.hotline.schemas import (
    BATCH_JSON_SCHEMA,
    MAX_BODY_BYTES,
    BatchRefused,
    BatchResult,
    HotlineBatch,
)
from portal.http import BodyTooLarge, read_body
from portal.i18n import _, gettext_for, normalise_language
from portal.staff.service import check_api_key

log = logging.getLogger("gridlink.hotline")
router = APIRouter(prefix="/api/v1/hotline", tags=["hotline"])
api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False,
                              description="A hotline API key of the tickets' line.")
# Validation errors listed in one answer; the rest are summarised by the count.
MAX_ERRORS = 50


# What each kind of validation error means, in the request's language (pydantic's own
# messages are English); the limits come from the error's context, never the value sent.
ERROR_MESSAGES = {
    "missing": _("This field is required."),
    "extra_forbidden": _("There is no such field in a hotline ticket."),
    "string_type": _("Send text here."),
    "string_too_short": _("Send at least {min_length} characters here."),
    "string_too_long": _("Send at most {max_length} characters here."),
    "string_pattern_mismatch": _("This value does not have the form the schema asks for."),
    "literal_error": _("Use one of: {expected}."),
    "float_type": _("Send a number here."),
    "float_parsing": _("Send a number here."),
    "finite_number": _("Send a number here."),
    "greater_than_equal": _("Send a number of at least {ge}."),
    "less_than_equal": _("Send a number of at most {le}."),
    "datetime_type": _("Send a date and time such as 2026-11-28T09:30:00+08:00."),
    "datetime_parsing": _("Send a date and time such as 2026-11-28T09:30:00+08:00."),
    "datetime_from_date_parsing": _("Send a date and time such as 2026-11-28T09:30:00+08:00."),
    "timezone_aware": _("Give the time with its offset, e.g. +08:00."),
    "model_type": _("Send an object here."),
    "model_attributes_type": _("Send an object here."),
    "dict_type": _("Send an object here."),
    "list_type": _("Send a list of tickets here."),
    "too_short": _("Send {min_length} or more tickets."),
    "too_long": _("Send at most {max_length} tickets in one batch."),
}


def _plain(value) -> str:
    """180.0 as 180."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _message(error: dict, t) -> str:
    if error["type"] == "value_error":
        # Our validators' messages (msgids), e.g. "Give both lat and lng, or neither."
        return t(str(error.get("ctx", {}).get("error", error["msg"])))
    known = ERROR_MESSAGES.get(error["type"])
    if known is None:
        return error["msg"]
    context = error.get("ctx") or {}
    try:
        return t(known).format(**{k: _plain(v) for k, v in context.items()})
    except (KeyError, IndexError):
        return t(known)


def _refused(status: int, detail: str, errors: list[dict] | None = None,
             headers: dict | None = None) -> JSONResponse:
    body = BatchRefused(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@router.post(
    "/tickets",
    response_model=BatchResult,
    summary="Submit a batch of hotline tickets",
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/json": {"schema": BATCH_JSON_SCHEMA}}}},
    responses={
        400: {"model": BatchRefused, "description": "The body is not JSON."},
        401: {"model": BatchRefused, "description": "Missing or unknown API key."},
        403: {"model": BatchRefused, "description": "A ticket of another line than the key's."},
        413: {"model": BatchRefused, "description": "The body is larger than 8 MiB."},
        422: {"model": BatchRefused, "description": "The batch does not match the schema."},
    },
)
async def post_tickets(request: Request, api_key: str | None = Security(api_key_header)):
    """Each ticket is filed on its own: the answer lists every ticket as created, merged
    (joined an existing case), duplicate (received before; same case as the first time) or
    rejected (with the reason), in the order sent."""
    language = normalise_language(request.headers.get("accept-language"))
    t = gettext_for(language)
    key = await check_api_key(api_key, "hotline")
    if key is None:
        return _refused(401, t(_("Send a valid hotline API key in the X-Api-Key header.")),
                        headers={"WWW-Authenticate": "X-Api-Key"})
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _refused(413, t(_("The batch is too large; send at most {mib} MiB at a time."))
                        .format(mib=MAX_BODY_BYTES // (1024 * 1024)))
    try:
        batch = HotlineBatch.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            return _refused(400, t(_("The body is not valid JSON.")))
        listed = [{"loc": ".".join(str(p) for p in e["loc"]), "message": _message(e, t),
                   "type": e["type"]} for e in errors[:MAX_ERRORS]]
        return _refused(422, t(_("The batch does not match the hotline ticket schema, so "
                                 "nothing was filed (problems found: {n}).")).format(n=len(errors)),
                        listed)
    foreign = service.foreign_lines(batch, key.line)
    if foreign:
        return _refused(403, t(_("This key may only send tickets of line {line}; nothing was "
                                 "filed.")).format(line=key.line))
    results = await service.file_batch(batch, settings=request.app.state.settings,
                                       language=language)
    counts = Counter(r.status for r in results)
    log.info("hotline %s batch: %d tickets, %d created, %d merged, %d duplicate, %d rejected",
             key.line, len(results), counts["created"], counts["merged"], counts["duplicate"],
             counts["rejected"])
    return BatchResult(results=results, **counts)
