"""Organisations, members and signed-in clients for the orgs tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from orgs import uscc
from orgs.accounts import service as accounts
from orgs.accounts.models import Account
from orgs.registry import service as registry
from orgs.registry.models import Area, Organisation, OrgStatus
from orgs.web import COOKIE as MEMBER_COOKIE
from portal.cases.models import Identity, Person
from portal.staff import service as staff
from portal.staff.models import StaffUser
from tests.staff import PASSWORD, password_hash

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def credit_code(n: int) -> str:
    """A valid unified social credit code (a social organisation's, starting 5) for each n."""
    first17 = f"53310000{n:09d}"
    return first17 + uscc.check_char(first17)


async def area(code: str = "HP-G01", name_zh: str = "黄浦第一网格", *, parent: Area | None = None
               ) -> Area:
    found = await Area.get_or_none(code=code)
    if found:
        return found
    return await registry.add_area(code, name_zh, code, "grid", parent=parent)


async def organisation(n: int, *, name: str | None = None, service_type: str = "cleaning",
                       verified: bool = True, trained: bool = True) -> Organisation:
    """A registered organisation, verified and trained for `service_type` unless told not."""
    r = registry.Registration(
        name=name or f"测试社工服务中心{n}", uscc=credit_code(n), address=f"黄浦区{n}号",
        contact_name="李明", contact_phone=f"1381234{n:04d}", contact_email=f"org{n}@ex.org",
        service_types=[service_type])
    org = await registry.register(r)
    if verified:
        org = await registry.change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    if trained:
        today = datetime.now(UTC).date()
        await registry.record_training(
            organisation_id=org.id, service_type=service_type, certificate_no=f"PX-{n}",
            issued_by="黄浦区民政局", issued_at=today - timedelta(days=30),
            valid_until=today + timedelta(days=365), actor="staff:op")
    return org


async def account(username: str, *, org: Organisation | None = None, role: str = "admin",
                  display_name: str | None = None, phone: str | None = None) -> Account:
    """An account (password tests.staff.PASSWORD), an admin or member of `org` if given."""
    person = await Person.create(language="zh-CN", phone=phone)
    acct = await Account.create(person=person, username=username, password_hash=password_hash(),
                                display_name=display_name or username, phone=phone,
                                created_at=datetime.now(UTC))
    await Identity.create(key=accounts.identity_key(acct.id), kind="web", person=person)
    if org is not None:
        await accounts.add_member(org, acct, role)
    return acct


def _client(app, cookies: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                             cookies=cookies, follow_redirects=False)


async def member_client(app, acct: Account) -> httpx.AsyncClient:
    """A client signed in as `acct` (close it, or use it in `async with`)."""
    token, _session = await accounts.start_session(acct, lifetime=timedelta(days=1))
    return _client(app, {MEMBER_COOKIE: token})


async def staff_client(app, username: str) -> httpx.AsyncClient:
    """A client signed in to the console as a tests.staff account (create_staff first)."""
    token, _session = await staff.start_session(await StaffUser.get(username=username))
    return _client(app, {"gl_staff": token})


class Browser:
    """One person's browser: its own cookies, the CSRF token of the last page it read."""

    def __init__(self, client: httpx.AsyncClient):
        self.client, self.token = client, ""

    async def get(self, url: str, **kw) -> httpx.Response:
        res = await self.client.get(url, headers={"Accept": "text/html"}, **kw)
        if found := CSRF.search(res.text):
            self.token = found.group(1)
        return res

    async def post(self, url: str, data: dict | None = None, *, csrf: bool = True,
                   **kw) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return await self.client.post(url, data=data, headers={"Accept": "text/html"}, **kw)

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        """Sign in to the staff console."""
        await self.get("/staff/login")
        return await self.post("/staff/login", {"username": username, "password": password,
                                                "next": "/staff"})


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    """The CSRF token of the form on `path` (the cookie lands in the client)."""
    page = await client.get(path)
    found = CSRF.search(page.text)
    assert found, f"no form on {path}: {page.status_code}"
    return found.group(1)


__all__ = ["PASSWORD", "CSRF", "Browser", "area", "organisation", "account", "member_client", "staff_client",
           "csrf_of", "credit_code"]
