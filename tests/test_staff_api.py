"""The staff JSON API as the console uses it: sign-in and lockout, sessions, roles and what each
may see and do, the case lifecycle, merge and unmerge, the case list and its pages."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from portal.cases.models import Case, CaseEvent, Department, Report, Status, Subscription
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.staff import service as staff_service
from portal.staff.models import ApiKey, StaffSession, StaffUser
from portal.staff.service import create_api_key
from tests.staff import PASSWORD, create_staff

API = "/api/v1/staff"
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
EN = {"Accept-Language": "en"}


@pytest.fixture
async def staff(clean_db) -> None:
    await create_staff()


async def login(client, username: str, password: str = PASSWORD):
    return await client.post(f"{API}/login", json={"username": username, "password": password})


async def auth(client, username: str, password: str = PASSWORD) -> dict:
    res = await login(client, username, password)
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['token']}", **EN}


async def report(settings, n: int, *, reporter: str | None = None, category: str = "garbage",
                 text: str = "门口垃圾堆积没人清运", lat: float | None = None, at=T0,
                 **kw) -> str:
    """A case filed through the real intake; returns its code."""
    receipt = await submit(Submission(
        reporter=reporter or f"tg:{n}", channel="telegram", text=f"{text}（{n}号楼）",
        category=category, lat=lat if lat is not None else 31.10 + n * 0.01, lng=121.40,
        received_at=at, **kw), throttle=None, settings=settings)
    return receipt.case_code


async def assign(code: str, department_code: str, status: Status = Status.DISPATCHED) -> None:
    dept = await Department.get(code=department_code)
    await Case.filter(code=code).update(department_id=dept.id, status=status)


# --- sign-in, sessions, accounts ----------------------------------------------------------------

async def test_sign_in_gives_a_token_that_is_stored_only_as_a_hash(client, staff):
    res = await login(client, "op")
    assert res.status_code == 200
    token = res.json()["token"]
    assert res.json()["user"] == {"username": "op", "role": "operator", "department": None,
                                  "active": True}
    me = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "op"
    session = await StaffSession.get()
    assert session.token_hash != token and token not in session.token_hash
    assert len(session.token_hash) == 64


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client, staff):
    wrong = await login(client, "op", "not the password")
    nobody = await login(client, "nobody-here", "not the password")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


async def test_repeated_failures_pause_sign_in_without_telling_the_account_exists(
        client, staff, settings):
    for _ in range(settings.login_max_failures):
        assert (await login(client, "op", "guess")).status_code == 401
    paused = await login(client, "op")
    assert paused.status_code == 401
    assert paused.json() == (await login(client, "nobody-here")).json()
    # The pause is over (as if login_lockout_minutes had passed).
    await StaffUser.filter(username="op").update(locked_until=datetime.now(UTC) -
                                                 timedelta(seconds=1))
    assert (await login(client, "op")).status_code == 200


async def test_guesses_sent_at_the_same_time_still_pause_sign_in(client, staff, settings):
    guesses = [login(client, "op", f"guess-{n}") for n in range(3 * settings.login_max_failures)]
    assert {res.status_code for res in await asyncio.gather(*guesses)} == {401}
    # The right password no longer gets in: the account is paused.
    assert (await login(client, "op")).status_code == 401


async def test_logout_ends_the_session(client, staff):
    headers = await auth(client, "op")
    assert (await client.post(f"{API}/logout", headers=headers)).status_code == 204
    again = await client.get(f"{API}/cases", headers=headers)
    assert again.status_code == 401
    assert again.headers["www-authenticate"] == "Bearer"
    assert await StaffSession.all().count() == 0


async def test_an_expired_session_is_refused(client, staff):
    headers = await auth(client, "op")
    assert (await client.get(f"{API}/cases", headers=headers)).status_code == 200
    await StaffSession.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert (await client.get(f"{API}/cases", headers=headers)).status_code == 401


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer not-a-token",
                                           "Basic b3A6cGFzc3dvcmQ=", "Bearer " + "x" * 500])
async def test_no_valid_token_no_cases(client, staff, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    res = await client.get(f"{API}/cases", headers=headers)
    assert res.status_code == 401


async def test_an_admin_creates_and_deactivates_accounts(client, staff):
    admin = await auth(client, "boss")
    created = await client.post(f"{API}/users", headers=admin, json={
        "username": "li.roads", "password": "a-long-password", "role": "department",
        "department_code": "shizheng"})
    assert created.status_code == 201
    assert created.json()["department"] == "shizheng"
    taken = await client.post(f"{API}/users", headers=admin, json={
        "username": "li.roads", "password": "a-long-password", "role": "operator"})
    assert taken.status_code == 409
    short = await client.post(f"{API}/users", headers=admin, json={
        "username": "wang.wu", "password": "short", "role": "operator"})
    assert short.status_code == 422 and "10" in short.json()["detail"]

    li = await auth(client, "li.roads", "a-long-password")
    off = await client.post(f"{API}/users/li.roads/deactivate", headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await client.get(f"{API}/me", headers=li)).status_code == 401
    assert (await login(client, "li.roads", "a-long-password")).status_code == 401
    self_off = await client.post(f"{API}/users/boss/deactivate", headers=admin)
    assert self_off.status_code == 409
    missing = await client.post(f"{API}/users/nobody/deactivate", headers=admin)
    assert missing.status_code == 404


def _ticket(no: str) -> dict:
    return {"tickets": [{"line": "12345", "ticket_no": no,
                         "received_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                         "category": "street_light", "address": "黄浦区福州路100号",
                         "description": "福州路100号路灯不亮"}]}


def _open311(key: str, device: str) -> dict:
    return {"api_key": key, "service_code": "garbage", "lat": "31.2304", "long": "121.4737",
            "description": "人民广场东门垃圾满了", "device_id": device}


async def test_an_admin_issues_lists_and_deactivates_api_keys(client, staff):
    admin = await auth(client, "boss")
    made = await client.post(f"{API}/apikeys", headers=admin, json={
        "name": "12345 市民热线系统", "kind": "hotline", "line": "12345"})
    assert made.status_code == 201, made.text
    hotline = made.json()
    app = (await client.post(f"{API}/apikeys", headers=admin, json={
        "name": "街道随手拍 app", "kind": "open311", "line": "12319"})).json()
    assert app["line"] is None  # a line means nothing for an Open311 key

    listed = await client.get(f"{API}/apikeys", headers=admin)
    assert [(k["id"], k["name"], k["kind"], k["line"], k["active"])
            for k in listed.json()["items"]] == [
        (app["id"], "街道随手拍 app", "open311", None, True),
        (hotline["id"], "12345 市民热线系统", "hotline", "12345", True)]
    # The keys were shown once, in the answers that created them, and are stored only hashed.
    assert hotline["key"] not in listed.text and app["key"] not in listed.text
    assert "key_hash" not in listed.text
    [row] = await ApiKey.filter(id=hotline["id"])
    assert hotline["key"] not in row.key_hash

    tickets = "/api/v1/hotline/tickets"
    sent = await client.post(tickets, headers={"X-Api-Key": hotline["key"]}, json=_ticket("K1"))
    assert sent.status_code == 200 and sent.json()["created"] == 1
    posted = await client.post("/open311/v2/requests.json", data=_open311(app["key"], "d1"))
    assert posted.status_code == 200, posted.text

    off = await client.post(f"{API}/apikeys/{hotline['id']}/deactivate", headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    await client.post(f"{API}/apikeys/{app['id']}/deactivate", headers=admin)
    # Refused at once in this process, although both keys were just used (and remembered).
    refused = await client.post(tickets, headers={"X-Api-Key": hotline["key"], **EN},
                                json=_ticket("K2"))
    assert refused.status_code == 401
    assert (await client.post("/open311/v2/requests.json",
                              data=_open311(app["key"], "d2"))).status_code == 403
    again = await client.post(f"{API}/apikeys/{hotline['id']}/deactivate", headers=admin)
    assert again.status_code == 200 and again.json()["active"] is False
    listed = (await client.get(f"{API}/apikeys", headers=admin)).json()["items"]
    assert [k["active"] for k in listed] == [False, False]


async def test_a_key_deactivated_elsewhere_is_refused_once_its_cached_lookup_expires(
        client, staff, monkeypatch):
    """Another process (the command line, a second server worker) cannot empty this one's
    cache: there the key keeps working until the half-minute it is trusted has passed."""
    row, key = await create_api_key("12345 system", "hotline", "12345")
    tickets = "/api/v1/hotline/tickets"
    assert (await client.post(tickets, headers={"X-Api-Key": key},
                              json=_ticket("C1"))).status_code == 200
    await ApiKey.filter(id=row.id).update(active=False)
    assert (await client.post(tickets, headers={"X-Api-Key": key},
                              json=_ticket("C2"))).status_code == 200
    now = time.monotonic()
    monkeypatch.setattr(staff_service, "_clock", lambda: now + staff_service.KEY_TTL_S + 1)
    assert (await client.post(tickets, headers={"X-Api-Key": key},
                              json=_ticket("C3"))).status_code == 401


async def test_a_lookup_racing_a_deactivation_does_not_bring_the_key_back(clean_db, monkeypatch):
    row, key = await create_api_key("an app", "open311")
    read, go_on = asyncio.Event(), asyncio.Event()
    real = ApiKey.get_or_none

    async def slow(*args, **kwargs):
        found = await real(*args, **kwargs)
        read.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(ApiKey, "get_or_none", slow)
    lookup = asyncio.create_task(staff_service.check_api_key(key, "open311"))
    await read.wait()  # the lookup has read the key while it was active ...
    monkeypatch.setattr(ApiKey, "get_or_none", real)
    await staff_service.deactivate_api_key(row.id)  # ... and it is deactivated meanwhile
    go_on.set()
    assert (await lookup) is not None
    assert await staff_service.check_api_key(key, "open311") is None


@pytest.mark.parametrize("body, words", [
    ({"name": "x", "kind": "hotline"}, "12345, 12319 or 962121"),
    ({"name": "x", "kind": "hotline", "line": "110"}, None),
    ({"name": "x", "kind": "wechat"}, None),
    ({"name": "", "kind": "open311"}, None),
    ({"name": "   ", "kind": "open311"}, None),
    ({"name": "x" * 101, "kind": "open311"}, None),
    ({"name": "evil\x07app", "kind": "open311"}, None),
    ({"name": "x", "kind": "open311", "extra": 1}, None),
])
async def test_an_api_key_needs_a_holder_a_kind_and_for_a_hotline_its_line(client, staff, body,
                                                                           words):
    admin = await auth(client, "boss")
    res = await client.post(f"{API}/apikeys", headers=admin, json=body)
    assert res.status_code == 422
    if words:
        assert words in res.json()["detail"]
    assert await ApiKey.all().count() == 0


async def test_only_an_admin_manages_api_keys(client, staff):
    _, key = await create_api_key("an app", "open311")
    row = await ApiKey.get()
    for who in ("op", "roads"):
        headers = await auth(client, who)
        assert (await client.get(f"{API}/apikeys", headers=headers)).status_code == 403
        assert (await client.post(f"{API}/apikeys", headers=headers, json={
            "name": "mine", "kind": "open311"})).status_code == 403
        assert (await client.post(f"{API}/apikeys/{row.id}/deactivate",
                                  headers=headers)).status_code == 403
    assert (await client.get(f"{API}/apikeys")).status_code == 401
    admin = await auth(client, "boss")
    for missing in (row.id + 1, 2**31 - 1):
        res = await client.post(f"{API}/apikeys/{missing}/deactivate", headers=admin)
        assert res.status_code == 404 and "no API key" in res.json()["detail"]
    for bad in ("0", "-1", "x", str(2**31), "9" * 5000):
        res = await client.post(f"{API}/apikeys/{bad}/deactivate", headers=admin)
        assert res.status_code == 422
    assert (await ApiKey.get()).active is True


async def test_only_an_admin_manages_accounts(client, staff):
    op = await auth(client, "op")
    res = await client.post(f"{API}/users", headers=op, json={
        "username": "sneaky", "password": "a-long-password", "role": "admin"})
    assert res.status_code == 403
    assert (await client.get(f"{API}/users", headers=op)).status_code == 403
    assert not await StaffUser.filter(username="sneaky").exists()


# --- roles ------------------------------------------------------------------------------------

async def test_a_department_sees_and_handles_only_its_own_cases(client, staff, settings):
    ours = await report(settings, 1)
    theirs = await report(settings, 2)
    nobody = await report(settings, 3)
    await assign(ours, "shizheng")
    await assign(theirs, "shirong")
    roads = await auth(client, "roads")

    listed = await client.get(f"{API}/cases", headers=roads)
    assert [c["code"] for c in listed.json()["items"]] == [ours]
    assert (await client.get(f"{API}/cases/{ours}", headers=roads)).status_code == 200
    for code in (theirs, nobody):
        res = await client.get(f"{API}/cases/{code}", headers=roads)
        assert res.status_code == 404
        res = await client.post(f"{API}/cases/{code}/status", headers=roads,
                                json={"status": "in_progress"})
        assert res.status_code == 404
        res = await client.post(f"{API}/cases/{code}/notes", headers=roads,
                                json={"internal_note": "not ours"})
        assert res.status_code == 404
    # Asking for another department's list gives nothing of theirs either.
    other = await client.get(f"{API}/cases", headers=roads, params={"department": "shirong"})
    assert other.json()["items"] == []

    taken = await client.post(f"{API}/cases/{ours}/status", headers=roads,
                              json={"status": "in_progress", "public_note": "已安排人员处理"})
    assert taken.status_code == 200 and taken.json()["status"] == "in_progress"
    # Closing, dispatching and merging are the grid centre's.
    for path, body in (("status", {"status": "rejected", "reason": "not ours"}),
                       ("department", {"department_code": "shirong"}),
                       ("merge", {"into": theirs})):
        res = await client.post(f"{API}/cases/{ours}/{path}", headers=roads, json=body)
        assert res.status_code == 403, (path, res.text)
    assert (await Case.get(code=ours)).status == Status.IN_PROGRESS
    assert (await Case.get(code=theirs)).status == Status.DISPATCHED


async def test_the_operator_dispatches_and_the_department_then_sees_the_case(
        client, staff, settings):
    code = await report(settings, 1)
    op, roads = await auth(client, "op"), await auth(client, "roads")
    assert (await client.get(f"{API}/cases/{code}", headers=roads)).status_code == 404
    # A new case gets its department but waits for acceptance.
    early = await client.post(f"{API}/cases/{code}/department", headers=op,
                              json={"department_code": "shizheng"})
    assert early.status_code == 200
    assert early.json()["status"] == "new" and early.json()["department"] == "shizheng"
    # Accepting (立案) stays with the grid centre, even for a case the department can see.
    too_early = await client.post(f"{API}/cases/{code}/status", headers=roads,
                                  json={"status": "accepted"})
    assert too_early.status_code == 403
    assert (await Case.get(code=code)).status == Status.NEW
    await client.post(f"{API}/cases/{code}/status", headers=op, json={"status": "accepted"})
    dispatched = await client.post(f"{API}/cases/{code}/department", headers=op,
                                   json={"department_code": "shizheng"})
    assert dispatched.json()["status"] == "dispatched"
    seen = await client.get(f"{API}/cases/{code}", headers=roads)
    assert seen.status_code == 200 and seen.json()["department"] == "shizheng"
    unknown = await client.post(f"{API}/cases/{code}/department", headers=op,
                                json={"department_code": "nowhere"})
    assert unknown.status_code == 422
    # Taken back, the case is no longer dispatched to anyone: it waits for the centre again.
    back = await client.post(f"{API}/cases/{code}/department", headers=op,
                             json={"department_code": None})
    assert back.status_code == 200
    assert (back.json()["status"], back.json()["department"]) == ("accepted", None)
    assert (await client.get(f"{API}/cases/{code}", headers=roads)).status_code == 404


# --- lifecycle ----------------------------------------------------------------------------------

async def test_the_lifecycle_from_new_to_closed_records_who_did_what(client, staff, settings):
    code = await report(settings, 1)
    op, roads = await auth(client, "op"), await auth(client, "roads")

    refused = await client.post(f"{API}/cases/{code}/status", headers=op,
                                json={"status": "closed"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == "A case that is received cannot become closed."

    steps = [(op, {"status": "accepted", "internal_note": "核实属实"}),
             (op, None),
             (roads, {"status": "in_progress", "public_note": "已安排人员清运"}),
             (roads, {"status": "resolved", "public_note": "已清运完毕"}),
             (op, {"status": "closed"})]
    for headers, body in steps:
        if body is None:
            res = await client.post(f"{API}/cases/{code}/department", headers=headers,
                                    json={"department_code": "shizheng"})
        else:
            res = await client.post(f"{API}/cases/{code}/status", headers=headers, json=body)
        assert res.status_code == 200, res.text
    detail = (await client.get(f"{API}/cases/{code}", headers=op)).json()
    assert detail["status"] == "closed" and detail["closed_at"]
    changes = [(e["status_from"], e["status_to"], e["actor"])
               for e in detail["events"] if e["kind"] == "status"]
    assert changes == [
        ("new", "accepted", "op"), ("accepted", "dispatched", "op"),
        ("dispatched", "in_progress", "roads"), ("in_progress", "resolved", "roads"),
        ("resolved", "closed", "op")]
    assert any(e["kind"] == "department" and e["actor"] == "op" for e in detail["events"])
    again = await client.post(f"{API}/cases/{code}/status", headers=op,
                              json={"status": "in_progress"})
    assert again.status_code == 409


@pytest.mark.parametrize("start, to, allowed", [
    (Status.NEW, Status.ACCEPTED, True),
    (Status.NEW, Status.DISPATCHED, False),
    (Status.NEW, Status.RESOLVED, False),
    (Status.ACCEPTED, Status.NEW, False),
    (Status.DISPATCHED, Status.ACCEPTED, True),
    (Status.RESOLVED, Status.IN_PROGRESS, True),
    (Status.CLOSED, Status.IN_PROGRESS, False),
    (Status.REJECTED, Status.ACCEPTED, False),
    (Status.IN_PROGRESS, Status.MERGED, False),
])
async def test_transitions_allowed_and_refused(client, staff, settings, start, to, allowed):
    code = await report(settings, 1)
    await Case.filter(code=code).update(status=start)
    op = await auth(client, "op")
    res = await client.post(f"{API}/cases/{code}/status", headers=op, json={"status": to.value})
    assert res.status_code == (200 if allowed else 409), res.text
    assert (await Case.get(code=code)).status == (to if allowed else start)


async def test_not_accepting_a_case_needs_a_reason(client, staff, settings):
    code = await report(settings, 1)
    op = await auth(client, "op")
    bare = await client.post(f"{API}/cases/{code}/status", headers=op,
                             json={"status": "rejected"})
    assert bare.status_code == 409 and "reason" in bare.json()["detail"]
    ok = await client.post(f"{API}/cases/{code}/status", headers=op,
                           json={"status": "rejected", "reason": "不属于受理范围"})
    assert ok.status_code == 200 and ok.json()["rejected_reason"] == "不属于受理范围"


async def test_notes_public_and_internal(client, staff, settings):
    code = await report(settings, 1)
    op = await auth(client, "op")
    # A note with nothing in it is invalid input (422), not a lifecycle conflict (409).
    for body in ({}, {"public_note": "  ", "internal_note": ""}):
        empty = await client.post(f"{API}/cases/{code}/notes", headers=op, json=body)
        assert empty.status_code == 422, empty.text
    assert not await CaseEvent.filter(kind="note").exists()
    res = await client.post(f"{API}/cases/{code}/notes", headers=op,
                            json={"internal_note": "联系物业核实"})
    assert res.status_code == 200
    note = await CaseEvent.get(kind="note")
    assert note.actor == "op" and note.public is False and note.internal_note == "联系物业核实"


@pytest.mark.parametrize("body", [{"status": "volcano"}, {"status": None}, {},
                                  {"status": "accepted", "public_note": "x" * 2001},
                                  {"status": "accepted", "colour": "red"}])
async def test_bad_status_bodies_are_refused(client, staff, settings, body):
    code = await report(settings, 1)
    op = await auth(client, "op")
    res = await client.post(f"{API}/cases/{code}/status", headers=op, json=body)
    assert res.status_code == 422
    assert (await Case.get(code=code)).status == Status.NEW


# --- merge and unmerge --------------------------------------------------------------------------

async def _subscribers(*codes: str) -> set[int]:
    ids = await Case.filter(code__in=codes).values_list("id", flat=True)
    return set(await Subscription.filter(case_id__in=list(ids))
               .values_list("person_id", flat=True))


async def test_merge_and_unmerge_keep_every_report_and_subscriber(client, staff, settings):
    a = await report(settings, 1, reporter="tg:1")
    await report(settings, 1, reporter="tg:2", text="垃圾一直没人清运", at=T0 + timedelta(hours=1))
    b = await report(settings, 5, reporter="tg:3", text="这里的垃圾没人管")
    await report(settings, 5, reporter="tg:2", text="还是一堆垃圾", at=T0 + timedelta(hours=1))
    assert (await Case.get(code=a)).report_count == 2
    reports_before = await Report.all().count()
    people_before = await _subscribers(a, b)
    assert len(people_before) == 3
    op = await auth(client, "op")

    merged = await client.post(f"{API}/cases/{b}/merge", headers=op, json={"into": a})
    assert merged.status_code == 200, merged.text
    detail = merged.json()
    assert detail["code"] == a and detail["report_count"] == 4
    assert detail["reporter_count"] == 3 and detail["subscriber_count"] == 3
    assert detail["merged_from"] == [b]
    source = (await client.get(f"{API}/cases/{b}", headers=op)).json()
    assert source["status"] == "merged" and source["master"] == a and source["reports"] == []
    assert await Report.all().count() == reports_before
    assert await _subscribers(a) == people_before

    third = next(r for r in detail["reports"] if r["identity"] == "tg:3")
    split = await client.post(f"{API}/reports/{third['id']}/unmerge", headers=op)
    assert split.status_code == 200, split.text
    new = split.json()
    assert new["code"] not in (a, b) and new["status"] == "new"
    assert new["report_count"] == 1 and new["subscriber_count"] == 1
    assert [r["id"] for r in new["reports"]] == [third["id"]]
    left = (await client.get(f"{API}/cases/{a}", headers=op)).json()
    assert left["report_count"] == 3 and left["reporter_count"] == 2
    assert await Report.all().count() == reports_before
    assert await _subscribers(a, new["code"]) == people_before
    events = [(e.kind, e.actor) for e in await CaseEvent.filter(kind__in=["merged", "unmerged"])]
    assert sorted(events) == [("merged", "op"), ("merged", "op"), ("unmerged", "op")]


async def test_merges_the_lifecycle_refuses(client, staff, settings):
    a, b, c = [await report(settings, n) for n in (1, 2, 3)]
    await Case.filter(code=c).update(status=Status.CLOSED)
    op = await auth(client, "op")
    into_self = await client.post(f"{API}/cases/{a}/merge", headers=op, json={"into": a})
    assert into_self.status_code == 409
    into_closed = await client.post(f"{API}/cases/{a}/merge", headers=op, json={"into": c})
    assert into_closed.status_code == 409 and c in into_closed.json()["detail"]
    unknown = await client.post(f"{API}/cases/{a}/merge", headers=op,
                                json={"into": "GL-20000101-0001"})
    assert unknown.status_code == 404
    assert (await client.post(f"{API}/cases/{a}/merge", headers=op,
                              json={"into": b})).status_code == 200
    twice = await client.post(f"{API}/cases/{a}/merge", headers=op, json={"into": b})
    assert twice.status_code == 409
    last = (await Report.all().order_by("-id").first()).id
    unknown_report = await client.post(f"{API}/reports/{last + 1000}/unmerge", headers=op)
    assert unknown_report.status_code == 404
    huge = await client.post(f"{API}/reports/{2**70}/unmerge", headers=op)
    assert huge.status_code == 422


async def test_an_unmerge_of_the_only_report_is_refused(client, staff, settings):
    code = await report(settings, 1)
    op = await auth(client, "op")
    rid = (await Report.get()).id
    res = await client.post(f"{API}/reports/{rid}/unmerge", headers=op)
    assert res.status_code == 409
    assert (await Case.get(code=code)).report_count == 1


# --- list and detail ---------------------------------------------------------------------------

async def test_the_list_pages_newest_first_without_gaps_or_repeats(client, staff, settings):
    codes = [await report(settings, n) for n in range(7)]
    op = await auth(client, "op")
    seen, before = [], None
    for _ in range(5):
        params = {"limit": 3, **({"before_id": before} if before else {})}
        page = (await client.get(f"{API}/cases", headers=op, params=params)).json()
        seen += [c["code"] for c in page["items"]]
        before = page["next_before_id"]
        if before is None:
            break
    assert seen == list(reversed(codes))


async def test_the_list_filters(client, staff, settings):
    light = await report(settings, 1, category="street_light", text="路灯不亮")
    garbage = await report(settings, 2)
    late = await report(settings, 3, at=T0 + timedelta(days=3))
    await Case.filter(code=garbage).update(status=Status.ACCEPTED)
    await Case.filter(code=late).update(possible_duplicate_of_id=(await Case.get(code=light)).id)
    await assign(light, "shizheng", Status.DISPATCHED)
    op = await auth(client, "op")

    async def codes(**params) -> list[str]:
        res = await client.get(f"{API}/cases", headers=op, params=params)
        assert res.status_code == 200, res.text
        return [c["code"] for c in res.json()["items"]]

    assert await codes(status="accepted") == [garbage]
    assert await codes(status=["accepted", "dispatched"]) == [garbage, light]
    assert await codes(category="street_light") == [light]
    assert await codes(department="shizheng") == [light]
    assert await codes(possible_duplicate="true") == [late]
    await Case.filter(code=garbage).update(review_requested_at=T0 + timedelta(days=4))
    assert await codes(needs_review="true") == [garbage]
    assert await codes(needs_review="false") == [late, light]
    assert await codes(q=garbage.lower()) == [garbage]
    assert await codes(created_from="2026-11-21") == [late]
    assert await codes(created_to="2026-11-20") == [garbage, light]
    assert await codes(created_from="2026-11-23T09:00:00+08:00",
                       created_to="2026-11-23T11:00:00+08:00") == [late]
    bad = await client.get(f"{API}/cases", headers=op, params={"status": "volcano"})
    assert bad.status_code == 422
    nowhere = await client.get(f"{API}/cases", headers=op, params={"department": "nowhere"})
    assert nowhere.status_code == 422
    listed = (await client.get(f"{API}/cases", headers=op, params={"q": late})).json()
    assert listed["items"][0]["possible_duplicate_of"] == light


async def test_the_detail_shows_reports_with_contacts_events_and_the_flagged_candidate(
        client, staff, settings):
    first = await report(settings, 1)
    second = await report(settings, 2)
    await Case.filter(code=second).update(
        possible_duplicate_of_id=(await Case.get(code=first)).id)
    _, key = await create_api_key("12345 system", "hotline", "12345")
    hotline = await client.post("/api/v1/hotline/tickets", headers={"X-Api-Key": key}, json={
        "tickets": [{"line": "12345", "ticket_no": "H1",
                     "received_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                     "category": "noise", "address": "徐汇区漕溪北路200号",
                     "description": "夜里施工噪声很大", "caller_phone": "13912345678"}]})
    phoned = hotline.json()["results"][0]["case_code"]
    assert "13912345678" not in hotline.text
    op = await auth(client, "op")

    detail = (await client.get(f"{API}/cases/{phoned}", headers=op)).json()
    [rep] = detail["reports"]
    assert rep["channel"] == "hotline" and rep["contact"]["phone"] == "13912345678"
    assert rep["extra"]["ticket_no"] == "H1"
    assert detail["events"][0]["kind"] == "created"

    flagged = (await client.get(f"{API}/cases/{second}", headers=op)).json()
    assert flagged["possible_duplicate"]["code"] == first
    assert (await client.get(f"{API}/cases/{first}", headers=op)).json()["flagged_by"] == [second]
    assert (await client.get(f"{API}/cases/GL-20000101-0001", headers=op)).status_code == 404


async def test_odd_characters_are_refused_not_crashed_on(client, staff, settings):
    code = await report(settings, 1)
    op = await auth(client, "op")
    assert (await client.get(f"{API}/cases/GL%00", headers=op)).status_code == 404
    assert (await client.get(f"{API}/cases", headers=op,
                             params={"q": "GL\x00", "category": "x\x00"})).status_code == 422
    note = await client.post(f"{API}/cases/{code}/notes", headers=op,
                             json={"internal_note": "a\x00b"})
    assert note.status_code == 422
    merge = await client.post(f"{API}/cases/{code}/merge", headers=op, json={"into": "GL-\u00e9"})
    assert merge.status_code == 404
    too_long = "9" * 30  # longer than any code the database column holds
    for path in (f"cases/{too_long}", f"cases/{too_long}/department"):
        res = await client.post(f"{API}/{path}", headers=op, json={"department_code": None}) \
            if path.endswith("department") else await client.get(f"{API}/{path}", headers=op)
        assert res.status_code == 404
    assert (await client.post(f"{API}/cases/{code}/merge", headers=op,
                              json={"into": too_long})).status_code == 404
    assert (await client.post(f"{API}/login", json={"username": "op\x00",
                                                    "password": PASSWORD})).status_code == 422
    gone = await client.post(f"{API}/users/op%00/deactivate", headers=await auth(client, "boss"))
    assert gone.status_code == 404


async def test_dates_at_the_ends_of_the_calendar_filter_instead_of_crashing(
        client, staff, settings):
    code = await report(settings, 1)
    op = await auth(client, "op")

    async def listed(**params) -> list[str]:
        res = await client.get(f"{API}/cases", headers=op, params=params)
        assert res.status_code == 200, res.text
        return [c["code"] for c in res.json()["items"]]

    assert await listed(created_to="9999-12-31") == [code]
    assert await listed(created_from="0001-01-01T00:00:00+01:00") == [code]
    assert await listed(created_from="9999-12-31T23:59:59-12:00") == []
    assert await listed(created_to="0001-01-01") == []


async def test_two_simultaneous_creations_of_one_username_leave_one_account(clean_db):
    import asyncio

    from portal.staff.models import StaffUser
    from portal.staff.service import UsernameTaken, create_user

    results = await asyncio.gather(
        *(create_user("twin.operator", "a-long-password", "operator") for _ in range(2)),
        return_exceptions=True)
    assert sum(isinstance(r, UsernameTaken) for r in results) == 1, results
    assert await StaffUser.filter(username="twin.operator").count() == 1


# --- satisfaction ------------------------------------------------------------------------------

async def rated(settings, n: int, score: int, fixed: bool | None = None, *,
                department: str | None = None, now=None, **kw) -> str:
    """A resolved case rated by its reporter; returns its code."""
    from feedback.service import record_rating

    code = await report(settings, n, **kw)
    dept = await Department.get(code=department) if department else None
    await Case.filter(code=code).update(status=Status.RESOLVED,
                                        department_id=dept.id if dept else None)
    r = await Report.get(case__code=code)
    await record_rating(r.case_id, r.person_id, score, fixed, None, "web", now=now)
    return code


async def test_satisfaction_per_grouping_and_period(client, staff, settings):
    shanghai_day = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 21 Nov, 00:30 in Shanghai
    first = await rated(settings, 1, 5, department="shirong", now=shanghai_day)
    second = await rated(settings, 2, 1, False, department="shirong", category="street_light",
                         text="路灯不亮", now=shanghai_day + timedelta(days=3))
    third = await rated(settings, 3, 4, department="shizheng", category="road_damage",
                        text="路面坑洼", now=shanghai_day + timedelta(days=5))
    headers = await auth(client, "op")
    url = f"{API}/metrics/satisfaction"

    res = await client.get(url, headers=headers)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["group"] == "category" and body["from"] is None
    assert body["total"] == {"key": None, "ratings": 3, "mean": 3.33, "satisfied": 2,
                             "share_satisfied": 0.6667, "not_fixed": 1}
    assert {i["key"]: i["ratings"] for i in body["items"]} == {
        "garbage": 1, "street_light": 1, "road_damage": 1}
    by_dept = (await client.get(url, params={"group": "department"}, headers=headers)).json()
    assert {i["key"]: (i["ratings"], i["mean"]) for i in by_dept["items"]} == {
        "shirong": (2, 3.0), "shizheng": (1, 4.0)}
    by_case = (await client.get(url, params={"group": "case"}, headers=headers)).json()
    assert [i["key"] for i in by_case["items"]] == [second, third, first]

    # Shanghai days, both included: 21 Nov (the first rating, 00:30 there) to 24 Nov.
    period = (await client.get(url, params={"from": "2026-11-21", "to": "2026-11-24"},
                               headers=headers)).json()
    assert period["total"]["ratings"] == 2 and period["from"] == "2026-11-21"
    assert (await client.get(url, params={"to": "2026-11-20"}, headers=headers)
            ).json()["total"]["ratings"] == 0

    # A department account: its own department's cases.
    clean = await auth(client, "clean")
    own = (await client.get(url, params={"group": "case"}, headers=clean)).json()
    assert [i["key"] for i in own["items"]] == [second, first]


async def test_satisfaction_refuses_what_it_cannot_answer(client, staff):
    url = f"{API}/metrics/satisfaction"
    assert (await client.get(url)).status_code == 401
    headers = await auth(client, "op")
    for params in ({"group": "street"}, {"from": "2026-02-30"}, {"to": "yesterday"}):
        res = await client.get(url, params=params, headers=headers)
        assert res.status_code == 422, (params, res.text)
    # Organisations are a grouping (orgs' cases): none worked on one here.
    by_org = await client.get(url, params={"group": "organisation"}, headers=headers)
    assert by_org.status_code == 200 and by_org.json()["items"] == []
    res = await client.get(url, params={"from": "2026-11-30", "to": "2026-11-01"},
                           headers=headers)
    assert res.status_code == 422
    assert res.json()["detail"] == "The first day of the period is after its last day."
    edge = await client.get(url, params={"from": "0001-01-01", "to": "9999-12-31"},
                            headers=headers)
    assert edge.status_code == 200 and edge.json()["total"]["ratings"] == 0
