"""Accounts of organisation members and volunteers (issue 7): sign-up, sign-in with lockout,
the account page, the organisation's member list and linking a chat with a one-time code."""

from __future__ import annotations

import re

import httpx
import pytest

from feedback.models import PersonNotice
from orgs.accounts import service as accounts
from orgs.accounts.models import Account, AccountSession
from orgs.registry.models import Membership
from orgs.web import COOKIE
from portal.cases.models import Identity, Person
from tests import orgs_setup
from tests.orgs_setup import PASSWORD, Browser

PHONE = "13812348000"


@pytest.fixture
async def browser(app, clean_db):
    clients = []

    async def make() -> Browser:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://testserver", cookies={"gl_lang": "en"})
        clients.append(client)
        return Browser(client)

    yield make
    for c in clients:
        await c.aclose()


async def _sign_up(b: Browser, username: str = "li.ming", **kw) -> httpx.Response:
    await b.get("/account/register")
    return await b.post("/account/register", {
        "username": username, "display_name": kw.get("display_name", "小李"),
        "password": kw.get("password", PASSWORD), "phone": kw.get("phone", PHONE),
        "next": kw.get("next", "")})


async def test_sign_up_sign_in_and_out(browser):
    b = await browser()
    res = await _sign_up(b)
    assert res.status_code == 303 and res.headers["location"] == "/account?done=signed_up"
    page = await b.get("/account?done=signed_up")
    assert "Welcome" in page.text and "li.ming" in page.text and PHONE in page.text
    account = await Account.get(username="li.ming")
    assert account.password_hash.startswith("$argon2")
    # The account's person has a web identity of its own, so its reports meet in one place.
    assert await Identity.filter(key=f"web:account:{account.id}",
                                 person_id=account.person_id).exists()
    res = await b.post("/account/logout")
    assert res.status_code == 303
    assert (await b.get("/account")).status_code == 303
    assert not await AccountSession.exists()
    page = await b.get("/account/login?next=/tasks")
    res = await b.post("/account/login", {"username": "li.ming", "password": PASSWORD,
                                          "next": "/tasks"})
    assert res.status_code == 303 and res.headers["location"] == "/tasks"
    assert (await b.get("/account")).status_code == 200


async def test_wrong_passwords_pause_sign_in(browser, settings):
    b = await browser()
    await _sign_up(b)
    await b.post("/account/logout")
    other = await browser()
    await other.get("/account/login")
    for _ in range(settings.login_max_failures):
        res = await other.post("/account/login", {"username": "li.ming", "password": "wrong-one!"})
        assert res.status_code == 401 and "not correct" in res.text
    # Paused: even the right password is refused, with the same answer as a wrong one.
    res = await other.post("/account/login", {"username": "li.ming", "password": PASSWORD})
    assert res.status_code == 401
    unknown = await other.post("/account/login", {"username": "nobody", "password": PASSWORD})
    assert unknown.status_code == 401 and "not correct" in unknown.text


@pytest.mark.parametrize("fields, message", [
    ({"username": "李"}, "A username has 2 to 64"),
    ({"username": "a" * 100}, "A username has 2 to 64"),
    ({"password": "short"}, "at least 10 characters"),
    ({"display_name": ""}, "1 to 32 characters"),
    ({"display_name": "\x00bad"}, "1 to 32 characters"),
    ({"phone": "call me"}, "phone number of digits"),
])
async def test_bad_sign_ups_are_refused_with_the_reason(browser, fields, message):
    b = await browser()
    res = await _sign_up(b, **fields)
    assert res.status_code == 422 and message in res.text
    assert not await Account.exists()


async def test_hostile_account_posts(browser):
    b = await browser()
    assert (await _sign_up(b)).status_code == 303
    again = await browser()
    taken = await _sign_up(again)
    assert taken.status_code == 422 and "is taken" in taken.text
    assert await Account.filter(username="li.ming").count() == 1
    res = await again.post("/account/register", {"username": "x1", "password": PASSWORD,
                                                 "display_name": "x"}, csrf=False)
    assert res.status_code == 403
    big = await again.post("/account/register", {"username": "x1", "display_name": "名" * 40000,
                                                 "password": PASSWORD})
    assert big.status_code == 413
    # A sign-in never sends anyone to another site.
    await again.get("/account/login")
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        res = await again.post("/account/login", {"username": "li.ming", "password": PASSWORD,
                                                  "next": evil})
        assert res.status_code == 303 and res.headers["location"] == "/account"
    for path in ("/account", "/org", "/account/link-code"):
        anonymous = await browser()
        res = await anonymous.client.get(path) if path != "/account/link-code" else \
            await anonymous.client.post(path)
        assert res.status_code == 303, path
        assert res.headers["location"].startswith("/account/login"), path


async def test_a_flood_of_sign_ups_from_one_network_is_paused(browser):
    b = await browser()
    codes = [(await _sign_up(b, f"user{i}")).status_code for i in range(12)]
    assert codes[:10] == [303] * 10
    assert codes[10] == 429
    assert await Account.all().count() == 10


async def test_members_of_an_organisation(app, browser):
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("admin1", org=org, phone="13900001111")
    helper = await orgs_setup.account("helper", phone="13700002222", display_name="小王")
    b = await browser()
    b.client.cookies[COOKIE], _s = await accounts.start_session(admin, lifetime=_day())
    page = await b.get("/org")
    assert org.name in page.text and "Invite a member" in page.text
    assert "139****1111" in page.text and "13900001111" not in page.text
    missing = await b.post("/org/members", {"username": "nobody", "role": "member"})
    assert missing.status_code == 404 and "ask them to sign up" in missing.text
    res = await b.post("/org/members", {"username": "helper", "role": "member"})
    assert res.status_code == 303
    page = await b.get("/org?done=member_invited")
    assert "The invitation was sent" in page.text and "Invited, not yet accepted" in page.text
    # Nobody is a member before saying yes: the invitee is told, and answers on their page.
    assert await accounts.membership_of(helper) is None
    notice = await PersonNotice.get(person_id=helper.person_id, topic="member.invited")
    assert org.name in notice.texts["en"]["body"]
    twice = await b.post("/org/members", {"username": "helper", "role": "member"})
    assert twice.status_code == 409 and "has an invitation" in twice.text
    junk = await b.post("/org/members", {"username": "admin1", "role": "owner"})
    assert junk.status_code == 400 and "A member is an admin or a member." in junk.text

    m = await browser()
    m.client.cookies[COOKIE], _s = await accounts.start_session(helper, lifetime=_day())
    page = await m.get("/account")
    assert f"{org.name} invites you to join as member" in page.text
    assert (await m.post("/account/invitation", {"answer": "maybe"})).status_code == 400
    res = await m.post("/account/invitation", {"answer": "accept"})
    assert res.status_code == 303 and res.headers["location"] == "/org?done=joined"
    assert (await m.post("/account/invitation", {"answer": "accept"})).status_code == 404
    page = await b.get("/org")
    assert "小王" in page.text and "137****2222" in page.text and "13700002222" not in page.text

    # A plain member sees the page but not the admin's controls, and cannot use them.
    page = await m.get("/org")
    assert org.name in page.text and "Invite a member" not in page.text
    refused = await m.post("/org/members", {"username": "admin1", "role": "member"})
    assert refused.status_code == 403
    membership = await Membership.get(account=helper)
    assert (await m.post(f"/org/members/{membership.id}/remove")).status_code == 403

    own = await Membership.get(account=admin)
    await b.get("/org")
    assert (await b.post(f"/org/members/{own.id}/remove")).status_code == 409
    for junk_id in ("x", "9" * 30, "-1", "²", "٣"):
        assert (await b.post(f"/org/members/{junk_id}/remove")).status_code == 404
    assert (await b.post(f"/org/members/{membership.id}/remove")).status_code == 303
    assert (await Membership.get(id=membership.id)).status == "removed"
    # Removed, the account may join another organisation.
    other = await orgs_setup.organisation(2)
    await accounts.add_member(other, helper, "member")


async def test_declining_and_leaving(app, browser):
    org = await orgs_setup.organisation(5)
    admin = await orgs_setup.account("boss5", org=org)
    guest = await orgs_setup.account("guest")
    await accounts.add_member(org, guest, "admin", invited=True)
    g = await browser()
    g.client.cookies[COOKIE], _s = await accounts.start_session(guest, lifetime=_day())
    await g.get("/account")
    res = await g.post("/account/invitation", {"answer": "decline"})
    assert res.status_code == 303 and await accounts.membership_of(guest) is None
    # Declined, the account is free to register its own organisation.
    assert (await g.get("/orgs/register")).status_code == 200
    # The last administrator cannot leave; a member can.
    a = await browser()
    a.client.cookies[COOKIE], _s = await accounts.start_session(admin, lifetime=_day())
    await a.get("/account")
    last = await a.post("/account/leave")
    assert last.status_code == 409 and "last administrator" in last.text
    await accounts.add_member(org, guest, "member")
    await g.get("/account")
    assert (await g.post("/account/leave")).status_code == 303
    assert await accounts.membership_of(guest) is None
    assert (await g.post("/account/leave")).status_code == 404


async def test_link_a_chat_with_a_one_time_code(app, browser):
    acct = await orgs_setup.account("linker")
    b = await browser()
    b.client.cookies[COOKIE], _s = await accounts.start_session(acct, lifetime=_day())
    await b.get("/account")
    page = await b.post("/account/link-code")
    code = re.search(r"/link (\d{6})", page.text).group(1)
    secret = app.state.secret_key
    # The chat had reported before: its person and reports move to the account's person.
    chat = await Person.create(language="zh-CN")
    await Identity.create(key="tg:4242", kind="tg", person=chat)
    assert await accounts.redeem_link_code("tg:4242", "000000" if code != "000000" else "111111",
                                           secret) is None
    linked = await accounts.redeem_link_code("tg:4242", code, secret)
    assert linked.id == acct.id
    assert (await Identity.get(key="tg:4242")).person_id == acct.person_id
    assert not await Person.filter(id=chat.id).exists()
    # Once only.
    assert await accounts.redeem_link_code("tg:4243", code, secret) is None
    assert "Telegram …4242" in (await b.get("/account")).text
    # A chat that belongs to another account is never taken over.
    other = await orgs_setup.account("other")
    code2 = await accounts.new_link_code(other, secret)
    with pytest.raises(accounts.AccountError):
        await accounts.redeem_link_code("tg:4242", code2, secret)
    assert (await Identity.get(key="tg:4242")).person_id == acct.person_id
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert await accounts.redeem_link_code("tg:4242", junk, secret) is None


def _day():
    from datetime import timedelta
    return timedelta(days=1)


async def test_a_member_reports_for_the_organisation(app, browser):
    from portal.cases.models import Report
    from tests.test_web_resident import send

    org = await orgs_setup.organisation(3)
    pending = await orgs_setup.organisation(4, verified=False)
    member = await orgs_setup.account("reporter", org=org, role="member")
    newcomer = await orgs_setup.account("newcomer", org=pending)
    b = await browser()
    b.client.cookies[COOKIE], _s = await accounts.start_session(member, lifetime=_day())
    page = await b.get("/report")
    assert f"Report for {org.name}" in page.text
    res = await send(b.client, for_org="1", description="小区门口垃圾堆了三天没人清理，气味很大")
    assert res.status_code == 303
    report = await Report.get()
    assert report.extra.get("organisation_id") == org.id
    # The report joins the account's person, wherever the member reports from.
    assert report.person_id == member.person_id
    # Unticked, it is the member's own report.
    res = await send(b.client, description="路灯不亮，晚上很黑，走路不安全，请尽快修理",
                     category="street_light", address="黄浦区南京东路100号")
    assert res.status_code == 303
    own = await Report.filter(person_id=member.person_id).order_by("-id").first()
    assert "organisation_id" not in own.extra
    # An organisation not yet verified has no reports counted.
    n = await browser()
    n.client.cookies[COOKIE], _s = await accounts.start_session(newcomer, lifetime=_day())
    page = await n.get("/report")
    assert page.status_code == 200 and 'name="description"' in page.text
    assert "Report for" not in page.text
