"""The page frame every resident and staff page shares: language, fonts, errors."""

from __future__ import annotations

from playwright.sync_api import expect


def test_pages_are_chinese_by_default_and_english_is_one_click_away(portal, page):
    page.goto(portal.url("/no-such-page"))
    expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page).to_have_url(portal.url("/no-such-page"))
    page.goto(portal.url("/another-missing-page"))  # the choice is remembered
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
