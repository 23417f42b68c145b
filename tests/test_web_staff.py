"""The staff console (/staff) over HTTP: signing in and out, the lockout, CSRF on every form,
who sees which case, every action on a case, the queue's filters and pages, accounts, and
hostile input answered with a 4xx."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image

from portal.cases.models import Case, CaseEvent, Department, Photo, Report, Status
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.staff.models import ApiKey, Role, StaffSession, StaffUser
from portal.staff.service import create_api_key
from tests.orgs_setup import Browser
from tests.staff import PASSWORD, create_staff

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
async def staff(clean_db) -> None:
    await create_staff()


@pytest.fixture
async def browser(app):
    """A factory of browsers (each a separate cookie jar) on the app."""
    clients = []

    async def make(username: str | None = None, lang: str = "en") -> Browser:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://testserver", cookies={"gl_lang": lang})
        clients.append(client)
        b = Browser(client)
        if username:
            res = await b.sign_in(username)
            assert res.status_code == 303, res.text
        return b

    yield make
    for c in clients:
        await c.aclose()


async def report(settings, n: int, *, category: str = "garbage", lat: float | None = None,
                 text: str = "门口垃圾堆积没人清运", at=T0, **kw) -> str:
    receipt = await submit(Submission(
        reporter=f"tg:{n}", channel="telegram", text=f"{text}（{n}号楼）", category=category,
        lat=lat if lat is not None else 31.10 + n * 0.01, lng=121.40, received_at=at, **kw),
        throttle=None, settings=settings)
    return receipt.case_code


async def assign(code: str, department: str, status: Status = Status.DISPATCHED) -> None:
    dept = await Department.get(code=department)
    await Case.filter(code=code).update(department_id=dept.id, status=status)


def flash(res: httpx.Response) -> str:
    found = re.search(r'<div class="notice (?:ok|bad)"[^>]*>(.*?)</div>', res.text, re.S)
    return found.group(1).strip() if found else ""


def jpeg(size=(80, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 60)).save(out, "JPEG")
    return out.getvalue()


# --- signing in and out -----------------------------------------------------------------------

async def test_sign_in_opens_the_queue_and_sign_out_ends_the_session(browser, staff, settings):
    code = await report(settings, 1)
    b = await browser()
    first = await b.get("/staff")
    assert first.status_code == 303 and first.headers["location"].startswith("/staff/login")
    login = await b.get(first.headers["location"])
    assert login.status_code == 200 and 'name="password"' in login.text
    res = await b.sign_in("op")
    assert res.status_code == 303 and res.headers["location"] == "/staff"
    cookie = res.headers["set-cookie"]
    assert "gl_staff=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie
    queue = await b.get("/staff")
    assert queue.status_code == 200 and code in queue.text
    out = await b.post("/staff/logout")
    assert out.status_code == 303 and out.headers["location"] == "/staff/login"
    assert await StaffSession.all().count() == 0
    assert (await b.get("/staff")).status_code == 303


async def test_the_session_cookie_is_secure_when_the_site_is_served_over_https(
        app, browser, staff):
    app.state.settings.secure_cookies = True
    res = await (await browser()).sign_in("op")
    assert "Secure" in res.headers["set-cookie"]


async def test_sign_in_returns_to_the_page_asked_for_but_never_off_the_console(browser, staff):
    b = await browser()
    await b.get("/staff/login")
    res = await b.post("/staff/login", {"username": "op", "password": PASSWORD,
                                        "next": "/staff/cases/GL-1"})
    assert res.headers["location"] == "/staff/cases/GL-1"
    for target in ("https://evil.example/", "//evil.example", "/lang/en", "/staff\\x"):
        b = await browser()
        await b.get("/staff/login")
        res = await b.post("/staff/login", {"username": "op", "password": PASSWORD,
                                            "next": target})
        assert res.headers["location"] == "/staff", target


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(browser, staff):
    b = await browser()
    wrong = await b.sign_in("op", "not the password")
    nobody = await b.sign_in("nobody-here", "not the password")
    assert wrong.status_code == nobody.status_code == 401
    without_time = re.compile(r"\d\d:\d\d")
    assert without_time.sub("", flash_or_error(wrong)) == without_time.sub(
        "", flash_or_error(nobody))
    assert "not correct" in flash_or_error(wrong)


def flash_or_error(res: httpx.Response) -> str:
    return re.search(r'id="login-error">(.*?)</p>', res.text, re.S).group(1)


async def test_repeated_failures_pause_sign_in_and_say_when_to_try_again(browser, staff,
                                                                      settings):
    b = await browser()
    for _ in range(settings.login_max_failures):
        assert (await b.sign_in("op", "a guess")).status_code == 401
    paused = await b.sign_in("op")
    assert paused.status_code == 401
    user = await StaffUser.get(username="op")
    assert user.locked_until is not None
    until = user.locked_until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    message = flash_or_error(paused)
    shown = re.search(r"try again after (\d\d:\d\d)", message).group(1)
    # The time shown is never before the pause ends.
    assert shown >= until or (until > "23:00" and shown < "01:00"), (shown, until)
    await StaffUser.filter(username="op").update(
        locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert (await b.sign_in("op")).status_code == 303


async def test_an_expired_session_or_a_deactivated_account_goes_back_to_sign_in(browser, staff):
    b = await browser("op")
    assert (await b.get("/staff")).status_code == 200
    await StaffSession.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    res = await b.get("/staff/cases/GL-20261120-0001?x=1")
    assert res.status_code == 303
    assert res.headers["location"] == "/staff/login?next=%2Fstaff%2Fcases%2FGL-20261120-0001%3Fx%3D1"
    b = await browser("roads")
    await StaffUser.filter(username="roads").update(active=False)
    assert (await b.get("/staff")).status_code == 303
    assert (await b.sign_in("roads")).status_code == 401


async def test_pages_are_in_chinese_by_default(browser, staff):
    b = await browser(lang="zh-CN")
    page = await b.get("/staff/login")
    assert "登录" in page.text and 'lang="zh-CN"' in page.text


# --- CSRF ---------------------------------------------------------------------------------------

async def test_every_form_refuses_a_post_without_its_token_and_changes_nothing(
        browser, staff, settings):
    code = await report(settings, 1)
    other = await report(settings, 2)
    await report(settings, 3, lat=31.11, text="门口垃圾堆积没人清运了好几天")
    two = await Case.filter(report_count__gte=2).first()
    rid = (await Report.filter(case_id=two.id).order_by("-id").first()).id if two else 1
    key, _ = await create_api_key("an app", "open311")
    boss = await browser("boss")
    await boss.get("/staff")
    before = (await CaseEvent.all().count(), await Case.all().count(),
              await StaffUser.all().count(), await Photo.all().count(),
              await ApiKey.filter(active=True).count())
    forms = [
        (f"/staff/cases/{code}/status", {"status": "accepted"}),
        (f"/staff/cases/{code}/status", {"status": "rejected", "reason": "不属于"}),
        (f"/staff/cases/{code}/notes", {"public_note": "x"}),
        (f"/staff/cases/{code}/department", {"department_code": "shizheng"}),
        (f"/staff/cases/{code}/merge", {"into": other}),
        (f"/staff/cases/{two.code if two else code}/reports/{rid}/unmerge", {}),
        ("/staff/users", {"username": "newbie", "password": "long enough 1",
                          "role": "operator"}),
        ("/staff/users/op/deactivate", {}),
        ("/staff/apikeys", {"name": "sneaky app", "kind": "open311"}),
        (f"/staff/apikeys/{key.id}/deactivate", {}),
    ]
    for url, data in forms:
        for token in (None, "forged", boss.token[:-2] + "00"):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            res = await boss.post(url, body, csrf=False)
            assert res.status_code == 403, (url, token, res.status_code)
            assert "did not come from this site" in res.text
    photo = await boss.client.post(f"/staff/cases/{code}/photos", data={},
                                   files={"photo": ("fix.jpg", jpeg(), "image/jpeg")})
    assert photo.status_code == 403
    after = (await CaseEvent.all().count(), await Case.all().count(),
             await StaffUser.all().count(), await Photo.all().count(),
             await ApiKey.filter(active=True).count())
    assert after == before
    assert (await StaffUser.get(username="op")).active
    # Signing out without the token does not sign out; signing in without it does not sign in.
    assert (await boss.post("/staff/logout", csrf=False)).status_code == 403
    assert (await boss.get("/staff")).status_code == 200
    fresh = await browser()
    res = await fresh.post("/staff/login", {"username": "op", "password": PASSWORD},
                           csrf=False)
    assert res.status_code == 403 and "gl_staff" not in res.headers.get("set-cookie", "")


async def test_a_token_from_another_browser_is_refused(browser, staff, settings):
    code = await report(settings, 1)
    mallory = await browser("clean")
    await mallory.get("/staff")
    victim = await browser("op")
    await victim.get("/staff")
    res = await victim.post(f"/staff/cases/{code}/status",
                            {"status": "accepted", "csrf_token": mallory.token}, csrf=False)
    assert res.status_code == 403
    assert (await Case.get(code=code)).status == Status.NEW


# --- roles ---------------------------------------------------------------------------------------

async def test_a_department_sees_and_handles_only_its_own_cases(browser, staff, settings):
    mine = await report(settings, 1, category="road_damage")
    theirs = await report(settings, 2)
    unassigned = await report(settings, 3)
    await assign(mine, "shizheng")
    await assign(theirs, "shirong")
    roads = await browser("roads")
    queue = await roads.get("/staff")
    assert mine in queue.text and theirs not in queue.text and unassigned not in queue.text
    assert 'name="department"' not in queue.text
    for code in (theirs, unassigned, "GL-NOPE"):
        res = await roads.get(f"/staff/cases/{code}")
        assert res.status_code == 404
        assert res.text.count(code) <= 1  # the address bar's echo at most, no case details
        post = await roads.post(f"/staff/cases/{code}/notes", {"public_note": "hi"})
        assert post.status_code == 404
    assert await CaseEvent.filter(kind="note").count() == 0
    own = await roads.get(f"/staff/cases/{mine}")
    assert own.status_code == 200
    # Only the steps casework allows a department: no dispatching, merging, refusing.
    assert f"/staff/cases/{mine}/department" not in own.text
    assert f"/staff/cases/{mine}/merge" not in own.text
    assert 'value="rejected"' not in own.text
    for url, data in ((f"/staff/cases/{mine}/department", {"department_code": "shirong"}),
                      (f"/staff/cases/{mine}/merge", {"into": theirs}),
                      (f"/staff/cases/{mine}/status", {"status": "rejected", "reason": "x"})):
        res = await roads.post(url, data)
        assert res.status_code == 303
        assert "Only the grid centre" in flash(await roads.get(res.headers["location"]))
    case = await Case.get(code=mine).prefetch_related("department")
    assert case.status == Status.DISPATCHED and case.department.code == "shizheng"
    res = await roads.post(f"/staff/cases/{mine}/status",
                           {"status": "in_progress", "internal_note": "到现场"})
    assert (await Case.get(code=mine)).status == Status.IN_PROGRESS
    assert "status was changed" in flash(await roads.get(res.headers["location"]))


async def test_only_an_admin_sees_and_manages_accounts(browser, staff):
    for name in ("op", "roads"):
        b = await browser(name)
        assert "/staff/users" not in (await b.get("/staff")).text
        assert (await b.get("/staff/users")).status_code == 403
        res = await b.post("/staff/users", {"username": "sneaky", "password": "long enough 1",
                                            "role": "admin"})
        assert res.status_code == 403
        assert (await b.post("/staff/users/boss/deactivate")).status_code == 403
        assert "/staff/apikeys" not in (await b.get("/staff")).text
        assert (await b.get("/staff/apikeys")).status_code == 403
        res = await b.post("/staff/apikeys", {"name": "sneaky app", "kind": "open311"})
        assert res.status_code == 403
    assert not await StaffUser.filter(username="sneaky").exists()
    assert not await ApiKey.exists()
    assert (await StaffUser.get(username="boss")).active


async def test_an_admin_creates_and_deactivates_accounts(browser, staff):
    boss = await browser("boss")
    page = await boss.get("/staff/users")
    assert page.status_code == 200 and "roads" in page.text
    res = await boss.post("/staff/users", {"username": "li.roads", "password": "long enough 1",
                                           "role": "department", "department": "shizheng"})
    assert "was created" in flash(await boss.get(res.headers["location"]))
    created = await StaffUser.get(username="li.roads").prefetch_related("department")
    assert created.role == Role.DEPARTMENT and created.department.code == "shizheng"
    li = await browser()
    assert (await li.sign_in("li.roads", "long enough 1")).status_code == 303
    for data, message in (
            ({"username": "li.roads", "password": "long enough 1", "role": "operator"},
             "is taken"),
            ({"username": "x y", "password": "long enough 1", "role": "operator"},
             "A username has"),
            ({"username": "short.pw", "password": "short", "role": "operator"},
             "at least 10 characters"),
            ({"username": "nodept", "password": "long enough 1", "role": "department"},
             "needs a department")):
        res = await boss.post("/staff/users", data)
        assert res.status_code == 303
        assert message in flash(await boss.get("/staff/users")), data
    res = await boss.post("/staff/users/li.roads/deactivate")
    assert "was deactivated" in flash(await boss.get(res.headers["location"]))
    assert (await li.get("/staff")).status_code == 303
    res = await boss.post("/staff/users/boss/deactivate")
    assert "your own account" in flash(await boss.get(res.headers["location"]))
    assert (await boss.post("/staff/users/nobody/deactivate")).status_code == 404
    assert (await boss.post("/staff/users", {"username": "a", "password": "b",
                                             "role": "king"})).status_code == 422


async def test_an_admin_issues_an_api_key_shown_on_that_page_only_and_deactivates_it(
        browser, staff):
    boss = await browser("boss")
    res = await boss.post("/staff/apikeys", {"name": "12345 市民热线", "kind": "hotline",
                                             "line": "12345"})
    assert res.status_code == 303 and res.headers["location"] == "/staff/apikeys"
    # Posting the form again (a reload) would make another key; the answer is a redirect.
    page = await boss.get(res.headers["location"])
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    [key] = await ApiKey.all()
    shown = re.search(r'value="([^"]+)" readonly', page.text)
    assert shown and key.key_hash == hashlib.sha256(shown.group(1).encode()).hexdigest()
    assert (key.kind, key.line, key.name) == ("hotline", "12345", "12345 市民热线")
    # Shown once: the next look at the page lists the key without it.
    listed = await boss.get("/staff/apikeys")
    assert "12345 市民热线" in listed.text and shown.group(1) not in listed.text
    assert 'readonly' not in listed.text
    for data, message in (
            ({"name": "x", "kind": "hotline", "line": "110"}, "line 12345, 12319 or 962121"),
            ({"name": "x", "kind": "wechat"}, "open311 or hotline"),
            ({"name": "  ", "kind": "open311"}, "1 to 100 characters"),
            ({"name": "x" * 101, "kind": "open311"}, "1 to 100 characters")):
        res = await boss.post("/staff/apikeys", data)
        assert res.status_code == 303
        assert message in flash(await boss.get("/staff/apikeys")), data
    # A name is one line however it was typed (it goes into the log).
    await boss.post("/staff/apikeys", {"name": "街道\n随手拍\tapp", "kind": "open311"})
    assert await ApiKey.filter(name="街道 随手拍 app").exists()

    res = await boss.post(f"/staff/apikeys/{key.id}/deactivate")
    assert "is deactivated" in flash(await boss.get(res.headers["location"]))
    assert not (await ApiKey.get(id=key.id)).active
    for missing in ("999", "0", "x", "9" * 5000, "１"):
        assert (await boss.post(f"/staff/apikeys/{missing}/deactivate")).status_code == 404


# --- actions ---------------------------------------------------------------------------------------

async def test_a_case_from_new_to_closed_with_notes_and_a_photo_of_the_repair(
        browser, staff, settings):
    code = await report(settings, 1, email="resident@example.org")
    op = await browser("op")
    page = await op.get(f"/staff/cases/{code}")
    assert page.status_code == 200
    assert "resident@example.org" in page.text  # staff see the contact
    assert "telegram" in page.text.lower() or "Telegram" in page.text
    res = await op.post(f"/staff/cases/{code}/status", {"status": "rejected", "reason": ""})
    assert "reason" in flash(await op.get(res.headers["location"]))
    assert (await Case.get(code=code)).status == Status.NEW
    await op.post(f"/staff/cases/{code}/status",
                  {"status": "accepted", "internal_note": "现场核实属实"})
    res = await op.post(f"/staff/cases/{code}/department", {"department_code": "shizheng"})
    assert "department was set" in flash(await op.get(res.headers["location"]))
    case = await Case.get(code=code).prefetch_related("department")
    assert case.status == Status.DISPATCHED and case.department.code == "shizheng"
    roads = await browser("roads")
    await roads.get(f"/staff/cases/{code}")
    res = await roads.client.post(
        f"/staff/cases/{code}/photos", data={"csrf_token": roads.token,
                                             "public_note": "已修复"},
        files={"photo": ("fix.jpg", jpeg(), "image/jpeg")})
    assert res.status_code == 303
    photo = await Photo.get(case__code=code)
    assert photo.kind == "fix" and photo.report_id is None
    event = await CaseEvent.get(kind="photo")
    assert event.public and event.actor == "roads" and event.data["photo"] == photo.id
    assert event.public_note == "已修复"
    served = await roads.client.get(f"/staff/photos/{photo.id}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    await roads.post(f"/staff/cases/{code}/status",
                     {"status": "resolved", "public_note": "路面已清理干净"})
    await op.post(f"/staff/cases/{code}/notes", {"internal_note": "电话回访满意"})
    await op.post(f"/staff/cases/{code}/status", {"status": "closed"})
    case = await Case.get(code=code)
    assert case.status == Status.CLOSED and case.closed_at is not None
    events = await CaseEvent.filter(case_id=case.id).order_by("id")
    steps = [(e.kind, e.status_to, e.actor) for e in events if e.kind != "created"]
    assert steps == [("status", "accepted", "op"), ("department", None, "op"),
                     ("status", "dispatched", "op"), ("photo", None, "roads"),
                     ("status", "resolved", "roads"), ("note", None, "op"),
                     ("status", "closed", "op")]
    note = next(e for e in events if e.kind == "note")
    assert not note.public and note.internal_note == "电话回访满意"
    page = await op.get(f"/staff/cases/{code}")
    for text in ("现场核实属实", "路面已清理干净", "电话回访满意", "已修复"):
        assert text in page.text
    # A closed case offers nothing more, and a step the lifecycle refuses is a message.
    assert f"/staff/cases/{code}/status" not in page.text
    res = await op.post(f"/staff/cases/{code}/status", {"status": "in_progress"})
    assert "cannot become" in flash(await op.get(res.headers["location"]))


async def test_a_case_not_accepted_keeps_the_reason(browser, staff, settings):
    code = await report(settings, 1)
    op = await browser("op", lang="zh-CN")
    res = await op.post(f"/staff/cases/{code}/status",
                        {"status": "rejected", "reason": "不属于网格化管理范围"})
    page = await op.get(res.headers["location"])
    assert "不属于网格化管理范围" in page.text
    case = await Case.get(code=code)
    assert case.status == Status.REJECTED and case.rejected_reason == "不属于网格化管理范围"


async def test_merge_by_code_and_unmerge_a_report(browser, staff, settings):
    a = await report(settings, 1)
    b = await report(settings, 2)
    op = await browser("op")
    res = await op.post(f"/staff/cases/{b}/merge", {"into": "GL-19990101-0001"})
    assert "There is no case GL-19990101-0001" in flash(await op.get(res.headers["location"]))
    # When it is the case merged from that is unknown, its page is not found.
    res = await op.post("/staff/cases/GL-19990101-0001/merge", {"into": a})
    assert res.status_code == 404
    res = await op.post(f"/staff/cases/{b}/merge", {"into": b.lower()})
    assert "into itself" in flash(await op.get(res.headers["location"]))
    res = await op.post(f"/staff/cases/{b}/merge", {"into": a.lower()})
    assert res.headers["location"] == f"/staff/cases/{a}"
    page = await op.get(res.headers["location"])
    assert "was merged into this case" in flash(page)
    assert (await Case.get(code=b)).status == Status.MERGED
    target = await Case.get(code=a)
    assert target.report_count == 2
    moved = await Report.filter(case_id=target.id).order_by("-id").first()
    assert f"/reports/{moved.id}/unmerge" in page.text
    merged_page = await op.get(f"/staff/cases/{b}")
    assert f"/staff/cases/{a}" in merged_page.text and "/merge" not in merged_page.text
    res = await op.post(f"/staff/cases/{a}/reports/{moved.id}/unmerge")
    assert "new case" in flash(await op.get(res.headers["location"]))
    moved = await Report.get(id=moved.id).prefetch_related("case")
    assert moved.case.code not in (a, b) and moved.case.status == Status.NEW
    # The only report of a case stays; a report of another case is not this page's.
    only = await Report.get(case_id=target.id)
    res = await op.post(f"/staff/cases/{a}/reports/{only.id}/unmerge")
    assert "only one" in flash(await op.get(res.headers["location"]))
    assert (await op.post(f"/staff/cases/{b}/reports/{only.id}/unmerge")).status_code == 404


async def test_the_possible_duplicate_is_shown_side_by_side(browser, staff, settings):
    first = await report(settings, 1, lat=31.2, text="路灯不亮", category="street_light")
    await Case.filter(code=first).update(status=Status.ACCEPTED)
    second = await report(settings, 2, lat=31.3, text="路灯不亮", category="street_light")
    # As the intake flags a report in its middle band of matching.
    await Case.filter(code=second).update(
        possible_duplicate_of_id=(await Case.get(code=first)).id)
    op = await browser("op")
    queue = await op.get("/staff?duplicates=1")
    assert second in queue.text and f'href="/staff/cases/{first}"' not in queue.text
    page = await op.get(f"/staff/cases/{second}")
    assert 'class="side-by-side"' in page.text and f"/staff/cases/{first}" in page.text
    assert f'name="into" value="{first}"' in page.text


async def test_a_photo_is_served_only_to_staff_who_may_see_its_case(browser, staff, settings):
    code = await report(settings, 1)
    await assign(code, "shirong")
    op = await browser("op")
    await op.get(f"/staff/cases/{code}")
    await op.client.post(f"/staff/cases/{code}/photos", data={"csrf_token": op.token},
                         files={"photo": ("fix.png", jpeg(), "image/png")})
    photo = await Photo.get()
    assert (await op.client.get(f"/staff/photos/{photo.id}")).status_code == 200
    roads = await browser("roads")
    assert (await roads.get(f"/staff/photos/{photo.id}")).status_code == 404
    clean = await browser("clean")
    assert (await clean.client.get(f"/staff/photos/{photo.id}")).status_code == 200
    nobody = await browser()
    res = await nobody.client.get(f"/staff/photos/{photo.id}")
    assert res.status_code == 303


# --- the queue -------------------------------------------------------------------------------------

async def test_the_queue_filters(browser, staff, settings):
    now = datetime.now(UTC)
    garbage = await report(settings, 1, at=now - timedelta(hours=2))
    light = await report(settings, 2, category="street_light", text="路灯不亮",
                         at=now - timedelta(hours=1))
    old_new = await report(settings, 3, category="noise", text="夜里施工很吵",
                           at=now - timedelta(days=2))
    old_working = await report(settings, 4, category="manhole", text="井盖松动",
                               at=now - timedelta(days=10))
    done = await report(settings, 5, category="greenery", text="树倒了",
                        at=now - timedelta(days=20))
    await assign(light, "shizheng")
    await assign(old_working, "shirong", Status.IN_PROGRESS)
    await Case.filter(code=done).update(status=Status.CLOSED)
    op = await browser("op")

    async def listed(query: str) -> set[str]:
        res = await op.get("/staff" + query)
        assert res.status_code == 200, res.text
        return set(re.findall(r'class="case-link" href="/staff/cases/([^"]+)"', res.text))

    assert await listed("") == {garbage, light, old_new, old_working}
    assert await listed("?status=all") == {garbage, light, old_new, old_working, done}
    assert await listed("?status=closed") == {done}
    assert await listed("?category=street_light") == {light}
    assert await listed("?department=shizheng") == {light}
    assert await listed("?overdue=1") == {old_new, old_working}
    assert await listed("?overdue=1&department=shirong") == {old_working}
    assert await listed(f"?q={garbage.lower()}") == {garbage}
    # A case number finds its case whatever the other filters say.
    assert await listed(f"?q={done}&category=noise") == {done}
    assert await listed("?duplicates=1") == set()
    page = await op.get("/staff?overdue=1")
    assert page.text.count("badge late") == 2


async def test_the_queue_pages_forward_and_back(browser, staff, settings):
    codes = [await report(settings, n) for n in range(1, 56)]
    op = await browser("op")
    pattern = re.compile(r'class="case-link" href="/staff/cases/([^"]+)"')
    first = await op.get("/staff")
    page1 = pattern.findall(first.text)
    assert page1 == codes[::-1][:50]
    older = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert 'rel="prev"' not in first.text
    second = await op.get(older)
    assert pattern.findall(second.text) == codes[::-1][50:]
    assert 'rel="next"' not in second.text
    newer = re.search(r'href="([^"]+)" rel="prev"', second.text).group(1).replace("&amp;", "&")
    back = await op.get(newer)
    assert pattern.findall(back.text) == page1
    assert 'rel="prev"' not in back.text


# --- hostile input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/staff/cases/%00", "/staff/cases/" + "A" * 5000, "/staff/cases/GL-%E2%80%AE",
    "/staff/cases/..%2F..%2Fetc", "/staff?before=99999999999999999999", "/staff?after=-1",
    "/staff?before=1e9", "/staff?status=bogus", "/staff?category=%00",
    "/staff?department=%00", "/staff?department=nope", "/staff?q=%00" + "A" * 50,
    "/staff/photos/99999999999999999999", "/staff/photos/-1", "/staff/photos/%00",
    "/staff/photos/1",
])
async def test_hostile_addresses_get_a_4xx(browser, staff, path):
    op = await browser("op")
    res = await op.get(path)
    assert 400 <= res.status_code < 500, (path, res.status_code)


async def test_hostile_forms_get_a_4xx_and_change_nothing(browser, staff, settings):
    code = await report(settings, 1)
    op = await browser("op")
    await op.get("/staff")
    events = await CaseEvent.all().count()
    cases = [
        (f"/staff/cases/{code}/status", {"status": "accepted", "public_note": "a\x00b"}),
        (f"/staff/cases/{code}/status", {"status": "accepted", "internal_note": "x" * 2001}),
        (f"/staff/cases/{code}/status", {}),
        (f"/staff/cases/{code}/status", {"status": "merged"}),
        (f"/staff/cases/{code}/status", {"status": "\x00"}),
        (f"/staff/cases/{code}/notes", {"public_note": "\x00"}),
        (f"/staff/cases/{code}/department", {"department_code": "\x00"}),
        (f"/staff/cases/{code}/department", {"department_code": "nowhere"}),
        (f"/staff/cases/{code}/merge", {"into": "\x00"}),
        (f"/staff/cases/{code}/merge", {"into": "A" * 500}),
        ("/staff/cases/%00/notes", {"public_note": "x"}),
        (f"/staff/cases/{code}/reports/99999999999999999999/unmerge", {}),
        (f"/staff/cases/{code}/reports/abc/unmerge", {}),
        ("/staff/users", {"username": "\x00", "password": "x", "role": "admin"}),
        ("/staff/login", {"username": "op\x00", "password": "x"}),
    ]
    for url, data in cases:
        res = await op.post(url, data)
        assert 300 <= res.status_code < 500, (url, data, res.status_code)
        if res.status_code == 303 and "/login" not in url:
            assert flash(await op.get(res.headers["location"])), (url, data)
    # Not a form at all, and a form far over the bound.
    res = await op.client.post(f"/staff/cases/{code}/notes", content=b'{"a": 1}',
                               headers={"Content-Type": "application/json"})
    assert res.status_code == 415
    res = await op.client.post(f"/staff/cases/{code}/notes",
                               content=b"public_note=" + b"x" * 200_000,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 413
    assert await CaseEvent.all().count() == events
    assert (await Case.get(code=code)).status == Status.NEW


async def test_uploads_that_are_not_photos_or_too_large_are_refused(browser, staff, settings):
    code = await report(settings, 1)
    op = await browser("op")
    await op.get(f"/staff/cases/{code}")

    async def upload(files, data=None):
        return await op.client.post(f"/staff/cases/{code}/photos",
                                    data={"csrf_token": op.token, **(data or {})}, files=files,
                                    headers={"Accept": "text/html"})

    res = await upload({"photo": ("x.jpg", b"not an image at all", "image/jpeg")})
    assert res.status_code == 400 and "not a photo we can read" in res.text
    res = await upload({"photo": ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  "image/svg+xml")})
    assert res.status_code == 400
    res = await upload({"photo": ("", b"", "application/octet-stream")})
    assert res.status_code == 400 and "Choose a photo" in res.text
    big = b"\xff\xd8" + b"\0" * (settings.max_photo_bytes + 10)
    res = await upload({"photo": ("big.jpg", big, "image/jpeg")})
    assert res.status_code == 413
    res = await upload({"photo": ("a.jpg", jpeg(), "image/jpeg"),
                        "other": ("b.jpg", jpeg(), "image/jpeg")})
    assert res.status_code == 400
    res = await upload({"photo": ("a.jpg", jpeg(), "image/jpeg")}, {"public_note": "\x00"})
    assert res.status_code == 422
    assert await Photo.all().count() == 0
    assert await CaseEvent.filter(kind="photo").count() == 0


async def test_the_map_is_there_only_with_map_tiles_and_the_coordinates_always(
        app, browser, staff, settings):
    code = await report(settings, 1, lat=31.2394)
    op = await browser("op")
    page = await op.get(f"/staff/cases/{code}")
    assert 'id="case-map"' not in page.text and "leaflet" not in page.text
    assert "31.239400, 121.400000" in page.text
    app.state.settings.map_tile_url = "https://tiles.example/{z}/{x}/{y}.png"
    page = await op.get(f"/staff/cases/{code}")
    assert 'id="case-map"' in page.text and "/static/vendor/leaflet/leaflet.js" in page.text
    assert "&#34;lat&#34;: 31.2394" in page.text or '"lat": 31.2394' in page.text


# --- satisfaction ------------------------------------------------------------------------------

async def rated(settings, n: int, score: int, fixed: bool | None = None, *, comment=None,
                department: str | None = None, **kw) -> str:
    """A resolved case rated by its reporter; returns its code."""
    from feedback.service import record_rating

    code = await report(settings, n, **kw)
    dept = await Department.get(code=department) if department else None
    await Case.filter(code=code).update(status=Status.RESOLVED,
                                        department_id=dept.id if dept else None)
    r = await Report.get(case__code=code)
    await record_rating(r.case_id, r.person_id, score, fixed, comment, "telegram")
    return code


async def test_a_poor_rating_shows_in_the_queue_and_on_the_case_until_staff_act(
        browser, staff, settings):
    poor = await rated(settings, 1, 2, comment="垃圾还在，只清走了一半")
    fine = await rated(settings, 2, 5, category="street_light", text="路灯不亮")
    op = await browser("op")

    async def listed(query: str) -> set[str]:
        res = await op.get("/staff" + query)
        assert res.status_code == 200, res.text
        return set(re.findall(r'class="case-link" href="/staff/cases/([^"]+)"', res.text))

    assert await listed("?review=1") == {poor}
    assert await listed("") == {poor, fine}
    assert (await op.get("/staff")).text.count("needs review</span>") == 1
    page = await op.get(f"/staff/cases/{poor}")
    assert "needs review" in page.text and "Please look at the case again" in page.text
    assert "Sent back for review after a rating" in page.text and "rating 2/5" in page.text
    # The resident's words, for staff; and the case's satisfaction.
    assert "垃圾还在，只清走了一半" in page.text
    assert "Ratings: 1 · mean 2.0 · satisfied (4–5): 0 · not fixed: 0" in page.text
    page = await op.get(f"/staff/cases/{fine}")
    assert page.status_code == 200 and fine in page.text
    assert "needs review" not in page.text

    res = await op.post(f"/staff/cases/{poor}/notes", {"internal_note": "已安排复查"})
    assert res.status_code == 303
    assert await listed("?review=1") == set()
    page = await op.get(f"/staff/cases/{poor}")
    assert page.status_code == 200 and "已安排复查" in page.text
    assert "needs review" not in page.text


async def test_the_satisfaction_page_per_category_department_and_case(browser, staff, settings):
    await rated(settings, 1, 5, department="shirong")
    await rated(settings, 2, 1, False, department="shirong", category="street_light",
                text="路灯不亮")
    roads = await rated(settings, 3, 4, department="shizheng", category="road_damage",
                        text="路面坑洼")
    op = await browser("op")
    page = await op.get("/staff/metrics")
    assert page.status_code == 200
    text = page.text
    assert "Ratings: 3 · mean 3.3 · satisfied (4–5): 2 · not fixed: 1" in text
    for heading in ("By category", "By department", "By case, lowest mean first"):
        assert heading in text
    assert "street light out" in text and "road damage" in text
    assert "/staff?review=1" in text  # the one "not fixed" waits for a review
    # A department sees its own cases only.
    clean = await browser("clean")
    own = (await clean.get("/staff/metrics")).text
    assert "Ratings: 2 · mean 3.0 · satisfied (4–5): 1 · not fixed: 1" in own
    assert roads not in own and roads in text
    # A period without ratings.
    empty = await op.get("/staff/metrics?from=2020-01-01&to=2020-01-31")
    assert empty.status_code == 200 and "No ratings in this period." in empty.text
    # In Chinese by default, categories by their Chinese names.
    zh = await (await browser("op", lang="zh-CN")).get("/staff/metrics")
    assert zh.status_code == 200 and "路灯故障" in zh.text


@pytest.mark.parametrize("query", [
    "from=2026-13-01", "from=%00", "to=" + "9" * 5000, "from=2026-11-30&to=2026-11-01",
    "from=20261128", "to=yesterday",
])
async def test_a_bad_period_gets_a_400(browser, staff, query):
    op = await browser("op")
    res = await op.get(f"/staff/metrics?{query}")
    assert res.status_code == 400, (query, res.status_code)
