"""Browser tests: Debian's Chromium, driven by Playwright, against a real `gridlink serve`.

`portal` is a server per module on each engine, with staff accounts (see STAFF); `page` is a
fresh phone-sized browser context in Chinese; `screenshot(page, name)` saves a picture of a page
under SCREENSHOTS, printed at the end of the run so a reviewer can look at them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI, PG_URL, _pg_execute, require_server
from tests.live import live_server

CHROMIUM = os.environ.get("GRIDLINK_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("GRIDLINK_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
PASSWORD = "browser-pass-1"
# username: (role, department)
STAFF = {
    "operator1": ("operator", None),
    "admin1": ("admin", None),
    "roads1": ("department", "shizheng"),
    "sanitation1": ("department", "shirong"),
}


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    message = f"{what} is missing: run `sh tests/browser/setup.sh` (or `make install-test`)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


# Per module: Playwright's sync API keeps an event loop running on the main thread while it is
# open, which would stop the async tests of later modules.
@pytest.fixture(scope="module")
def browser():
    _need(CHROMIUM, Path(CHROMIUM).exists())
    _need("The CJK font fonts-wqy-microhei", shutil.which("fc-list") is not None and
          "WenQuanYi Micro Hei" in subprocess.run(["fc-list"], capture_output=True,
                                                  text=True).stdout)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def _pg(sql: str) -> None:
    # Playwright's sync API keeps an event loop running on this thread: run ours on another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _pg_execute(sql)).result()


def _cli(args: list[str], url: str, workdir: Path) -> str:
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url,
           "GRIDLINK_MEDIA_DIR": str(workdir / "media")}
    out = subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env, cwd=workdir,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@dataclass
class Portal:
    base: str
    database_url: str
    workdir: Path

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def running_portal(engine: str, workdir: Path, *, staff: dict = STAFF, env: dict | None = None,
                   schema_name: str = "gl_browser"):
    """A migrated database on `engine` with the `staff` accounts, and `gridlink serve` on it
    with `env` added; the schema is dropped afterwards (PostgreSQL)."""
    schema = None
    if engine == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        schema = f"{schema_name}_{os.getpid()}"
        _pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};")
        url = f"{PG_URL}?schema={schema}"
    else:
        url = f"sqlite://{workdir / 'portal.sqlite3'}"
    _cli(["migrate"], url, workdir)
    for username, (role, department) in staff.items():
        args = ["createuser", username, "--role", role, "--password", PASSWORD]
        _cli(args + (["--department", department] if department else []), url, workdir)
    env = {"GRIDLINK_THROTTLE_NEW_REPORTS": "1000/minute",
           "GRIDLINK_SECRET_KEY": "browser-tests-secret", **(env or {})}
    try:
        with live_server(url, workdir, env=env) as base:
            yield Portal(base, url, workdir)
    finally:
        if schema:
            _pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE;")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def portal(request, tmp_path_factory):
    with running_portal(request.param, tmp_path_factory.mktemp("portal")) as running:
        yield running


def new_page(browser, *, lang: str = "zh-CN", viewport: dict = PHONE):
    """A page in a context of its own (its own cookies: another person)."""
    context = browser.new_context(viewport=viewport, locale=lang,
                                  is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    context.set_default_timeout(10_000)
    return context.new_page()


@pytest.fixture
def page(browser):
    p = new_page(browser)
    yield p
    p.context.close()


@pytest.fixture(scope="session")
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS.exists() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
