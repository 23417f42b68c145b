"""A resident who left an e-mail address, in a real browser against a real `gridlink serve` that
mails through a local SMTP server (aiosmtpd): the resolution arrives by mail, its rate link
opens a page in the resident's language, the tracking page of the browser that reported offers
the same form, and the unsubscribe link asks before it stops the updates. Screenshots of each."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import new_page, running_portal
from tests.browser.test_resident import report, staff_session
from tests.smtp import Mailbox, smtp_server

ADDRESS = "li.na@example.org"


@pytest.fixture(scope="module")
def mailbox():
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def portal(request, tmp_path_factory, mailbox):
    """A server of its own that sends its progress updates by mail, at once."""
    env = {"GRIDLINK_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
           "GRIDLINK_MAIL_FROM": "Gridlink <noreply@gridlink.example.org>",
           "GRIDLINK_UPDATES_SETTLE_SECONDS": "0", "GRIDLINK_QUIET_HOURS": ""}
    with running_portal(request.param, tmp_path_factory.mktemp("mailing"),
                        staff={"operator1": ("operator", None)}, env=env,
                        schema_name="gl_browser_mail") as running:
        yield running


def mail_saying(mailbox: Mailbox, address: str, words: str, seconds: float = 20.0):
    """The first mail to `address` whose subject holds `words`, once it arrived."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for message in mailbox.to(address):
            if words in message["Subject"]:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address} about {words!r} within {seconds} s")


def path_of(message, kind: str) -> str:
    """The path of a link of the mail (its host is GRIDLINK_PUBLIC_BASE_URL's, not the test
    server's)."""
    found = re.search(rf"https?://[^/\s]+(/{kind}/\S+)", message.get_content())
    assert found, message.get_content()
    return found.group(1)


def test_a_resident_rates_a_resolved_case_from_the_mail_and_on_its_page(
        portal, page, browser, mailbox, screenshot):
    code = report(page, portal, category="street_light", address="黄浦区福州路88号",
                  description="福州路88号门口路灯不亮", contact=ADDRESS)
    with staff_session(portal) as staff:
        for status in ("accepted", "in_progress"):
            staff.post(f"/cases/{code}/status", json={"status": status}).raise_for_status()
        staff.post(f"/cases/{code}/status", json={
            "status": "resolved", "public_note": "路灯已修好"}).raise_for_status()
    mail = mail_saying(mailbox, ADDRESS, "已处置")
    assert code in mail["Subject"] and "路灯已修好" in mail.get_content()

    # The mail is read on another device: a browser that never saw the site.
    reader = new_page(browser, lang="en-US")
    try:
        reader.goto(portal.url(path_of(mail, "rate")))
        expect(reader.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(reader.locator(".facts")).to_contain_text("已处置（待评价）")
        screenshot(reader, f"rate-link-{portal.database_url.split(':')[0]}")
        reader.locator("#score-0").check()
        reader.locator("#rating-comment").fill("灯还是时亮时不亮")
        reader.locator("#rating button[type=submit]").click()
        expect(reader.locator(".notice.ok").first).to_be_visible()
        expect(reader.locator("#score-0")).to_be_checked()
        expect(reader.locator("#rating-comment")).to_have_value("灯还是时亮时不亮")
    finally:
        reader.context.close()

    # The browser that reported finds the same rating on the tracking page, and changes it.
    page.goto(portal.url(f"/cases/{code}"))
    expect(page.locator("#score-0")).to_be_checked()
    page.locator("#score-4").check()
    page.locator("#rating-comment").fill("")
    page.locator("#rating button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/cases/{code}\?rated=1#rating$"))
    expect(page.locator("#rating .notice.ok")).to_have_text("感谢您的评价。")
    expect(page.locator("#score-4")).to_be_checked()
    screenshot(page, f"rate-on-tracking-page-{portal.database_url.split(':')[0]}")

    # Stopping the updates asks first.
    stop = new_page(browser)
    try:
        stop.goto(portal.url(path_of(mail, "unsubscribe")))
        screenshot(stop, f"unsubscribe-{portal.database_url.split(':')[0]}")
        stop.locator("#unsubscribe button[type=submit]").click()
        expect(stop.locator("#unsubscribe .notice.ok")).to_contain_text(code)
        expect(stop.locator("#unsubscribe form")).to_have_count(0)
    finally:
        stop.context.close()
