"""Cases worked by social organisations: the grid centre gives a case to an organisation (and
takes it back), the organisation's admins take it up and resolve it, residents see who works
on it; complaints about an organisation; satisfaction per organisation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from feedback.models import PersonNotice
from feedback.service import record_rating
from orgs.assessment.models import BiddingSuspension
from orgs.casework.models import CaseAssignment, Complaint
from orgs.registry import service as registry
from portal.cases.models import Case, CaseEvent, Report, Status, Subscription
from portal.intake.service import submit
from portal.intake.submission import Submission
from tests import orgs_setup
from tests.staff import create_staff

EN = {"lang": "en"}
PHONE = "13912345678"
EMAIL = "resident@example.org"


@pytest.fixture
async def staff(clean_db) -> None:
    await create_staff()


async def report(settings, n: int, status: Status = Status.ACCEPTED) -> Case:
    """A case filed through the real intake by a resident who left a phone and an e-mail."""
    receipt = await submit(Submission(
        reporter=f"tg:{n}", channel="telegram", text=f"门口垃圾堆积没人清运（{n}号楼）",
        category="garbage", lat=31.10 + n * 0.01, lng=121.40, phone=PHONE, email=EMAIL,
        received_at=datetime.now(UTC)), throttle=None, settings=settings)
    await Case.filter(id=receipt.case_id).update(status=status)
    return await Case.get(id=receipt.case_id)


async def agreement(org) -> None:
    today = datetime.now(UTC).date()
    await registry.record_agreement(
        org.id, purpose="处理居民诉求", data_types=["address", "case_photos"],
        starts_on=today - timedelta(days=1), ends_on=today + timedelta(days=365),
        end_action="delete", actor="staff:op")


async def ready_org(n: int):
    """A verified organisation with a current agreement, an admin and a plain member."""
    org = await orgs_setup.organisation(n)
    await agreement(org)
    admin = await orgs_setup.account(f"admin{n}", org=org)
    member = await orgs_setup.account(f"member{n}", org=org, role="member")
    return org, admin, member


async def post_assign(client, code: str, org_id, **extra):
    token = await orgs_setup.csrf_of(client, f"/staff/orgs/assign?case={code}&lang=en")
    return await client.post("/staff/orgs/assign", params=EN, data={
        "csrf_token": token, "case": code, "organisation": str(org_id), **extra})


async def post_status(client, code: str, status: str, note: str = "", token: str | None = None):
    token = token or await orgs_setup.csrf_of(client, f"/org/cases/{code}")
    return await client.post(f"/org/cases/{code}/status", params=EN, data={
        "csrf_token": token, "status": status, "public_note": note})


async def test_assignment_guards_refuse_with_the_reason(app, staff, settings):
    case = await report(settings, 1)
    unverified = await orgs_setup.organisation(2, verified=False)
    no_dpa = await orgs_setup.organisation(3, name="没有协议的服务社")
    suspended, _admin, _member = await ready_org(4)
    now = datetime.now(UTC)
    await BiddingSuspension.create(organisation=suspended, starts_at=now - timedelta(days=1),
                                   ends_at=now + timedelta(days=30), reason="评估不合格",
                                   trigger="assessment", status="active")
    async with await orgs_setup.staff_client(app, "op") as op:
        res = await post_assign(op, case.code, unverified.id)
        assert res.status_code == 409 and "is not verified" in res.text
        res = await post_assign(op, case.code, no_dpa.id)
        assert res.status_code == 409 and "no current data-processing agreement" in res.text
        res = await post_assign(op, case.code, suspended.id)
        assert res.status_code == 409 and "suspended from new work" in res.text
        # A new case is accepted first; a closed one takes no organisation.
        fresh = await report(settings, 5, Status.NEW)
        ok_org, _a, _m = await ready_org(6)
        res = await post_assign(op, fresh.code, ok_org.id)
        assert res.status_code == 409 and "Accept case" in res.text
        closed = await report(settings, 7, Status.CLOSED)
        res = await post_assign(op, closed.code, ok_org.id)
        assert res.status_code == 409 and "closed" in res.text
        res = await post_assign(op, case.code, ok_org.id, contract="12345")
        assert res.status_code == 422 and "not an active contract" in res.text
    assert not await CaseAssignment.exists()
    assert (await Case.get(id=case.id)).status == Status.ACCEPTED


async def test_assignment_shows_on_the_timeline_dispatches_and_tells_the_admins(
        app, client, staff, settings):
    case = await report(settings, 1)
    org, admin, member = await ready_org(2)
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get(f"/staff/cases/{case.code}", params=EN)
        assert f"/staff/orgs/assign?case={case.code}" in page.text
        res = await post_assign(op, case.code, org.id)
        assert res.status_code == 303 and res.headers["location"] == f"/staff/cases/{case.code}"
        page = await op.get(f"/staff/cases/{case.code}", params=EN)
        assert "Organisation assigned" in page.text and org.name in page.text
    assert (await Case.get(id=case.id)).status == Status.DISPATCHED
    event = await CaseEvent.get(case_id=case.id, kind="organisation")
    assert event.public and event.data["organisation"] == org.name
    # Residents see who works on it.
    public = await client.get(f"/cases/{case.code}", params=EN)
    assert f"Given to {org.name}" in public.text
    # The admin follows the case (not the plain member) and has a notice.
    subs = await Subscription.filter(case_id=case.id, reason="organisation") \
        .values_list("person_id", flat=True)
    assert subs == [admin.person_id]
    notice = await PersonNotice.get(person_id=admin.person_id, topic="case.assigned")
    assert case.code in notice.texts["en"]["title"] and notice.url == f"/org/cases/{case.code}"
    assert not await PersonNotice.filter(person_id=member.person_id).exists()


async def test_reassigning_ends_the_previous_assignment(app, staff, settings):
    case = await report(settings, 1)
    first, first_admin, _m = await ready_org(2)
    second, _a, _m2 = await ready_org(3)
    async with await orgs_setup.staff_client(app, "op") as op:
        assert (await post_assign(op, case.code, first.id)).status_code == 303
        res = await post_assign(op, case.code, first.id)
        assert res.status_code == 409 and "already works on" in res.text
        assert (await post_assign(op, case.code, second.id)).status_code == 303
    rows = await CaseAssignment.filter(case_id=case.id).order_by("id")
    assert [(r.organisation_id, r.active_key) for r in rows] == [
        (first.id, None), (second.id, case.id)]
    assert rows[0].ended_at is not None
    # The first organisation no longer follows the case, and was told.
    assert not await Subscription.filter(case_id=case.id, person_id=first_admin.person_id
                                         ).exists()
    assert await PersonNotice.filter(person_id=first_admin.person_id,
                                     topic="case.unassigned").exists()
    async with await orgs_setup.member_client(app, first_admin) as old:
        assert (await old.get(f"/org/cases/{case.code}")).status_code == 404
        listed = await old.get("/org/cases", params=EN)
        assert case.code in listed.text and "taken back" in listed.text


async def test_org_admin_takes_up_and_resolves_its_case(app, staff, settings):
    case = await report(settings, 1)
    org, admin, member = await ready_org(2)
    other, other_admin, _m = await ready_org(3)
    async with await orgs_setup.staff_client(app, "op") as op:
        assert (await post_assign(op, case.code, org.id)).status_code == 303
    async with await orgs_setup.member_client(app, admin) as c:
        listed = await c.get("/org/cases")
        assert listed.status_code == 200 and case.code in listed.text
        res = await post_status(c, case.code, "in_progress", "明天上午清运")
        assert res.status_code == 303, res.text
        res = await post_status(c, case.code, "resolved")
        assert res.status_code == 422 and "Tell residents what was done" in res.text
        res = await post_status(c, case.code, "closed", "好了")
        assert res.status_code == 422
        res = await post_status(c, case.code, "resolved", "已清运完毕")
        assert res.status_code == 303
    status = await CaseEvent.filter(case_id=case.id, kind="status").order_by("-id").first()
    assert status.status_to == "resolved" and status.actor == f"org:{org.id}:admin{2}"
    assert status.public_note == "已清运完毕"
    assert (await Case.get(id=case.id)).status == Status.RESOLVED
    # A plain member reads but cannot act; another organisation sees nothing.
    async with await orgs_setup.member_client(app, member) as c:
        assert (await c.get(f"/org/cases/{case.code}")).status_code == 200
        token = await orgs_setup.csrf_of(c, "/account")
        assert (await post_status(c, case.code, "in_progress", "x", token)).status_code == 403
    async with await orgs_setup.member_client(app, other_admin) as c:
        assert (await c.get(f"/org/cases/{case.code}")).status_code == 404
        token = await orgs_setup.csrf_of(c, "/account")
        assert (await post_status(c, case.code, "in_progress", "x", token)).status_code == 404
    # Taken back: the organisation can no longer act.
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, f"/staff/orgs/assign?case={case.code}")
        res = await op.post("/staff/orgs/unassign", data={"csrf_token": token,
                                                          "case": case.code})
        assert res.status_code == 303
        res = await op.post("/staff/orgs/unassign", data={"csrf_token": token,
                                                          "case": case.code})
        assert res.status_code == 303 and "assign" in res.headers["location"]
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/account")
        assert (await post_status(c, case.code, "in_progress", "x", token)).status_code == 404


async def test_the_org_case_page_shows_no_reporter_contacts(app, staff, settings):
    case = await report(settings, 1)
    org, admin, _m = await ready_org(2)
    async with await orgs_setup.staff_client(app, "op") as op:
        assert (await post_assign(op, case.code, org.id)).status_code == 303
    identity = (await Report.get(case_id=case.id)).identity
    async with await orgs_setup.member_client(app, admin) as c:
        page = await c.get(f"/org/cases/{case.code}", params=EN)
    assert page.status_code == 200
    assert "门口垃圾堆积没人清运" in page.text
    for private in (PHONE, PHONE[-4:] + "<", EMAIL, identity):
        assert private not in page.text


async def test_unassigning_an_untaken_dispatched_case_returns_it_to_accepted(app, staff,
                                                                             settings):
    case = await report(settings, 1)
    org, _a, _m = await ready_org(2)
    async with await orgs_setup.staff_client(app, "op") as op:
        assert (await post_assign(op, case.code, org.id)).status_code == 303
        token = await orgs_setup.csrf_of(op, f"/staff/orgs/assign?case={case.code}")
        await op.post("/staff/orgs/unassign", data={"csrf_token": token, "case": case.code})
        page = await op.get(f"/staff/cases/{case.code}", params=EN)
    assert (await Case.get(id=case.id)).status == Status.ACCEPTED
    assert 'class="case-org"' not in page.text
    last = await CaseEvent.filter(case_id=case.id, kind="organisation").order_by("-id").first()
    assert last.data["organisation"] is None


async def test_complaints_are_recorded_and_listed(app, staff, settings):
    case = await report(settings, 1)
    org, _a, _m = await ready_org(2)
    url = f"/staff/orgs/{org.id}/complaints"
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, url)
        res = await op.post(url, data={"csrf_token": token, "text": "上门服务态度差",
                                       "case": case.code.lower()})
        assert res.status_code == 303
        res = await op.post(url, params=EN, data={"csrf_token": token, "text": "x"})
        assert res.status_code == 422 and "Write the complaint" in res.text
        res = await op.post(url, params=EN, data={"csrf_token": token, "text": "没有按时处理",
                                                  "case": "GL-NOPE"})
        assert res.status_code == 422 and "There is no case GL-NOPE" in res.text
        listed = await op.get(url)
        assert "上门服务态度差" in listed.text and case.code in listed.text
    complaint = await Complaint.get()
    assert complaint.case_id == case.id and complaint.recorded_by == "staff:op"
    async with await orgs_setup.staff_client(app, "roads") as dept:
        assert (await dept.get(url)).status_code == 404


async def test_satisfaction_groups_by_organisation(app, client, staff, settings):
    from tests.test_staff_api import auth

    cases = [await report(settings, n) for n in (1, 2, 3)]
    first, _a, _m = await ready_org(4)
    second, _a2, _m2 = await ready_org(5)
    async with await orgs_setup.staff_client(app, "op") as op:
        assert (await post_assign(op, cases[0].code, first.id)).status_code == 303
        # Moved on to the second organisation: it counts there.
        assert (await post_assign(op, cases[1].code, first.id)).status_code == 303
        assert (await post_assign(op, cases[1].code, second.id)).status_code == 303
    for case, score in zip(cases, (5, 2, 4), strict=True):
        await Case.filter(id=case.id).update(status=Status.RESOLVED)
        r = await Report.get(case_id=case.id)
        await record_rating(case.id, r.person_id, score, None, None, "web")
    res = await client.get("/api/v1/staff/metrics/satisfaction",
                           params={"group": "organisation"}, headers=await auth(client, "op"))
    assert res.status_code == 200, res.text
    assert {i["key"]: (i["ratings"], i["mean"]) for i in res.json()["items"]} == {
        first.name: (1, 5.0), second.name: (1, 2.0)}
    assert res.json()["total"]["ratings"] == 3
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get("/staff/metrics", params=EN)
    assert page.status_code == 200 and "By organisation" in page.text and second.name in page.text


@pytest.mark.parametrize("who", ["op", "roads"])
async def test_bad_input_gets_a_clear_4xx(app, staff, settings, who):
    case = await report(settings, 1)
    org, admin, _m = await ready_org(2)
    async with await orgs_setup.staff_client(app, who) as c:
        if who == "roads":
            # A department is not the grid centre: these pages do not exist for it.
            assert (await c.get(f"/staff/orgs/assign?case={case.code}")).status_code == 404
            return
        token = await orgs_setup.csrf_of(c, f"/staff/orgs/assign?case={case.code}")
        for path in ("/staff/orgs/assign?case=", "/staff/orgs/assign?case=GL-0",
                     "/staff/orgs/assign?case=" + "X" * 5000, "/staff/orgs/abc/complaints",
                     "/staff/orgs/99999999999999999999/complaints"):
            assert (await c.get(path)).status_code == 404, path
        for data in ({"case": case.code, "organisation": "abc"},
                     {"case": case.code, "organisation": ""},
                     {"case": case.code, "organisation": "9" * 40},
                     {"case": case.code, "organisation": str(org.id), "contract": "-1"},
                     {"case": "\x00", "organisation": str(org.id)},
                     {"case": case.code, "organisation": "999999"}):
            res = await c.post("/staff/orgs/assign", data={"csrf_token": token, **data})
            assert 400 <= res.status_code < 500, (data, res.status_code)
        res = await c.post("/staff/orgs/assign", data={"case": case.code,
                                                       "organisation": str(org.id)})
        assert res.status_code == 403
        res = await c.post(f"/staff/orgs/{org.id}/complaints",
                           data={"csrf_token": token, "text": "坏" * 5000})
        assert res.status_code == 422
        assert (await post_assign(c, case.code, org.id)).status_code == 303
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, f"/org/cases/{case.code}")
        for status, note in (("", ""), ("resolved", "好" * 3000), ("merged", "x"),
                             ("\x00", "x")):
            res = await post_status(c, case.code, status, note, token)
            assert 400 <= res.status_code < 500, (status, res.status_code)
        for path in (f"/org/cases/{case.code}/photos/abc", f"/org/cases/{case.code}/photos/1",
                     "/org/cases/" + "X" * 300, "/org/cases/%00"):
            assert (await c.get(path)).status_code == 404, path
    async with await orgs_setup.member_client(
            app, await orgs_setup.account("loner")) as c:
        assert (await c.get("/org/cases")).status_code == 403


async def test_a_step_racing_the_unassignment_lands_before_it_or_not_at_all(app, staff,
                                                                          settings):
    from orgs.casework import service
    from orgs.registry.service import OrgError

    case = await report(settings, 1)
    org, admin, _m = await ready_org(2)
    await service.assign(case.id, org.id, actor="staff:op")
    step, taken = await asyncio.gather(
        service.set_status(org.id, admin.username, case.code, "in_progress", "马上处理"),
        service.unassign(case.id, actor="staff:op"), return_exceptions=True)
    assert not isinstance(taken, Exception), taken
    back = await CaseEvent.filter(case_id=case.id, kind="organisation").order_by("-id").first()
    moved = await CaseEvent.get_or_none(case_id=case.id, status_to="in_progress")
    if isinstance(step, OrgError):
        assert step.status == 404 and moved is None
    else:
        assert moved is not None and moved.id < back.id
