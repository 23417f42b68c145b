"""The pages' Content-Security-Policy in a real browser: with a map configured, the vendored
Leaflet, the page scripts, the live updates and the map's tiles all work under it, and the
browser reports no violation on any page a resident or a staff member opens."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PASSWORD, _cli, new_page
from tests.browser.test_resident import CODE, fill_report
from tests.live import live_server

# A tile server on another origin, on Leaflet's {s} subdomains; it need not answer: a refused
# load would be a violation, an unanswered one is not.
TILES = "http://{s}.tiles.invalid/{z}/{x}/{y}.png"
LISTEN = """window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});"""


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A server with map tiles configured (SQLite: the policy does not depend on the engine)."""
    workdir = tmp_path_factory.mktemp("csp")
    url = f"sqlite://{workdir / 'portal.sqlite3'}"
    _cli(["migrate"], url, workdir)
    _cli(["createuser", "csp.operator", "--role", "operator", "--password", PASSWORD], url,
         workdir)
    env = {"GRIDLINK_MAP_TILE_URL": TILES, "GRIDLINK_MAP_ATTRIBUTION": "Test tiles",
           "GRIDLINK_SECRET_KEY": "csp-tests-secret"}
    with live_server(url, workdir, env=env) as base:
        yield base


class Site:
    def __init__(self, base: str):
        self.base = base

    def url(self, path: str) -> str:
        return self.base + path


def test_maps_scripts_and_live_updates_run_under_the_content_policy(browser, mapped):
    site = Site(mapped)
    page = new_page(browser, viewport=DESKTOP)
    page.add_init_script(LISTEN)
    try:
        page.goto(site.url("/report"))
        expect(page.locator("#pick-map .leaflet-tile").first).to_be_attached()
        fill_report(page, category="street_light", description="路灯不亮已经三天了")
        page.locator("#pick-map").click()  # the map picker gives the place
        expect(page.locator("#located")).to_contain_text("已在地图上选定位置")
        assert page.evaluate("window.__violations") == []
        page.get_by_role("button", name="提交反映").click()
        code = CODE.search(page.locator("#case-code").inner_text()).group(0)
        assert page.evaluate("window.__violations") == []
        for path, map_id in ((f"/cases/{code}", "#case-map"), ("/cases", "#list-map")):
            page.goto(site.url(path))
            expect(page.locator(f"{map_id} .leaflet-marker-icon").first).to_be_visible()
            assert page.evaluate("window.__violations") == [], path
        page.goto(site.url(f"/cases/{code}"))
        expect(page.locator("#live-note")).not_to_be_empty()  # the event stream connected
        assert page.evaluate("window.__violations") == []

        page.goto(site.url("/staff/login"))
        page.get_by_label("用户名").fill("csp.operator")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.goto(site.url(f"/staff/cases/{code}"))
        expect(page.locator("#case-map .leaflet-marker-icon").first).to_be_visible()
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.get_by_label("保留的案件编号").fill(code)
        page.get_by_role("button", name="合并", exact=True).click()
        expect(page.locator("#merge-into")).to_have_value(code)  # not sent: still this page
        assert len(asked) == 1  # console.js asked first
        assert page.evaluate("window.__violations") == []
    finally:
        page.context.close()
