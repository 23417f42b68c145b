"""Staff JSON API under /api/v1/staff (the web console builds on it).

Sign in with POST /login, then send `Authorization: Bearer <token>`. Refusals: 401 not signed
in, 403 the role may not, 404 no such case (or not one of the department's), 409 the lifecycle
does not allow it, 422 invalid input.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from feedback import metrics
from portal.cases.service import CaseError
from portal.i18n import _, gettext_for, normalise_language
from portal.staff import casework, schemas
from portal.staff import service as staff
from portal.staff.models import Role, StaffUser

log = logging.getLogger("gridlink.staff")
router = APIRouter(prefix="/api/v1/staff", tags=["staff"])
bearer = HTTPBearer(auto_error=False, description="The token from POST /api/v1/staff/login.")

REFUSED_STATUS = {"not_found": 404, "forbidden": 403, "invalid": 422}
BIGINT_MAX = 2**63 - 1


def _t(request: Request):
    return gettext_for(normalise_language(request.headers.get("accept-language")))


def _unauthorised(request: Request) -> HTTPException:
    return HTTPException(401, _t(request)(_("Please sign in.")),
                         headers={"WWW-Authenticate": "Bearer"})


async def current_user(request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                       ) -> StaffUser:
    user = await staff.session_user(credentials.credentials if credentials else None)
    if user is None:
        raise _unauthorised(request)
    return user


async def admin_user(request: Request, user: StaffUser = Depends(current_user)) -> StaffUser:
    if user.role != Role.ADMIN:
        raise HTTPException(
            403, _t(request)(_("Only an administrator can manage accounts and API keys.")))
    return user


Staff = Annotated[StaffUser, Depends(current_user)]
Admin = Annotated[StaffUser, Depends(admin_user)]


async def _run(request: Request, coro):
    """Await a casework call, answering its refusals in the person's language."""
    try:
        return await coro
    except casework.Refused as exc:
        raise HTTPException(REFUSED_STATUS[exc.kind], exc.translated(_t(request))) from exc
    except CaseError as exc:
        raise HTTPException(409, exc.translated(_t(request))) from exc


async def _staff_out(user: StaffUser) -> schemas.StaffOut:
    await user.fetch_related("department")
    return schemas.StaffOut(username=user.username, role=user.role, active=user.active,
                            department=user.department.code if user.department else None)


# --- sign-in -------------------------------------------------------------------------------

@router.post("/login", response_model=schemas.LoginOut,
             responses={401: {"description": "Wrong username or password, or paused."}})
async def login(body: schemas.LoginIn, request: Request):
    """A bearer token for the console. After `login_max_failures` wrong passwords in a row the
    account is paused for `login_lockout_minutes`; the answer is the same 401 either way, so it
    never tells whether a username exists."""
    settings = request.app.state.settings
    user = await staff.authenticate(body.username, body.password,
                                    max_failures=settings.login_max_failures,
                                    lockout=timedelta(minutes=settings.login_lockout_minutes))
    if user is None:
        raise HTTPException(401, _t(request)(_(
            "The username or password is not correct. After {n} failed attempts, sign-in is "
            "paused for {m} minutes.")).format(n=settings.login_max_failures,
                                              m=settings.login_lockout_minutes),
            headers={"WWW-Authenticate": "Bearer"})
    token, session = await staff.start_session(user)
    log.info("staff %s signed in", user.username)
    return schemas.LoginOut(token=token, expires_at=session.expires_at,
                            user=await _staff_out(user))


@router.post("/logout", status_code=204, response_class=Response)
async def logout(request: Request, user: Staff,
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
    """End this session; the token stops working at once."""
    await staff.end_session(credentials.credentials)
    return Response(status_code=204)


@router.get("/me", response_model=schemas.StaffOut)
async def me(user: Staff):
    return await _staff_out(user)


# --- accounts (admin) ------------------------------------------------------------------------

@router.get("/users", response_model=schemas.UserList)
async def list_users(user: Admin):
    return schemas.UserList(items=[await _staff_out(u)
                                   for u in await StaffUser.all().order_by("username")])


@router.post("/users", response_model=schemas.StaffOut, status_code=201)
async def create_user(body: schemas.UserIn, request: Request, user: Admin):
    try:
        created = await staff.create_user(body.username, body.password, body.role,
                                          body.department_code)
    except staff.UsernameTaken as exc:
        raise HTTPException(409, exc.translated(_t(request))) from exc
    except staff.StaffError as exc:
        raise HTTPException(422, exc.translated(_t(request))) from exc
    log.info("staff %s created the %s account %s", user.username, created.role.value,
             created.username)
    return await _staff_out(created)


@router.post("/users/{username}/deactivate", response_model=schemas.StaffOut)
async def deactivate_user(username: Annotated[str, Path(max_length=64)], request: Request,
                          user: Admin):
    """The account can no longer sign in, and its open sessions end."""
    try:
        target = await staff.deactivate_user(username, by=user)
    except staff.StaffError as exc:
        status = 404 if isinstance(exc, staff.NoSuchAccount) else 409
        raise HTTPException(status, exc.translated(_t(request))) from exc
    log.info("staff %s deactivated the account %s", user.username, target.username)
    return await _staff_out(target)


# --- API keys (admin) -----------------------------------------------------------------------

def _key_out(row) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut.model_validate(row, from_attributes=True)


@router.get("/apikeys", response_model=schemas.ApiKeyList)
async def list_api_keys(user: Admin):
    """Every key of Open311 clients and hotline systems, newest first (never the keys)."""
    return schemas.ApiKeyList(items=[_key_out(k) for k in await staff.api_keys()])


@router.post("/apikeys", response_model=schemas.ApiKeyCreated, status_code=201)
async def create_api_key(body: schemas.ApiKeyIn, request: Request, user: Admin):
    """A new key; the answer is the only place it is ever shown."""
    try:
        row, key = await staff.create_api_key(body.name, body.kind, body.line)
    except staff.StaffError as exc:
        raise HTTPException(422, exc.translated(_t(request))) from exc
    log.info("staff %s created %s API key %d", user.username, row.kind, row.id)
    return schemas.ApiKeyCreated(**_key_out(row).model_dump(), key=key)


@router.post("/apikeys/{key_id}/deactivate", response_model=schemas.ApiKeyOut)
async def deactivate_api_key(key_id: Annotated[int, Path(ge=1, le=staff.API_KEY_ID_MAX)],
                             request: Request, user: Admin):
    """The key is refused from now on (by every server process within 30 seconds)."""
    try:
        row = await staff.deactivate_api_key(key_id)
    except staff.NoSuchApiKey as exc:
        raise HTTPException(404, exc.translated(_t(request))) from exc
    log.info("staff %s deactivated %s API key %d", user.username, row.kind, row.id)
    return _key_out(row)


# --- cases -------------------------------------------------------------------------------------

@router.get("/cases", response_model=schemas.CaseList)
async def list_cases(request: Request, user: Staff,
                     f: Annotated[schemas.CaseFilter, Query()]):
    """Newest first. For the next page pass `before_id=<next_before_id>`."""
    return await _run(request, casework.list_cases(user, f))


@router.get("/cases/{code}", response_model=schemas.CaseDetail)
async def case_detail(code: str, request: Request, user: Staff):
    return await _run(request, casework.case_detail(user, code))


@router.post("/cases/{code}/status", response_model=schemas.CaseDetail)
async def set_status(code: str, body: schemas.StatusIn, request: Request, user: Staff):
    await _run(request, casework.set_status(user, code, body))
    return await _run(request, casework.case_detail(user, code))


@router.post("/cases/{code}/notes", response_model=schemas.CaseDetail)
async def add_note(code: str, body: schemas.NoteIn, request: Request, user: Staff):
    await _run(request, casework.add_note(user, code, body))
    return await _run(request, casework.case_detail(user, code))


@router.post("/cases/{code}/department", response_model=schemas.CaseDetail)
async def assign_department(code: str, body: schemas.DepartmentIn, request: Request,
                            user: Staff):
    await _run(request, casework.assign_department(user, code, body))
    return await _run(request, casework.case_detail(user, code))


@router.post("/cases/{code}/merge", response_model=schemas.CaseDetail)
async def merge(code: str, body: schemas.MergeIn, request: Request, user: Staff):
    """Merge this case into `into`: its reports, photos and followers move there."""
    target = await _run(request, casework.merge(user, code, body))
    return await _run(request, casework.case_detail(user, target.code))


@router.post("/reports/{report_id}/unmerge", response_model=schemas.CaseDetail)
async def unmerge(report_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], request: Request,
                  user: Staff):
    """Take one report out of its case into a new case of its own (answered with the new case)."""
    case = await _run(request, casework.unmerge(user, report_id))
    return await _run(request, casework.case_detail(user, case.code))


# --- satisfaction ------------------------------------------------------------------------------

class RollupOut(BaseModel):
    key: str | None = Field(description="The case code, category key, department code "
                                        "(null: no department) or organisation name; null "
                                        "for the total.")
    ratings: int
    mean: float | None = Field(description="Mean score, 1 to 5 (null without ratings).")
    satisfied: int = Field(description="Ratings of 4 or 5.")
    share_satisfied: float | None = Field(description="satisfied / ratings.")
    not_fixed: int = Field(description='Ratings saying "not fixed".')


class SatisfactionOut(BaseModel):
    group: str
    since: date | None = Field(None, alias="from")
    until: date | None = Field(None, alias="to")
    total: RollupOut
    items: list[RollupOut]


def _out(r: metrics.Rollup) -> RollupOut:
    return RollupOut(key=r.key, ratings=r.ratings,
                     mean=round(r.mean, 2) if r.mean is not None else None,
                     satisfied=r.satisfied, not_fixed=r.not_fixed,
                     share_satisfied=round(r.share_satisfied, 4)
                     if r.share_satisfied is not None else None)


@router.get("/metrics/satisfaction", response_model=SatisfactionOut, response_model_by_alias=True)
async def satisfaction(request: Request, user: Staff,
                       group: Literal["category", "department", "organisation", "case"] = "category",
                       since: Annotated[date | None, Query(alias="from")] = None,
                       until: Annotated[date | None, Query(alias="to")] = None):
    """Satisfaction ratings given in a period (`from`, `to`: Shanghai days, both included;
    either may be left out), grouped per category, department, organisation (the one that
    worked the case last) or case (cases: lowest mean first, 500 at most). A department account sees its own department's cases."""
    try:
        start, end = casework.day_bounds(since, until)
    except casework.Refused as exc:
        raise HTTPException(422, exc.translated(_t(request))) from exc
    scope = {"since": start, "until": end, "department_id": casework.metrics_department(user)}
    return SatisfactionOut.model_validate({
        "group": group, "from": since, "to": until,
        "total": _out((await metrics.rollup(None, **scope))[0]),
        "items": [_out(r) for r in await metrics.rollup(group, **scope)]})
