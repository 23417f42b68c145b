"""Organisations (issue 7, slice S1): the credit-code check, registration in the portal, the
operators' verification steps with their audit trail, the pilot-code override, training,
data-processing agreements, and contact data masked wherever others see it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from orgs import uscc
from orgs.accounts import service as accounts
from orgs.accounts.models import Account
from orgs.privacy import mask_email, mask_phone
from orgs.registry import service
from orgs.registry.models import (
    DataAgreement,
    Membership,
    Organisation,
    OrgEvent,
    OrgStatus,
    TrainingRecord,
)
from orgs.web import COOKIE as MEMBER_COOKIE
from portal.cases.models import Person
from tests import orgs_setup
from tests.orgs_setup import Browser
from tests.staff import create_staff

CODES = ("914403001922038216", "53100000500021676K")
PHONE = "13812348000"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in text)
MASKED = "138****8000"


# --- the credit code (pure) -----------------------------------------------------------------

def test_the_two_published_examples_are_valid():
    for code in CODES:
        assert uscc.problem(code) is None
        assert uscc.check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", CODES)
def test_any_single_changed_character_is_refused(code):
    changed = 0
    for i, original in enumerate(code):
        for c in uscc.ALPHABET:
            if c != original:
                assert uscc.problem(code[:i] + c + code[i + 1:]) is not None, (i, c)
                changed += 1
    assert changed == 18 * 30
    for i in range(17):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2:]
            assert uscc.problem(swapped) is not None


def test_shape_errors_and_normalisation():
    assert uscc.problem(CODES[0][:17]) == uscc.LENGTH_ERROR
    assert uscc.problem(CODES[0] + "1") == uscc.LENGTH_ERROR
    for letter in "IOSVZ":
        assert uscc.problem(CODES[1][:17] + letter) == uscc.ALPHABET_ERROR
    # Typed on a phone: full-width, lower case, spaces.
    assert uscc.normalise(f" {full_width(CODES[1].lower())} ") == CODES[1]
    assert uscc.normalise("5310 0000 5000 2167 6k") == CODES[1]
    made = "91310000MA1FL0000"
    assert uscc.is_valid(made + uscc.check_char(made))


def test_masking():
    assert mask_phone(PHONE) == MASKED
    assert mask_phone("+86 138-1234-8000") == MASKED
    assert mask_phone("021-63211234") == "****1234"
    assert mask_email("li@ex.org") == "l***@ex.org"


# --- the service ----------------------------------------------------------------------------

async def _org(code: str = CODES[0], *, pilot: bool = False, **kw) -> Organisation:
    r = service.Registration(name=kw.get("name", "示例社工服务中心"), uscc=code, pilot=pilot,
                             address="深圳市福田区1号", contact_name="李明", contact_phone=PHONE,
                             contact_email="li@ex.org", service_types=["cleaning"])
    assert service.check_registration(r, set()) == {}
    return await service.register(r)


async def test_status_steps_allowed_and_refused(settings):
    org = await _org()
    with pytest.raises(service.OrgError) as refused:
        await service.change_status(org.id, OrgStatus.SUSPENDED, actor="staff:op", reason="x")
    assert refused.value.status == 409
    with pytest.raises(service.OrgError) as no_reason:
        await service.change_status(org.id, OrgStatus.REJECTED, actor="staff:op")
    assert no_reason.value.status == 422
    await service.change_status(org.id, OrgStatus.REJECTED, actor="staff:op",
                                reason="登记证书不清晰")
    await service.change_status(org.id, OrgStatus.PENDING, actor="public")
    org = await service.change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    assert org.verified_by == "staff:op" and org.verified_at is not None
    with pytest.raises(service.OrgError):
        await service.change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    await service.change_status(org.id, OrgStatus.SUSPENDED, actor="staff:op", reason="投诉")
    with pytest.raises(service.OrgError):
        await service.change_status(org.id, OrgStatus.REJECTED, actor="staff:op", reason="x")
    org = await service.change_status(org.id, OrgStatus.VERIFIED, actor="staff:boss")
    assert org.status == OrgStatus.VERIFIED
    events = await OrgEvent.filter(organisation_id=org.id).order_by("id")
    assert [(e.kind, e.status_from, e.status_to, e.actor) for e in events] == [
        ("registered", None, "pending", "public"),
        ("rejected", "pending", "rejected", "staff:op"),
        ("resubmitted", "rejected", "pending", "public"),
        ("verified", "pending", "verified", "staff:op"),
        ("suspended", "verified", "suspended", "staff:op"),
        ("reinstated", "suspended", "verified", "staff:boss")]
    assert events[1].reason == "登记证书不清晰" and all(e.created_at for e in events)


async def test_a_pilot_code_needs_an_administrators_recorded_override(settings):
    pilot = CODES[0][:17] + "7"
    r = service.Registration(name="试点社工站", uscc=pilot, address="上海市黄浦区1号",
                             contact_name="王", contact_phone=PHONE, service_types=["patrol"])
    assert service.check_registration(r, set()) == {"uscc": uscc.CHECK_ERROR}
    r.pilot = True
    assert service.check_registration(r, set()) == {}
    org = await service.register(r)
    assert not org.uscc_valid
    with pytest.raises(service.OrgError, match="administrator"):
        await service.change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    with pytest.raises(service.OrgError):
        await service.override_uscc(org.id, actor="staff:boss", reason="")
    org = await service.override_uscc(org.id, actor="staff:boss", reason="2014年试点批次代码",
                                      now=datetime(2026, 11, 20, 2, tzinfo=UTC))
    assert (org.uscc_override_by, org.uscc_override_reason) == ("staff:boss", "2014年试点批次代码")
    assert org.uscc_override_at == datetime(2026, 11, 20, 2, tzinfo=UTC)
    event = await OrgEvent.get(organisation_id=org.id, kind="uscc_override")
    assert event.actor == "staff:boss" and event.data == {"uscc": pilot}
    await service.change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    # The pilot box never lets a wrong length or alphabet through.
    r2 = service.Registration(name="x" * 3, uscc=CODES[0][:16], pilot=True, address="xx",
                              contact_name="x", contact_phone=PHONE, service_types=["patrol"])
    assert service.check_registration(r2, set()) == {"uscc": uscc.LENGTH_ERROR}


async def test_training_validity_is_inclusive_of_its_last_day(settings):
    org = await _org()
    person = await Person.create(created_at=datetime.now(UTC))
    await service.record_training(organisation_id=org.id, service_type="cleaning",
                                  certificate_no="PX-2026-001", issued_by="福田区民政局",
                                  issued_at=date(2026, 1, 10), valid_until=date(2026, 12, 31),
                                  actor="staff:op")
    assert await service.has_current_training(org, "cleaning", date(2026, 12, 31))
    assert await service.has_current_training(org, "cleaning", date(2026, 1, 10))
    assert not await service.has_current_training(org, "cleaning", date(2027, 1, 1))
    assert not await service.has_current_training(org, "cleaning", date(2026, 1, 9))
    assert not await service.has_current_training(org, "elder_care", date(2026, 6, 1))
    # A time is taken on the Shanghai calendar: 2026-12-31 16:30 UTC is already 1 January.
    assert await service.has_current_training(org, "cleaning",
                                              datetime(2026, 12, 31, 15, 59, tzinfo=UTC))
    assert not await service.has_current_training(org, "cleaning",
                                                  datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert not await service.has_current_training(person, "cleaning", date(2026, 6, 1))
    await service.record_training(person_id=person.id, service_type="cleaning",
                                  certificate_no="P-1", issued_by="街道", actor="staff:op",
                                  issued_at=date(2026, 1, 1), valid_until=date(2026, 6, 30))
    assert await service.has_current_training(person, "cleaning", date(2026, 6, 1))
    await TrainingRecord.filter(person_id=person.id).update(revoked_at=datetime.now(UTC))
    assert not await service.has_current_training(person, "cleaning", date(2026, 6, 1))
    with pytest.raises(service.OrgError):
        await service.record_training(organisation_id=org.id, service_type="cleaning",
                                      certificate_no="X", issued_by="Y", actor="staff:op",
                                      issued_at=date(2026, 2, 1), valid_until=date(2026, 1, 1))


async def test_data_processing_agreement(settings):
    org = await _org()
    await service.record_agreement(org.id, purpose="上门养老服务：联系老人", actor="staff:op",
                                   data_types=["name", "phone", "address"],
                                   starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31),
                                   end_action="delete")
    dpa = await DataAgreement.get(organisation_id=org.id)
    assert (dpa.end_action, dpa.data_types, dpa.recorded_by) == (
        "delete", ["address", "name", "phone"], "staff:op")
    assert await service.agreement_covers(org, date(2027, 1, 1), date(2027, 12, 31))
    assert not await service.agreement_covers(org, date(2026, 12, 1), date(2027, 6, 30))
    assert await OrgEvent.exists(organisation_id=org.id, kind="dpa_recorded")


# --- HTTP -----------------------------------------------------------------------------------

@pytest.fixture
async def browser(app, clean_db):
    await create_staff()
    clients = []

    async def make(username: str | None = None, lang: str = "en", member: str | None = None
                   ) -> Browser:
        """A browser, signed in to the console as `username` or as the account `member`
        (made on the spot)."""
        cookies = {"gl_lang": lang}
        if member:
            acct = await orgs_setup.account(member)
            cookies[MEMBER_COOKIE], _session = await accounts.start_session(
                acct, lifetime=timedelta(hours=1))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://testserver", cookies=cookies)
        clients.append(client)
        b = Browser(client)
        if username:
            res = await b.sign_in(username)
            assert res.status_code == 303, res.text
        return b

    yield make
    for c in clients:
        await c.aclose()


def _form(code: str = CODES[0], **kw) -> dict:
    fields = {"name": "示例社工服务中心", "uscc": code, "address": "深圳市福田区福华路1号",
              "contact_name": "李明", "contact_phone": PHONE, "contact_email": "li@ex.org"}
    fields.update(kw)
    return {"service_types": ["cleaning", "visit"], **fields}


async def test_register_in_the_portal_and_see_only_the_masked_phone(browser):
    anonymous = await browser()
    page = await anonymous.get("/orgs/register")
    assert page.status_code == 303
    assert page.headers["location"] == "/account/login?next=%2Forgs%2Fregister"
    page = await (await browser(lang="zh-CN", member="wang")).get("/orgs/register")
    assert page.status_code == 200 and page.headers["content-language"] == "zh-CN"
    b = await browser(member="li")
    page = await b.get("/orgs/register")
    assert "Unified social credit code" in page.text
    res = await b.post("/orgs/register", _form())
    assert res.status_code == 303 and res.headers["location"] == "/org?done=registered"
    home = await b.get("/org?done=registered")
    assert "you are its administrator" in home.text and "waiting for the grid centre" in home.text
    assert MASKED in home.text and PHONE not in home.text and "li@ex.org" not in home.text
    org = await Organisation.get(uscc=CODES[0])
    assert org.status == OrgStatus.PENDING and org.service_types == ["cleaning", "visit"]
    li = await Account.get(username="li")
    assert org.registered_by_id == li.id
    assert await Membership.filter(organisation=org, account=li, role="admin").exists()
    # One organisation per account.
    second = await b.post("/orgs/register", _form(CODES[1]))
    assert second.status_code == 409 and "already belongs to an organisation" in second.text
    # Full-width and lower case are accepted as the same code, so a second try is a duplicate.
    other = await browser(member="zhao")
    await other.get("/orgs/register")
    again = await other.post("/orgs/register", _form(full_width(CODES[1].lower())))
    assert again.status_code == 303
    third = await browser(member="qian")
    await third.get("/orgs/register")
    dup = await third.post("/orgs/register", _form(CODES[0].lower()))
    assert dup.status_code == 409 and "already registered" in dup.text
    assert not await Membership.filter(account__username="qian").exists()
    # Pending organisations are not in the public directory.
    directory = await b.get("/orgs")
    assert "示例社工服务中心" not in directory.text


async def test_a_typo_in_the_code_is_refused_with_a_clear_message(browser):
    b = await browser(member="li")
    await b.get("/orgs/register")
    typo = CODES[0][:5] + "5" + CODES[0][6:]
    res = await b.post("/orgs/register", _form(typo))
    assert res.status_code == 422
    assert "The last character of this code does not match" in res.text
    assert typo in res.text  # what was typed is kept
    assert not await Organisation.exists()
    pilot = await b.post("/orgs/register", _form(typo, pilot="1"))
    assert pilot.status_code == 303
    assert "pilot code" in (await b.get("/org")).text
    assert not (await Organisation.get(uscc=typo)).uscc_valid


@pytest.mark.parametrize("fields, message", [
    ({"uscc": "91440300192203821I"}, "except I, O, S, V and Z"),
    ({"uscc": "123"}, "18 characters"),
    ({"contact_phone": "call me"}, "7 to 15 digits"),
    ({"contact_email": "li@"}, "e-mail address"),
    ({"name": ""}, "registered name"),
    ({"name": "\x00\x01"}, "registered name"),
    ({"address": "a" * 5000}, "address"),
])
async def test_bad_registrations_are_refused_with_4xx(browser, fields, message):
    b = await browser(member="li")
    await b.get("/orgs/register")
    res = await b.post("/orgs/register", _form(**fields))
    assert res.status_code == 422 and message in res.text
    assert not await Organisation.exists()


async def test_hostile_registration_posts(browser):
    b = await browser(member="li")
    await b.get("/orgs/register")
    assert (await b.post("/orgs/register", _form(), csrf=False)).status_code == 403
    junk = await b.post("/orgs/register", {**_form(), "service_types": ["cleaning", "nuclear"],
                                           "areas": ["ÿ", "9" * 30]})
    assert junk.status_code == 422 and "Choose" in junk.text
    many = await b.post("/orgs/register", {**_form(), "x": ["1"] * 300})
    assert 400 <= many.status_code < 500
    res = await b.client.post("/orgs/register", content=b"\xff" * 100,
                              headers={"Content-Type": "application/json"})
    assert res.status_code == 415
    big = await b.post("/orgs/register", _form(name="名" * 70000))
    assert big.status_code == 413
    assert not await Organisation.exists()


async def test_operators_verify_reject_suspend_and_the_directory_masks(browser):
    await _org(CODES[0])
    other = await _org(CODES[1], name="黄浦养老服务社")
    op = await browser("op")
    queue = await op.get("/staff/orgs")
    assert queue.status_code == 200 and "示例社工服务中心" in queue.text
    assert MASKED in queue.text and PHONE not in queue.text
    first = await Organisation.get(uscc=CODES[0])
    detail = await op.get(f"/staff/orgs/{first.id}")
    assert PHONE in detail.text  # operators check the registration with the full number
    res = await op.post(f"/staff/orgs/{first.id}/verify")
    assert res.status_code == 303
    assert "was verified" in (await op.get(res.headers["location"])).text
    no_reason = await op.post(f"/staff/orgs/{other.id}/reject", {"reason": " "})
    assert "give the reason" in (await op.get(no_reason.headers["location"])).text
    await op.post(f"/staff/orgs/{other.id}/reject", {"reason": "证书过期"})
    assert (await Organisation.get(id=other.id)).status_reason == "证书过期"
    twice = await op.post(f"/staff/orgs/{other.id}/verify")
    assert "cannot become verified" in (await op.get(twice.headers["location"])).text
    public = await (await browser()).get("/orgs")
    assert "示例社工服务中心" in public.text and "黄浦养老服务社" not in public.text
    assert MASKED in public.text and PHONE not in public.text
    assert "li@ex.org" not in public.text and "l***@ex.org" in public.text
    assert "李明" not in public.text
    await op.post(f"/staff/orgs/{first.id}/suspend", {"reason": "多次投诉"})
    assert "示例社工服务中心" not in (await (await browser()).get("/orgs")).text
    event = await OrgEvent.get(organisation_id=first.id, kind="suspended")
    assert (event.actor, event.reason) == ("staff:op", "多次投诉")


async def test_pilot_override_is_for_administrators_only(browser):
    org = await _org(CODES[0][:17] + "7", pilot=True)
    op = await browser("op")
    page = await op.get(f"/staff/orgs/{org.id}")
    assert "needs an administrator" in page.text and "uscc-override" not in page.text
    refused = await op.post(f"/staff/orgs/{org.id}/verify")
    assert "administrator must accept" in (await op.get(refused.headers["location"])).text
    assert (await op.post(f"/staff/orgs/{org.id}/uscc-override",
                          {"reason": "试点"})).status_code == 403
    boss = await browser("boss")
    await boss.get(f"/staff/orgs/{org.id}")
    res = await boss.post(f"/staff/orgs/{org.id}/uscc-override", {"reason": "2014年试点代码"})
    assert res.status_code == 303
    assert "accepted by staff:boss" in (await boss.get(f"/staff/orgs/{org.id}")).text
    await op.get(f"/staff/orgs/{org.id}")
    await op.post(f"/staff/orgs/{org.id}/verify")
    assert (await Organisation.get(id=org.id)).status == OrgStatus.VERIFIED


async def test_training_and_agreement_forms(browser):
    org = await _org()
    op = await browser("op")
    await op.get(f"/staff/orgs/{org.id}")
    res = await op.post(f"/staff/orgs/{org.id}/training", {
        "service_type": "cleaning", "certificate_no": "PX-1", "issued_by": "民政局",
        "issued_at": "2026-01-01", "valid_until": "2026-12-31"})
    assert res.status_code == 303
    assert await service.has_current_training(org, "cleaning", date(2026, 12, 31))
    bad = await op.post(f"/staff/orgs/{org.id}/training", {
        "service_type": "cleaning", "certificate_no": "PX-1", "issued_by": "民政局",
        "issued_at": "2026-13-01", "valid_until": "2026-12-31"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    bad_type = await op.post(f"/staff/orgs/{org.id}/training", {
        "service_type": "nuclear", "certificate_no": "PX-1", "issued_by": "民政局",
        "issued_at": "2026-01-01", "valid_until": "2026-12-31"})
    assert bad_type.status_code == 422
    dpa = await op.post(f"/staff/orgs/{org.id}/dpa", {
        "purpose": "养老走访", "data_types": ["name", "phone"], "starts_on": "2027-01-01",
        "ends_on": "2027-12-31", "end_action": "return"})
    assert dpa.status_code == 303
    page = await op.get(f"/staff/orgs/{org.id}")
    assert "PX-1" in page.text and "养老走访" in page.text and "returned" in page.text
    junk = await op.post(f"/staff/orgs/{org.id}/dpa", {
        "purpose": "x", "data_types": ["soul"], "starts_on": "2027-01-01",
        "ends_on": "2027-12-31", "end_action": "burn"})
    assert junk.status_code == 422


async def test_access_and_junk_ids(browser):
    org = await _org()
    anonymous = await browser()
    res = await anonymous.get("/staff/orgs")
    assert res.status_code == 303 and "/staff/login" in res.headers["location"]
    dept = await browser("roads")
    assert (await dept.get("/staff/orgs")).status_code == 404
    assert (await dept.get(f"/staff/orgs/{org.id}")).status_code == 404
    assert (await dept.post(f"/staff/orgs/{org.id}/verify")).status_code == 404
    op = await browser("op")
    for junk in ("ÿ", "²", "9" * 40, "-1", "0"):
        assert (await op.get(f"/staff/orgs/{junk}")).status_code == 404
    assert (await op.get("/staff/orgs?status=weird")).status_code == 400
    await op.get("/staff/orgs")
    assert (await op.post(f"/staff/orgs/{org.id}/verify", csrf=False)).status_code == 403
    assert (await Organisation.get(id=org.id)).status == OrgStatus.PENDING
