"""Residents in a real browser: report a problem with a photo, join a case someone else opened,
watch the tracking page change while staff work the case, keep what they typed when throttled.
Screenshots of the resident pages in Chinese and English, phone-sized and desktop."""

from __future__ import annotations

import re
from contextlib import contextmanager

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PASSWORD, PHONE, new_page
from tests.live import live_server
from tests.photos import jpeg_with_gps

CODE = re.compile(r"GL-\d{8}-\d{4}")


def photo_with_exif(path) -> str:
    path.write_bytes(jpeg_with_gps(size=(320, 240), color=(230, 150, 40)))
    return str(path)


def fill_report(page, *, category: str, description: str, address: str = "",
                photo: str | None = None, contact: str = "") -> None:
    page.get_by_label("问题类别").select_option(category)
    page.get_by_label("问题描述").fill(description)
    if address:
        page.get_by_label("地址或标志性地点").fill(address)
    if photo:
        page.get_by_label("照片（可选）").set_input_files(photo)
    if contact:
        page.get_by_label("电子邮箱或电话（可选）").fill(contact)


def report(page, portal, **fields) -> str:
    """File a report through the form; the case code on the receipt."""
    page.goto(portal.url("/report"))
    fill_report(page, **fields)
    page.get_by_role("button", name="提交反映").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("您的反映已收到")
    return page.locator("#case-code").inner_text()


@contextmanager
def staff_session(portal):
    """The staff JSON API, signed in as an operator."""
    with httpx.Client(base_url=portal.url("/api/v1/staff"), timeout=10) as client:
        token = client.post("/login", json={"username": "operator1", "password": PASSWORD}) \
            .raise_for_status().json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_a_resident_reports_a_problem_with_a_photo_and_gets_a_case_code(
        portal, page, tmp_path):
    page.goto(portal.url("/"))
    page.get_by_role("main").get_by_role("link", name="我要反映问题").click()
    expect(page).to_have_url(portal.url("/report"))
    fill_report(page, category="street_light", description="南京东路100号门口路灯晚上不亮",
                address="黄浦区南京东路100号", photo=photo_with_exif(tmp_path / "lamp.jpg"),
                contact="resident@example.org")
    expect(page.locator("#category-hint")).to_have_text("路灯不亮、闪烁、灯杆损坏")
    page.get_by_role("button", name="提交反映").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("您的反映已收到")
    code = page.locator("#case-code").inner_text()
    assert CODE.fullmatch(code)
    expect(page.get_by_role("status")).to_contain_text(f"案件编号为 {code}")
    page.get_by_role("link", name="查看案件进展").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"案件 {code}")
    expect(page.locator("#case-status")).to_have_text("待受理")
    assert "resident@example.org" not in page.content()
    # The photo was kept, without the camera's make or the GPS position it carried.
    stored = list((portal.workdir / "media").rglob("*.jpg"))
    assert stored and not any(b"SecretCam" in p.read_bytes() for p in stored)
    for path in stored:
        with Image.open(path) as img:
            assert not img.getexif()


def test_a_second_resident_is_told_the_report_joined_the_existing_case(browser, portal):
    first, second = new_page(browser), new_page(browser)
    try:
        code = report(first, portal, category="garbage", address="静安区延安中路500号",
                      description="延安中路500号门口垃圾堆了好几天没人清运")
        again = report(second, portal, category="garbage", address="静安区延安中路500号",
                       description="延安中路500号那里垃圾一直没人收，味道很大")
        assert again == code
        expect(second.get_by_role("status")).to_contain_text(
            f"该问题已有案件 {code}，您的反映已并入，共有 2 人反映")
        expect(second.locator(".facts")).to_contain_text("2")
    finally:
        first.context.close()
        second.context.close()


def test_the_tracking_page_follows_staff_work_without_a_reload(portal, page):
    code = report(page, portal, category="manhole", address="徐汇区漕溪北路88号",
                  description="漕溪北路88号门口井盖松动，踩上去会翻")
    page.get_by_role("link", name="查看案件进展").click()
    expect(page.locator("#case-status")).to_have_text("待受理")
    expect(page.locator("#live-note")).to_have_text("案件有变化时，本页会自动更新。")
    page.evaluate("window.stillTheSamePage = true")

    with staff_session(portal) as staff:
        staff.post(f"/cases/{code}/status", json={
            "status": "accepted", "public_note": "已受理，马上安排维修",
            "internal_note": "内部：找市政二队"}).raise_for_status()
        expect(page.locator("#case-status")).to_have_text("已立案")
        expect(page.locator("#timeline")).to_contain_text("已受理，马上安排维修")
        staff.post(f"/cases/{code}/department",
                   json={"department_code": "shizheng"}).raise_for_status()
        expect(page.locator("#case-status")).to_have_text("已派遣")
        expect(page.locator("#timeline")).to_contain_text("已指派给市政道路")
        staff.post(f"/cases/{code}/status", json={"status": "in_progress"}).raise_for_status()
        staff.post(f"/cases/{code}/status", json={
            "status": "resolved", "public_note": "井盖已更换"}).raise_for_status()
        expect(page.locator("#case-status")).to_have_text("已处置（待评价）")
        expect(page.locator("#timeline")).to_contain_text("井盖已更换")

    assert page.evaluate("window.stillTheSamePage") is True  # no navigation happened
    assert "内部" not in page.content() and "operator1" not in page.content()
    page.reload()  # and what the page showed live is what it shows anew
    expect(page.locator("#case-status")).to_have_text("已处置（待评价）")
    expect(page.locator("#timeline li")).to_have_count(6)


def test_a_location_from_the_browser_is_enough(browser, portal):
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True,
                                  has_touch=True, permissions=["geolocation"],
                                  geolocation={"latitude": 31.2304, "longitude": 121.4737,
                                               "accuracy": 12})
    page = context.new_page()
    try:
        page.goto(portal.url("/report"))
        fill_report(page, category="greenery", description="人民广场旁边一棵大树倒了挡住人行道")
        page.get_by_role("button", name="使用我的位置").click()
        expect(page.locator("#located")).to_have_text(
            "已获取位置：31.23040, 121.47370（误差约 12 米）。")
        page.get_by_role("button", name="提交反映").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("您的反映已收到")
        code = page.locator("#case-code").inner_text()
        page.goto(portal.url(f"/cases/{code}"))
        expect(page.locator(".facts")).to_contain_text("约在 31.23, 121.474 附近")
    finally:
        context.close()


def test_the_form_without_a_place_says_what_is_missing_and_keeps_the_text(portal, page):
    page.goto(portal.url("/report"))
    fill_report(page, category="noise", description="晚上十一点以后还在施工")
    page.get_by_role("button", name="提交反映").click()
    expect(page.locator("#location-error")).to_have_text(
        "请告诉我们问题地点：发送位置或填写地址。")
    expect(page.get_by_label("地址或标志性地点")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("问题描述")).to_have_value("晚上十一点以后还在施工")
    expect(page.get_by_label("问题类别")).to_have_value("noise")


def tab_to(page, selector: str) -> None:
    """Press Tab until `selector` has the focus (as a keyboard user moves through a page)."""
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)",
                         selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the keyboard")


def test_a_report_can_be_made_with_the_keyboard_alone(browser, portal):
    page = new_page(browser, viewport=DESKTOP)
    try:
        page.goto(portal.url("/"))
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="跳到正文")).to_be_focused()
        tab_to(page, "main a.button")
        page.keyboard.press("Enter")
        expect(page).to_have_url(portal.url("/report"))
        tab_to(page, "#category")
        page.keyboard.press("ArrowDown")
        expect(page.locator("#category")).to_have_value("garbage")
        tab_to(page, "#description")
        page.keyboard.type("福州路400号门口垃圾桶满了")
        tab_to(page, "#address")
        page.keyboard.type("黄浦区福州路400号")
        tab_to(page, "button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("您的反映已收到")
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def tight_portal(tmp_path_factory):
    """A server of its own on SQLite that takes one new report per person in ten minutes."""
    workdir = tmp_path_factory.mktemp("tight")
    with live_server(f"sqlite://{workdir / 'tight.sqlite3'}", workdir,
                     env={"GRIDLINK_THROTTLE_NEW_REPORTS": "1/10 minutes"}) as base:
        yield type("Portal", (), {"url": staticmethod(lambda path: base + path)})


def test_a_throttled_resident_keeps_what_they_typed(tight_portal, page, tmp_path, screenshot):
    report(page, tight_portal, category="garbage", address="黄浦区福州路1号",
           description="福州路1号门口垃圾没人清理")
    page.goto(tight_portal.url("/report"))
    fill_report(page, category="illegal_parking", address="黄浦区福州路200号",
                description="福州路200号人行道上长期停着一辆车",
                photo=photo_with_exif(tmp_path / "car.jpg"), contact="13900000000")
    page.get_by_role("button", name="提交反映").click()

    alert = page.locator("#throttled")
    expect(alert).to_contain_text("您在短时间内提交了多条反映")
    expect(alert).to_contain_text(re.compile(r"您可以在 \d\d:\d\d 之后再次提交（约 10 分钟后）"))
    expect(alert).to_contain_text("照片无法保留，提交前请重新选择照片")
    expect(page.get_by_label("问题类别")).to_have_value("illegal_parking")
    expect(page.get_by_label("问题描述")).to_have_value("福州路200号人行道上长期停着一辆车")
    expect(page.get_by_label("地址或标志性地点")).to_have_value("黄浦区福州路200号")
    expect(page.get_by_label("电子邮箱或电话（可选）")).to_have_value("13900000000")
    screenshot(page, "report-throttled-zh-phone")


VIEWS = [("zh", "phone", PHONE), ("en", "phone", PHONE), ("zh", "desktop", DESKTOP),
         ("en", "desktop", DESKTOP)]


def test_screenshots_of_the_resident_pages(browser, portal, screenshot, tmp_path):
    """Home, report form, a merged receipt, a tracking page and the list, as residents see them."""
    first, second = new_page(browser), new_page(browser)
    try:
        code = report(first, portal, category="street_light", address="黄浦区福州路300号",
                      description="福州路300号门口路灯不亮", photo=photo_with_exif(
                          tmp_path / "a.jpg"))
        report(second, portal, category="street_light", address="黄浦区福州路300号",
               description="福州路300号的路灯坏了，晚上很黑")
        receipt = second.url
    finally:
        first.context.close()
        second.context.close()
    with staff_session(portal) as staff:
        staff.post(f"/cases/{code}/status", json={
            "status": "accepted", "public_note": "已受理，将安排维修"}).raise_for_status()

    pages = [("home", "/"), ("report", "/report"), ("receipt-merged", receipt),
             ("tracking", f"/cases/{code}"), ("list", "/cases")]
    for lang, size, viewport in VIEWS:
        page = new_page(browser, viewport=viewport)
        try:
            if lang == "en":
                page.goto(portal.url("/"))
                page.get_by_role("link", name="English").click()
                expect(page.locator("html")).to_have_attribute("lang", "en")
            for name, path in pages:
                page.goto(path if path.startswith("http") else portal.url(path))
                expect(page.locator("h1").first).to_be_visible()
                if name == "tracking":
                    expect(page.locator("#live-note")).not_to_be_empty()
                screenshot(page, f"{name}-{lang}-{size}")
        finally:
            page.context.close()
