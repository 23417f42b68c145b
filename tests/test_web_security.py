"""Hostile requests to the web pages, on SQLite and PostgreSQL: numbers that are not plain
digits, and the headers that keep every page from being framed, sniffed or made to run another
site's scripts."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from portal.cases import pages
from portal.cases.models import Identity, Report
from portal.staff.service import create_user
from portal.web.templating import content_policy
from tests.test_web_resident import HTML, filed

# Digits Python's str.isdigit accepts but int() refuses ("²") or reads ("١٢" is 12), and more
# digits than int() converts at all.
ODD_NUMBERS = ["²", "١٢", "1" * 5000]


@pytest.mark.parametrize("number", ODD_NUMBERS)
async def test_odd_digits_in_ids_and_cursors_are_no_number(client, number):
    listing = await client.get("/cases", params={"before": number}, headers=HTML)
    assert listing.status_code == 200 and "GL-" not in listing.text.split("pager")[-1]
    for path in (f"/receipts/{number}-{'0' * 32}", f"/photos/{number}"):
        assert (await client.get(path, headers=HTML)).status_code == 404, path


class Stream:
    """An event stream opened at the ASGI level from `host`, held open until `close()`."""

    def __init__(self, app, path: str, query: bytes = b"", headers: list = (),
                 host: str = "127.0.0.1"):
        self.got, self.gone, self.body = asyncio.Event(), asyncio.Event(), []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query, "root_path": "",
                 "headers": [(b"host", b"testserver"), *headers],
                 "client": (host, 50000), "server": ("testserver", 80)}
        self.call = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self):
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message):
        if message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))
            if b"event: case" in b"".join(self.body):
                self.got.set()

    async def first_message(self) -> bytes:
        """The bytes up to the first `case` message, or all there were if the stream ended."""
        waiting = asyncio.create_task(self.got.wait())
        await asyncio.wait({self.call, waiting}, timeout=pages.STREAM_LIFETIME_S,
                           return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        return b"".join(self.body)

    async def close(self) -> None:
        self.gone.set()
        await asyncio.wait_for(self.call, pages.STREAM_LIFETIME_S)  # raises what it raised


@pytest.mark.parametrize("where", ["query", "header"])
async def test_an_odd_last_event_id_streams_the_whole_timeline(app, client, where):
    code, _ = await filed(client)
    stream = Stream(app, f"/cases/{code}/events", b"after=%C2%B2" if where == "query" else b"",
                    [(b"last-event-id", "²".encode("latin-1"))] if where == "header" else [])
    body = await stream.first_message()
    await stream.close()
    [data] = [line[len("data: "):] for line in body.decode().splitlines()
              if line.startswith("data: ")]
    assert [e["title"] for e in json.loads(data)["entries"]] == ["已反映"]


async def test_one_address_cannot_take_every_live_update(app, client, monkeypatch):
    code, _ = await filed(client)
    monkeypatch.setattr(pages, "MAX_STREAMS_PER_ADDRESS", 1)
    held = Stream(app, f"/cases/{code}/events", host="127.0.0.1")
    assert b"event: case" in await held.first_message()
    refused = await client.get(f"/cases/{code}/events")  # the same address (127.0.0.1)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "60"
    elsewhere = Stream(app, f"/cases/{code}/events", host="10.1.2.3")
    assert b"event: case" in await elsewhere.first_message()
    await held.close()
    await elsewhere.close()
    assert not app.state.address_streams and app.state.open_streams == 0


async def test_pages_are_never_framed_sniffed_or_given_other_sites_scripts(client, settings):
    code, receipt = await filed(client)
    policy = content_policy("")
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "object-src 'none'" in policy
    for path in ("/", "/report", "/cases", f"/cases/{code}", receipt.url.path, "/no-such-page",
                 "/staff/login"):
        response = await client.get(path, headers=HTML)
        assert response.headers["content-security-policy"] == policy, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
    # The map's tiles come from its tile server, on whatever subdomain Leaflet picks.
    settings.map_tile_url = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    response = await client.get("/report", headers=HTML)
    assert "img-src 'self' data: https://*.tile.example.org;" in \
        response.headers["content-security-policy"]
    assert "img-src 'self' data: https://*.is.autonavi.com;" in content_policy(
        "https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}")
    assert "img-src 'self' data: https:;" in content_policy("https://tiles.{r}.org/{z}/{x}/{y}")


async def test_the_reporter_cookie_is_not_kept_or_shown_to_staff(client, app):
    first, _ = await filed(client)
    second, _ = await filed(client, category="garbage", description="垃圾堆了一个星期没人清运",
                            address="徐汇区漕溪北路2号")
    cookie = client.cookies["gl_reporter"]
    reports = await Report.filter(case__code__in=[first, second])
    assert len({r.person_id for r in reports}) == 1  # one browser, one person
    assert all(r.identity.startswith("web:browser:") and cookie not in r.identity
               for r in reports)
    assert not await Identity.filter(key__contains=cookie).exists()
    await create_user("id.operator", "operator-pass-1", "operator")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as staff:
        login = await staff.get("/staff/login", headers=HTML)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        signed_in = await staff.post("/staff/login", headers=HTML, data={
            "csrf_token": token, "username": "id.operator", "password": "operator-pass-1",
            "next": "/staff"})
        assert signed_in.status_code == 303
        page = await staff.get(f"/staff/cases/{first}", headers=HTML)
    assert page.status_code == 200 and reports[0].identity in page.text
    assert cookie not in page.text


async def test_over_https_a_csrf_cookie_planted_by_a_sibling_host_is_not_taken(client, settings):
    """Another host of the site can set a plain cookie for the whole domain: one it fetched a
    form token for itself. Over https the token's cookie is __Host-, which no other host sets."""
    settings.secure_cookies = True
    own = await client.get("/report", headers=HTML)
    [set_cookie] = [c for c in own.headers.get_list("set-cookie") if "csrf" in c]
    assert set_cookie.startswith("__Host-gl_csrf=") and "Secure" in set_cookie
    assert "Path=/;" in set_cookie and "Domain" not in set_cookie
    value = set_cookie.split(";")[0].split("=", 1)[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', own.text).group(1)
    form = {"csrf_token": token, "category": "garbage", "description": "垃圾堆了一个星期没人清运",
            "address": "徐汇区漕溪北路2号", "form_id": "p" * 20}
    client.cookies.clear()
    planted = await client.post("/report", data=form, headers={**HTML,
                                                                "Cookie": f"gl_csrf={value}"})
    assert planted.status_code == 403
    own_cookie = await client.post("/report", data=form, headers={
        **HTML, "Cookie": f"__Host-gl_csrf={value}"})
    assert own_cookie.status_code == 303
