"""The staff console in a real browser: an operator works a case from new to resolved, a
department account cannot open another department's case, a forged form post is refused.
Screenshots of the sign-in, queue, case and accounts pages in Chinese and English, phone-sized
and desktop."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PASSWORD, PHONE, _cli, _pg, new_page

_keys: dict[str, str] = {}


def open311_case(portal, description: str, *, service: str = "garbage", lat: float = 31.2394,
                 lng: float = 121.4842, email: str = "resident@example.org",
                 address: str | None = None) -> str:
    """A case filed as an Open311 client would; its code."""
    key = _keys.get(portal.database_url)
    if key is None:
        key = _keys[portal.database_url] = _cli(
            ["apikey", "browser tests", "--kind", "open311"], portal.database_url,
            portal.workdir).splitlines()[-1]
    res = httpx.post(portal.url("/open311/v2/requests.json"), timeout=10, data={
        "api_key": key, "service_code": service, "description": description, "lat": lat,
        "long": lng, "email": email, **({"address_string": address} if address else {})})
    res.raise_for_status()
    return res.json()[0]["service_request_id"]


def staff_api(portal, username: str = "operator1") -> httpx.Client:
    client = httpx.Client(base_url=portal.url("/api/v1/staff"), timeout=10)
    token = client.post("/login", json={"username": username, "password": PASSWORD}) \
        .raise_for_status().json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def sign_in(page, portal, username: str, *, lang: str = "zh-CN") -> None:
    page.goto(portal.url("/staff"))
    expect(page).to_have_url(re.compile(r"/staff/login"))
    label = {"zh-CN": ("用户名", "密码", "登录"), "en": ("Username", "Password", "Sign in")}[lang]
    page.get_by_label(label[0]).fill(username)
    page.get_by_label(label[1], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=label[2], exact=True).click()
    expect(page).to_have_url(portal.url("/staff"))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_staff_sign_in_dispatch_a_case_and_mark_it_resolved_with_a_note(
        portal, browser, screenshot, viewport):
    code = open311_case(portal, f"南京东路100号门口垃圾堆了三天（{viewport['width']}）",
                        lat=31.2394 + viewport["width"] * 1e-5, address="黄浦区南京东路100号")
    page = new_page(browser, viewport=viewport)
    try:
        sign_in(page, portal, "operator1")
        page.get_by_role("link", name=code).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(code)
        expect(page.locator(".console-head .badge").first).to_have_text("待受理")
        expect(page.get_by_role("link", name="resident@example.org")).to_be_visible()

        page.get_by_role("button", name="立案").click()
        expect(page.locator(".notice.ok")).to_have_text("状态已变更。")
        expect(page.locator(".console-head .badge").first).to_have_text("已立案")

        page.get_by_label("职能部门", exact=True).select_option("shirong")
        page.get_by_role("button", name="派遣", exact=True).click()
        expect(page.locator(".notice.ok")).to_have_text("已指定职能部门。")
        expect(page.locator(".console-head .badge").first).to_have_text("已派遣")

        page.get_by_label("新状态").select_option("resolved")
        page.locator("#status-public").fill("垃圾已清运，现场已清扫干净。")
        page.locator("#status-internal").fill("市容环卫所张师傅处理")
        page.get_by_role("button", name="变更状态").click()
        expect(page.locator(".notice.ok")).to_have_text("状态已变更。")
        expect(page.locator(".console-head .badge").first).to_have_text("已处置（待评价）")
        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("垃圾已清运，现场已清扫干净。")
        expect(timeline).to_contain_text("市容环卫所张师傅处理")
        expect(timeline).to_contain_text("operator1")
        name = "desktop" if viewport is DESKTOP else "phone"
        screenshot(page, f"staff-case-resolved-zh-{name}")
    finally:
        page.context.close()
    detail = staff_api(portal).get(f"/cases/{code}").json()
    assert detail["status"] == "resolved" and detail["department"] == "shirong"
    assert [e["status_to"] for e in detail["events"] if e["kind"] == "status"] == [
        "accepted", "dispatched", "resolved"]


def test_a_department_cannot_open_another_departments_case_and_a_forged_post_is_refused(
        portal, browser):
    theirs = open311_case(portal, "九江路200号门口垃圾桶满了没人倒", lat=31.2377, lng=121.4815)
    mine = open311_case(portal, "河南中路福州路路口路面有个大坑", service="road_damage",
                        lat=31.2361, lng=121.4836)
    api = staff_api(portal)
    for code, dept in ((theirs, "shirong"), (mine, "shizheng")):
        api.post(f"/cases/{code}/status", json={"status": "accepted"}).raise_for_status()
        api.post(f"/cases/{code}/department", json={"department_code": dept}) \
            .raise_for_status()

    page = new_page(browser, viewport=DESKTOP)
    try:
        sign_in(page, portal, "roads1")
        queue = page.locator("table.queue")
        expect(queue).to_contain_text(mine)
        expect(queue).not_to_contain_text(theirs)
        response = page.goto(portal.url(f"/staff/cases/{theirs}"))
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
        expect(page.locator("main")).not_to_contain_text("九江路")

        # Its own case: the department works it, but without the grid centre's steps.
        page.goto(portal.url(f"/staff/cases/{mine}"))
        expect(page.get_by_role("button", name="派遣", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="合并", exact=True)).to_have_count(0)

        # A post with the session cookie but without the form's token: refused, nothing changes.
        events = len(api.get(f"/cases/{mine}").json()["events"])
        forged = page.request.post(portal.url(f"/staff/cases/{mine}/status"),
                                   form={"status": "resolved", "public_note": "forged"},
                                   headers={"Accept": "text/html"})
        assert forged.status == 403
        assert "并非来自本网站" in forged.text()
        # A form put on a page of another site, sent by the signed-in browser.
        page.route("http://evil.test/**", lambda route: route.fulfill(
            content_type="text/html", body=(
                f'<form id="f" method="post" action="{portal.url(f"/staff/cases/{mine}/status")}">'
                '<input name="status" value="resolved"><input name="public_note" '
                'value="forged from elsewhere"></form><script>f.submit()</script>')))
        page.goto("http://evil.test/attack")
        page.wait_for_url(re.compile(r"127\.0\.0\.1"))
        assert "forged" not in page.content()
        detail = api.get(f"/cases/{mine}").json()
        assert detail["status"] == "dispatched"
        assert len(detail["events"]) == events
        assert not any("forged" in (e["public_note"] or "") for e in detail["events"])
    finally:
        page.context.close()


def flag_possible_duplicate(portal, code: str, of: str) -> None:
    """What the intake does for a report in its middle band of matching (hard to aim at with
    generated text): mark `code` as a possible duplicate of `of`."""
    sql = ("UPDATE case_ SET possible_duplicate_of_id = (SELECT id FROM case_ WHERE code = "
           f"'{of}') WHERE code = '{code}'")
    if portal.database_url.startswith("sqlite://"):
        with sqlite3.connect(portal.database_url.removeprefix("sqlite://")) as db:
            db.execute(sql)
    else:
        schema = parse_qs(urlsplit(portal.database_url).query)["schema"][0]
        _pg(f"SET search_path TO {schema}; {sql};")


@pytest.fixture(scope="module")
def sample(portal) -> str:
    """A few cases in different states for the pictures; the code of one two people reported."""
    api = staff_api(portal)
    for text, service, lat, lng in (("汉口路300号门口共享单车乱停，挡住人行道", "illegal_parking",
                                     31.2385, 121.4790),
                                    ("福州路400号工地夜里施工到凌晨，吵得睡不着", "noise",
                                     31.2350, 121.4800)):
        code = open311_case(portal, text, service=service, lat=lat, lng=lng)
        api.post(f"/cases/{code}/status", json={"status": "accepted"}).raise_for_status()
    api.post(f"/cases/{code}/department", json={"department_code": "chengguan"}) \
        .raise_for_status()
    open311_case(portal, "延安东路200号路灯不亮，晚上很黑", service="street_light", lat=31.2300,
                 lng=121.4850)
    # Near the first and about the same lamp: joins its case.
    lamp = open311_case(portal, "延安东路200号附近路灯坏了", service="street_light", lat=31.2301,
                        lng=121.4851, email="neighbour@example.org")
    pole = open311_case(portal, "延安东路江西中路口灯杆被车撞歪了，晚上不亮", service="street_light",
                        lat=31.2322, lng=121.4870)
    flag_possible_duplicate(portal, pole, lamp)
    return pole


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_console_pages_screenshots(portal, browser, screenshot, sample, lang, viewport):
    code = sample
    page = new_page(browser, lang=lang, viewport=viewport)
    short = "zh" if lang == "zh-CN" else "en"
    name = "desktop" if viewport is DESKTOP else "phone"
    try:
        if lang == "en":
            page.goto(portal.url("/lang/en?next=/staff/login"))
        else:
            page.goto(portal.url("/staff/login"))
        screenshot(page, f"staff-login-{short}-{name}")
        page.get_by_label("Username" if lang == "en" else "用户名").fill("admin1")
        page.get_by_label("Password" if lang == "en" else "密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in" if lang == "en" else "登录",
                         exact=True).click()
        expect(page).to_have_url(portal.url("/staff"))
        expect(page.locator("table.queue")).to_contain_text(code)
        screenshot(page, f"staff-queue-{short}-{name}")
        page.goto(portal.url(f"/staff/cases/{code}"))
        expect(page.get_by_role("heading", level=1)).to_have_text(code)
        expect(page.locator(".side-by-side > div")).to_have_count(2)
        screenshot(page, f"staff-case-{short}-{name}")
        page.goto(portal.url("/staff/users"))
        expect(page.locator("table.accounts")).to_contain_text("sanitation1")
        screenshot(page, f"staff-users-{short}-{name}")
        page.goto(portal.url("/staff/apikeys"))
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "API keys" if lang == "en" else "API 密钥")
        expect(page.locator("table.accounts")).to_contain_text("browser tests")
        screenshot(page, f"staff-apikeys-{short}-{name}")
    finally:
        page.context.close()


def test_merging_a_possible_duplicate_asks_first_and_keeps_every_report(portal, browser):
    kept = open311_case(portal, "西藏中路300号门口井盖松动，车一过就响", service="manhole",
                        lat=31.2330, lng=121.4760)
    dupe = open311_case(portal, "西藏中路福州路口井盖响", service="manhole", lat=31.2345,
                        lng=121.4775, email="another@example.org")
    flag_possible_duplicate(portal, dupe, kept)
    page = new_page(browser, viewport=DESKTOP)
    try:
        sign_in(page, portal, "operator1")
        page.goto(portal.url(f"/staff/cases/{dupe}"))
        merge = page.get_by_role("button", name=f"同一问题：将本案件合并至 {kept}")
        page.once("dialog", lambda dialog: dialog.dismiss())
        merge.click()
        page.reload()
        expect(page.locator(".console-head .badge").first).to_have_text("待受理")
        page.once("dialog", lambda dialog: dialog.accept())
        merge.click()
        expect(page).to_have_url(portal.url(f"/staff/cases/{kept}"))
        expect(page.locator(".notice.ok")).to_have_text(f"{dupe} 已合并至本案件。")
        expect(page.locator("ol.reports > li")).to_have_count(2)
        expect(page.get_by_role("link", name="another@example.org")).to_be_visible()
    finally:
        page.context.close()


def test_an_admin_issues_a_hotline_key_sees_it_once_and_deactivates_it(portal, browser,
                                                                      screenshot):
    holder = "12345 市民热线系统"
    tickets = portal.url("/api/v1/hotline/tickets")

    def send(key: str, ticket_no: str) -> httpx.Response:
        return httpx.post(tickets, timeout=10, headers={"X-Api-Key": key}, json={"tickets": [{
            "line": "12345", "ticket_no": ticket_no,
            "received_at": datetime.now(UTC).isoformat(),
            "category": "street_light", "address": "黄浦区福州路300号",
            "description": "福州路300号路灯不亮"}]})

    page = new_page(browser, viewport=DESKTOP)
    try:
        sign_in(page, portal, "admin1")
        page.get_by_role("link", name="API 密钥").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("API 密钥")
        page.get_by_label("持有方").fill(holder)
        page.get_by_label("类型").select_option("hotline")
        page.get_by_label("热线号码（热线密钥）").select_option("12345")
        page.get_by_role("button", name="创建密钥").click()
        expect(page.locator(".new-key")).to_contain_text("请立即复制")
        key = page.get_by_label("密钥", exact=True).input_value()
        assert len(key) >= 30
        row = page.locator("table.accounts tbody tr", has_text=holder)
        expect(row).to_contain_text("12345 热线")
        expect(row).to_contain_text("启用")
        key_id = row.locator("td").first.inner_text().strip()
        screenshot(page, "staff-apikeys-zh-desktop")
        assert send(key, "BR-1").json()["created"] == 1

        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name=f"停用密钥 {key_id}").click()
        expect(page.locator(".notice.ok")).to_contain_text(f"密钥 {key_id}（{holder}）已停用")
        expect(page.locator("table.accounts tbody tr", has_text=holder)).to_contain_text("已停用")
        # Shown once: neither the list nor the page after it holds the key.
        assert key not in page.content()
        page.reload()
        assert key not in page.content()
    finally:
        page.context.close()
    refused = send(key, "BR-2")
    assert refused.status_code == 401
