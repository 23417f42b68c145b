"""What every orgs page needs: bounded, CSRF-checked forms with room for lists of checkboxes,
and who is signed in (the gl_member cookie of a member or volunteer account)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import FileResponse
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException

from orgs.accounts import service as accounts
from orgs.accounts.models import Account
from orgs.registry import service as registry
from orgs.registry.models import Membership, Organisation, OrgStatus
from orgs.registry.service import OrgError
from portal.cases.service import SHANGHAI
from portal.http import BodyTooLarge, bounded_stream
from portal.i18n import _, gettext_for
from portal.staff.casework import centre
from portal.staff.models import StaffUser
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


INT4_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


def number(value: str | None, maximum: int = BIGINT_MAX) -> int | None:
    """A positive id or count typed in a URL or a form; None for anything else. str.isdigit
    is true for '²' and '٣', which int() refuses or reads: only ASCII digits count."""
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    n = int(value)
    return n if 0 < n <= maximum else None


def path_id(request: Request, value: str, maximum: int = BIGINT_MAX,
            message: str = _("Page not found")) -> int:
    """An id from the URL; anything else is a page that does not exist."""
    n = number(value, maximum)
    if n is None:
        raise refuse(request, message, 404)
    return n


# Dates typed into forms: year 1 overflows when moved to UTC, and nothing here runs for a century.
YEARS = (2000, 2100)


def local_time(value: str) -> datetime | None:
    """A datetime-local field (Asia/Shanghai) as an aware time, or None: the whole value must
    be a date and time without a zone."""
    value = value.strip()
    if not 16 <= len(value) <= 19 or value[10] not in "T ":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if parsed.tzinfo is not None else parsed.replace(tzinfo=SHANGHAI)


def day(request: Request, value: str, name: str) -> date:
    """A day from a date field (YYYY-MM-DD exactly), within YEARS; 422 naming the field."""
    value = value.strip()
    try:
        if len(value) == 10:
            found = date.fromisoformat(value)
            if YEARS[0] <= found.year <= YEARS[1]:
                return found
    except ValueError:
        pass
    raise refuse(request, _("Please give {name} as YYYY-MM-DD, e.g. 2026-11-28."), 422,
                 name=name)


def moment(request: Request, value: str, name: str) -> datetime:
    """A Shanghai local time from a datetime-local field, within YEARS; 422 naming the field."""
    at = local_time(value)
    if at is None or not YEARS[0] <= at.year <= YEARS[1]:
        raise refuse(request, _("Please give {name} as YYYY-MM-DD HH:MM."), 422, name=name)
    return at


def pick(t, table: dict):
    """A label lookup for templates: the translated label of a key, or the key itself."""
    return lambda v: t(table[str(v)]) if str(v) in table else str(v)


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


# --- who is signed in -------------------------------------------------------------------------

COOKIE = "gl_member"


@dataclass
class Member:
    """The signed-in account, its person, and its organisation if it belongs to one."""

    account: Account
    membership: Membership | None

    @property
    def organisation(self) -> Organisation | None:
        return self.membership.organisation if self.membership else None

    @property
    def is_org_admin(self) -> bool:
        return self.membership is not None and self.membership.role == "admin"


async def current_member(request: Request) -> Member | None:
    account = await accounts.session_account(request.cookies.get(COOKIE))
    if account is None:
        return None
    return Member(account, await accounts.membership_of(account))


async def signed_in(request: Request) -> Member:
    """The signed-in member; anyone else is sent to the sign-in page and back."""
    member = await current_member(request)
    if member is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": "/account/login?" + urlencode(
            {"next": target})})
    return member


async def org_admin(request: Request, member: Annotated[Member, Depends(signed_in)]) -> Member:
    """A signed-in admin of an organisation; others get 403 with the reason."""
    if not member.is_org_admin:
        raise refuse(request, _("Only an administrator of an organisation can do this."), 403)
    return member


def org_id(request: Request, member: Member) -> int:
    """The member's organisation; to anyone without one an organisation's page does not exist."""
    if member.organisation is None:
        raise refuse(request, _("Page not found"), 404)
    return member.organisation.id


SignedIn = Annotated[Member, Depends(signed_in)]
OrgAdmin = Annotated[Member, Depends(org_admin)]


@dataclass
class ReportAs:
    identity: str
    organisation_id: int | None
    organisation_name: str | None


async def report_as(request: Request) -> ReportAs | None:
    """How a signed-in member reports on the resident pages: as their account's person, for
    their organisation once it is verified."""
    member = await current_member(request)
    if member is None:
        return None
    org = member.organisation
    counts = org is not None and org.status == OrgStatus.VERIFIED
    return ReportAs(accounts.identity_key(member.account.id), org.id if counts else None,
                    org.name if counts else None)


# --- staff ------------------------------------------------------------------------------------

def centre_only(request: Request, user: StaffUser) -> None:
    """The orgs console is the grid centre's (operators, administrators): to a department or
    an evaluator its pages do not exist."""
    if not centre(user):
        raise refuse(request, _("Page not found"), 404)


async def organisation(request: Request, value: str) -> Organisation:
    """The organisation a console URL names; 404 for anything else."""
    message = _("There is no such organisation.")
    try:
        return await registry.get(path_id(request, value, message=message))
    except OrgError as exc:
        raise refuse(request, exc.message, 404) from None


def staff_actor(user: StaffUser) -> str:
    return f"staff:{user.username}"


def media_path(request: Request, row) -> Path | None:
    """Where a stored file (a row with a path under the media folder) is; None for no row, a
    path that escapes the folder, or a file that is gone."""
    media = request.app.state.settings.media_dir.resolve()
    if row is None:
        return None
    path = (media / row.path).resolve()
    return path if path.is_relative_to(media) and path.is_file() else None


def photo_file(request: Request, found) -> FileResponse:
    """A stored photo (a row with path and content_type under the media folder) for someone
    allowed to see it: private caching, never sniffed; 404 for None or a path that escapes."""
    path = media_path(request, found)
    if path is None:
        raise refuse(request, _("No such photo."), 404)
    return FileResponse(path, media_type=found.content_type,
                        headers={"Cache-Control": "private, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
