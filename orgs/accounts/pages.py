"""Sign-up, sign-in and the account page of members and volunteers, and the organisation's
own page (/org) where its admins manage members."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from tortoise.transactions import in_transaction

from feedback.models import PersonNotice
from orgs import notify, web
from orgs.accounts import service
from orgs.accounts.models import Account
from orgs.privacy import mask_phone
from orgs.registry.documents import MAX_DOCUMENTS, kind_names
from orgs.registry.models import Membership, OrgDocument
from orgs.volunteers.models import Discovery
from portal.cases.models import Case, Identity
from portal.cases.pages import address_wait
from portal.i18n import _, gettext_for
from portal.web.lang import page_language
from portal.web.templating import render

log = logging.getLogger("gridlink.orgs")
REPORTS_SHOWN = 50
router = APIRouter(include_in_schema=False)

# Messages shown once after a redirect (?done=key): nothing from the URL is echoed.
ROLE_NAMES = {"admin": _("administrator"), "member": _("member")}
DONE = {"member_invited": _("The invitation was sent: they become a member when they accept "
                            "it on their account page."),
        "joined": _("You joined the organisation."),
        "declined": _("You declined the invitation."),
        "left": _("You left the organisation."), "member_removed": _("The member was removed."),
        "document_added": _("The document was uploaded."),
        "document_removed": _("The document was removed."),
        "reports_changed": _("The member's setting was saved."),
        "signed_up": _("Welcome! Your account is ready."),
        "registered": _("The organisation is registered and you are its administrator. The grid "
                        "centre will check the registration.")}


def _next(value: str | None, default: str = "/account") -> str:
    # Only a path of this site: never //host or a scheme.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:500]
    return default


def _sign_in(request: Request, account: Account, token: str, target: str) -> RedirectResponse:
    settings = request.app.state.settings
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(web.COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=settings.secure_cookies,
                        max_age=int(timedelta(days=settings.member_session_days).total_seconds()))
    return response


def _lifetime(request: Request) -> timedelta:
    return timedelta(days=request.app.state.settings.member_session_days)


@router.get("/account/register")
async def register_form(request: Request, next: str | None = None):
    return render(request, "orgs/account/register.html",
                  {"form": {}, "errors": {}, "next": _next(next)})


@router.post("/account/register")
async def register(request: Request):
    form = await web.read_form(request)
    t = gettext_for(page_language(request))
    values = {name: web.text(request, form, name, 2000)
              for name in ("username", "display_name", "phone", "next")}
    password = web.text(request, form, "password", 2000)
    values["username"] = values["username"].strip()
    target = _next(values["next"])
    errors = service.check_new_account(values["username"], password, values["display_name"],
                                       values["phone"].strip())
    if not errors and (wait := await address_wait(request, "account")) is not None:
        return render(request, "orgs/account/register.html", {
            "form": values, "next": target, "errors": {"form": t(
                _("Too many accounts were made from this network: try again in {minutes} "
                  "minutes.")).format(minutes=max(1, wait // 60))}},
            status_code=429, headers={"Retry-After": str(wait)})
    if not errors:
        try:
            account = await service.create_account(
                values["username"], password, values["display_name"],
                phone=values["phone"].strip(), language=page_language(request))
        except service.AccountError as exc:
            errors = {"username": exc.message}
    if errors:
        return render(request, "orgs/account/register.html", {
            "form": values, "next": target, "errors": {k: t(v) for k, v in errors.items()}},
            status_code=422)
    token, _session = await service.start_session(account, lifetime=_lifetime(request))
    log.info("account %s created", account.id)
    return _sign_in(request, account, token, target if values["next"] else
                    "/account?done=signed_up")


@router.get("/account/login")
async def login_form(request: Request, next: str | None = None):
    if await web.current_member(request) is not None:
        return RedirectResponse(_next(next), status_code=303)
    return render(request, "orgs/account/login.html", {"next": _next(next), "username": ""})


@router.post("/account/login")
async def login(request: Request):
    form = await web.read_form(request)
    settings = request.app.state.settings
    username = web.text(request, form, "username", 200).strip()
    password = web.text(request, form, "password", 2000)
    target = _next(web.text(request, form, "next", 600))
    account = None
    if username and password and username.isprintable():
        account = await service.authenticate(
            username, password, max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes))
    if account is None:
        t = gettext_for(page_language(request))
        error = t(_("The username or password is not correct. After {n} failed attempts in a "
                    "row, sign-in is paused for {m} minutes.")).format(
            n=settings.login_max_failures, m=settings.login_lockout_minutes)
        return render(request, "orgs/account/login.html",
                      {"next": target, "username": username[:64], "error": error},
                      status_code=401)
    token, _session = await service.start_session(account, lifetime=_lifetime(request))
    return _sign_in(request, account, token, target)


@router.post("/account/logout")
async def logout(request: Request):
    await web.read_form(request)
    token = request.cookies.get(web.COOKIE)
    if token:
        await service.end_session(token)
    response = RedirectResponse("/account/login", status_code=303)
    response.delete_cookie(web.COOKIE, path="/")
    return response


def _chat_label(key: str) -> str:
    kind, _sep, rest = key.partition(":")
    return {"tg": "Telegram", "wx": "WeChat"}.get(kind, kind) + " …" + rest[-4:]


async def _account_page(request: Request, member: web.Member, *, code: str | None = None):
    t = gettext_for(page_language(request))
    account = member.account
    chats = await Identity.filter(person_id=account.person_id, kind__in=("tg", "wx")) \
        .order_by("id").values_list("key", flat=True)
    done = DONE.get(request.query_params.get("done", ""))
    invitation = await service.invitation_of(account)
    unread = await PersonNotice.filter(person_id=account.person_id, read_at__isnull=True).count()
    return render(request, "orgs/account/account.html", {
        "account": account, "member": member, "chats": [_chat_label(k) for k in chats],
        "invitation": invitation, "unread_notices": unread,
        "code": code, "done": t(done) if done else None})


@router.get("/account")
async def account_page(request: Request, member: web.SignedIn):
    return await _account_page(request, member)


@router.post("/account/link-code")
async def link_code(request: Request, member: web.SignedIn):
    await web.read_form(request)
    code = await service.new_link_code(member.account, request.app.state.secret_key)
    return await _account_page(request, member, code=code)


# --- the organisation's own page -----------------------------------------------------------------

@router.get("/org")
async def org_home(request: Request, member: web.SignedIn):
    if member.organisation is None:
        return render(request, "orgs/account/no_org.html", {})
    org = member.organisation
    t = gettext_for(page_language(request))
    members = await Membership.filter(organisation_id=org.id, status="active") \
        .order_by("id").prefetch_related("account")
    invited = await Membership.filter(organisation_id=org.id, status="invited") \
        .order_by("id").prefetch_related("account")
    done = DONE.get(request.query_params.get("done", ""))
    found = await Discovery.filter(organisation_id=org.id).order_by("-id").limit(REPORTS_SHOWN)
    cases = {c.id: c for c in await Case.filter(id__in=[d.case_id for d in found])}
    return render(request, "orgs/account/org.html", {
        "org": org, "member": member, "done": t(done) if done else None,
        "documents": await OrgDocument.filter(organisation_id=org.id).order_by("id"),
        "document_kinds": kind_names(page_language(request)), "max_documents": MAX_DOCUMENTS,
        "reports": [{"code": cases[d.case_id].code, "status": d.status,
                     "created_at": d.created_at} for d in found if d.case_id in cases],
        "phone": mask_phone(org.contact_phone),
        "members": [{"id": m.id, "name": m.account.display_name, "role": m.role,
                     "phone": mask_phone(m.account.phone or ""),
                     "reports_for_org": m.reports_for_org,
                     "me": m.account_id == member.account.id} for m in members],
        "invited": [{"id": m.id, "name": m.account.display_name, "role": m.role}
                    for m in invited]})


@router.post("/org/members")
async def add_member(request: Request, member: web.OrgAdmin):
    form = await web.read_form(request)
    username = web.text(request, form, "username", 200).strip()
    role = web.text(request, form, "role", 20)
    account = await Account.get_or_none(username=username, active=True) \
        if service.USERNAME.match(username) else None
    if account is None:
        raise web.refuse(request, _("There is no account {username}: ask them to sign up "
                                    "first."), 404, username=username[:64])
    org = member.organisation
    try:
        async with in_transaction() as conn:
            await service.add_member(org, account, role, invited=True, conn=conn)
            await notify.to_people(
                [account.person_id], topic="member.invited", ref=f"invite:{org.id}:{account.id}"
                f":{datetime.now(UTC):%Y%m%d%H%M%S}", title=_("Invitation from {org}"),
                body=_("{org} invites you to join as {role}. Accept or decline on your account "
                       "page."), link=_("Answer the invitation"), url="/account", conn=conn,
                org=org.name, role=ROLE_NAMES[role])
    except service.AccountError as exc:
        raise web.refuse(request, exc.message, exc.status, **exc.params) from None
    log.info("organisation %s: account %s invited", org.id, account.id)
    return RedirectResponse("/org?done=member_invited", status_code=303)


@router.post("/account/invitation")
async def answer_invitation(request: Request, member: web.SignedIn):
    form = await web.read_form(request)
    answer = web.text(request, form, "answer", 10)
    if answer not in ("accept", "decline"):
        raise web.refuse(request, _("The form could not be read."))
    if await service.answer_invitation(member.account, answer == "accept") is None:
        raise web.refuse(request, _("There is no invitation waiting."), 404)
    return RedirectResponse("/org?done=joined" if answer == "accept" else
                            "/account?done=declined", status_code=303)


@router.post("/account/leave")
async def leave(request: Request, member: web.SignedIn):
    await web.read_form(request)
    if member.membership is None:
        raise web.refuse(request, _("You do not belong to an organisation."), 404)
    try:
        await service.leave(member.membership)
    except service.AccountError as exc:
        raise web.refuse(request, exc.message, exc.status, **exc.params) from None
    return RedirectResponse("/account?done=left", status_code=303)


@router.post("/org/members/{membership_id}/remove")
async def remove_member(membership_id: str, request: Request, member: web.OrgAdmin):
    await web.read_form(request)
    found = None
    if (membership_no := web.number(membership_id)) is not None:
        found = await Membership.get_or_none(id=membership_no, status__in=("active", "invited"),
                                             organisation_id=member.organisation.id)
    if found is None:
        raise web.refuse(request, _("There is no such member."), 404)
    if found.account_id == member.account.id:
        raise web.refuse(request, _("You cannot remove yourself: another administrator can."),
                         409)
    await service.remove_member(found)
    return RedirectResponse("/org?done=member_removed", status_code=303)


@router.post("/org/members/{membership_id}/reports")
async def member_reports(membership_id: str, request: Request, member: web.OrgAdmin):
    """Whether the reports this member sends from linked chats count for the organisation
    (a web report asks each time)."""
    form = await web.read_form(request)
    counts = web.text(request, form, "reports_for_org", 8)
    if counts not in ("0", "1"):
        raise web.refuse(request, _("The form could not be read."))
    changed = 0
    if (membership_no := web.number(membership_id)) is not None:
        changed = await Membership.filter(
            id=membership_no, status="active", organisation_id=member.organisation.id
        ).update(reports_for_org=counts == "1")
    if not changed:
        raise web.refuse(request, _("There is no such member."), 404)
    log.info("organisation %s: membership %s reports_for_org=%s", member.organisation.id,
             membership_id, counts)
    return RedirectResponse("/org?done=reports_changed", status_code=303)
