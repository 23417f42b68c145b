"""The resident pages through HTTP on the app, on SQLite and PostgreSQL: home, report form and
receipt, tracking page, public list, photos, following a case; hostile input and privacy. The
live updates (server-sent events) are tested against a real server process."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
import uuid

import httpx
import pytest
from PIL import Image

from portal.app import create_app
from portal.cases import pages
from portal.cases.categories import CATEGORIES
from portal.cases.models import Case, Department, Person, Photo, Report, Status, Subscription
from portal.cases.service import add_note, assign_department, change_status, merge_cases
from portal.photos import store_photo
from portal.staff import casework
from portal.staff.service import create_user
from tests.live import live_server
from tests.photos import jpeg_with_gps

HTML = {"Accept": "text/html"}
TEXT = "南京东路100号门口路灯晚上不亮，已经三天了"
ADDRESS = "黄浦区南京东路100号"
EMAIL = "zhang.wei@example.org"
PHONE = "13912345678"


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def errors_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="error-text" id="([a-z]+)-error"[^>]*>([^<]*)</p>', html))


async def open_form(client: httpx.AsyncClient, path: str = "/report") -> dict:
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200
    return {name: re.search(rf'name="{name}" value="([^"]*)"', page.text).group(1)
            for name in ("csrf_token", "form_id")}


async def send(client, *, photos=(), **fields) -> httpx.Response:
    """Open the form, fill it in as a resident would, send it."""
    data = {**await open_form(client), "category": "street_light", "description": TEXT,
            "address": ADDRESS, "lat": "", "lng": "", "contact": ""}
    data.update(fields)
    files = [("media", (f"p{n}.jpg", body, "image/jpeg")) for n, body in enumerate(photos)] \
        or [("media", ("none", b"", "application/octet-stream"))]  # a browser's "no file"
    return await client.post("/report", data={k: v for k, v in data.items() if v is not None},
                             files=files, headers=HTML)


async def filed(client, **fields) -> tuple[str, httpx.Response]:
    """Send a report; the case code from the receipt it leads to."""
    response = await send(client, **fields)
    assert response.status_code == 303, text_of(response.text)[:500]
    receipt = await client.get(response.headers["location"], headers=HTML)
    assert receipt.status_code == 200
    return re.search(r"GL-\d{8}-\d{4}", receipt.text).group(0), receipt


@pytest.fixture
async def other(app):
    """Another resident: the same site in a browser of their own."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        yield c


# ---------------------------------------------------------------------------- home and list


async def test_home_shows_what_can_be_reported_and_recent_cases(client):
    code, _ = await filed(client)
    page = await client.get("/", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-language"] == "zh-CN"
    for c in CATEGORIES:
        assert c.name_zh in page.text and c.hint_zh in page.text
        assert f'href="/report?category={c.key}"' in page.text
    assert code in page.text and 'href="/report"' in page.text
    english = await client.get("/?lang=en", headers=HTML)
    assert english.headers["content-language"] == "en"
    assert "Street light out" in english.text and "Lamps that are out" in english.text
    assert "What you can report" in english.text


async def test_a_category_link_preselects_the_category(client):
    page = await client.get("/report?category=manhole", headers=HTML)
    assert '<option value="manhole" data-hint="井盖缺失、破损、松动" selected>' in page.text
    page = await client.get("/report?category=<script>", headers=HTML)
    assert page.status_code == 200 and "<script>" not in page.text.split("<main")[1]


async def test_the_form_has_labels_a_csrf_token_and_the_contact_notice(client):
    page = await client.get("/report", headers=HTML)
    html = page.text
    for field in ("category", "description", "address", "media", "contact"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert 'name="csrf_token"' in html and 'enctype="multipart/form-data"' in html
    assert "从不在任何公开页面显示" in html  # what the contact is used for
    assert html.count("<option value=") == len(CATEGORIES) + 1
    assert "pick-map" not in html and "leaflet" not in html  # no tiles configured: no map
    assert "gl_reporter" in page.headers.get("set-cookie", "")


async def test_the_map_appears_only_with_tiles_configured(app, client, settings):
    settings.map_tile_url = "https://tiles.example.org/{z}/{x}/{y}.png"
    html = (await client.get("/report", headers=HTML)).text
    assert 'id="pick-map"' in html and "/static/vendor/leaflet/leaflet.js" in html
    assert (await client.get("/static/vendor/leaflet/leaflet.js")).status_code == 200


async def test_the_public_list_filters_and_pages(client, other):
    codes = []
    for n, (category, address) in enumerate([("garbage", "黄浦区福州路1号"),
                                             ("noise", "徐汇区漕溪北路2号"),
                                             ("garbage", "静安区延安中路3号")]):
        code, _ = await filed(client if n % 2 else other, category=category, address=address,
                              description=f"第{n}个问题，麻烦处理一下")
        codes.append(code)
    listing = (await client.get("/cases", headers=HTML)).text
    assert all(c in listing for c in codes)
    garbage = (await client.get("/cases?category=garbage", headers=HTML)).text
    assert codes[0] in garbage and codes[2] in garbage and codes[1] not in garbage
    case = await Case.get(code=codes[1])
    await change_status(case.id, Status.ACCEPTED, actor="op")
    accepted = (await client.get("/cases?status=accepted", headers=HTML)).text
    assert codes[1] in accepted and codes[0] not in accepted

    first = await client.get("/cases?status=new", headers=HTML)
    assert codes[2] in first.text
    cases, cursor = await pages.public.list_cases("zh-CN", category=None, status=None,
                                                  before_id=None, limit=2)
    assert [c.code for c in cases] == [codes[2], codes[1]] and cursor
    older = (await client.get(f"/cases?before={cursor}", headers=HTML)).text
    assert codes[0] in older and codes[2] not in older

    for query in ("category=nope", "status=merged", "before=abc", "before=" + "9" * 40,
                  "category=%00", "status=<b>"):
        response = await client.get(f"/cases?{query}", headers=HTML)
        assert response.status_code == 200, query


async def test_the_list_pages_by_a_cursor_with_a_next_link(client, app):
    for n in range(23):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as resident:
            await filed(resident, category="other", address=f"某某路{n + 1}号",
                        description=f"第{n}件事情需要处理")
    first = await client.get("/cases", headers=HTML)
    assert first.text.count('class="card case-row"') == 20
    next_link = re.search(r'href="(/cases\?[^"]*before=\d+)"', first.text).group(1)
    second = await client.get(next_link.replace("&amp;", "&"), headers=HTML)
    assert second.text.count('class="card case-row"') == 3


# ---------------------------------------------------------------------------- report + receipt


async def test_a_report_with_a_photo_gets_a_case_code_and_the_photo_loses_its_exif(
        client, settings):
    code, receipt = await filed(client, photos=[jpeg_with_gps()], contact=EMAIL)
    assert "感谢您的反映，案件编号为" in receipt.text and f'href="/cases/{code}"' in receipt.text
    report = await Report.get(case__code=code)
    assert report.channel == "web" and report.identity.startswith("web:browser:")
    assert (await Person.get(id=report.person_id)).email == EMAIL
    [photo] = await Photo.filter(report_id=report.id)
    stored = (settings.media_dir / photo.path).read_bytes()
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif()
    # A resident's photo is evidence for staff: never served publicly.
    assert (await client.get(f"/photos/{photo.id}", headers=HTML)).status_code == 404


async def test_a_second_resident_reporting_the_same_problem_joins_the_case(client, other):
    code, _ = await filed(client)
    again, receipt = await filed(other, description="南京东路100号那盏路灯坏了，晚上很黑")
    assert again == code
    assert f"该问题已有案件 {code}，您的反映已并入，共有 2 人反映" in text_of(receipt.text)
    english = await other.get(receipt.url.path + "?lang=en", headers=HTML)
    assert f"Your report joined case {code}, which 2 people have reported." in english.text


async def test_the_same_form_sent_twice_files_one_report(client):
    form = await open_form(client)
    data = {**form, "category": "garbage", "description": TEXT, "address": ADDRESS}
    first = await client.post("/report", data=data, headers=HTML)
    second = await client.post("/report", data=data, headers=HTML)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert await Report.all().count() == 1


async def test_a_point_alone_is_enough_and_the_point_is_not_published(client):
    code, _ = await filed(client, address="", lat="31.239412", lng="121.484207",
                          description="这里的路灯坏了很久")
    case = await Case.get(code=code)
    assert case.lat == pytest.approx(31.239412)
    page = (await client.get(f"/cases/{code}", headers=HTML)).text
    assert "31.239" in page and "31.2394" not in page and "121.4842" not in page


async def test_a_receipt_address_cannot_be_forged(client):
    code, receipt = await filed(client)
    path = receipt.url.path
    report_id = path.rsplit("/", 1)[1].split("-")[0]
    for bad in (f"{report_id}-{'0' * 32}", f"{int(report_id) + 1}-{path.rsplit('-', 1)[1]}",
                "x", "-", "99999999999999999999999-ab", "1-%00"):
        response = await client.get(f"/receipts/{bad}", headers=HTML)
        assert response.status_code == 404, bad
        assert code not in response.text


@pytest.mark.parametrize("change, field, message", [
    ({"category": ""}, "category", "请从列出的问题类别中选择一项"),
    ({"category": "unicorns"}, "category", "请从列出的问题类别中选择一项"),
    ({"description": "   "}, "description", "请用几句话描述问题"),
    ({"description": None}, "description", "请用几句话描述问题"),
    ({"description": "长" * 2001}, "description", "问题描述过长"),
    ({"address": "", "lat": "", "lng": ""}, "location", "请告诉我们问题地点"),
    ({"address": "\x00\x00", "lat": None, "lng": None}, "location", "请告诉我们问题地点"),
    ({"lat": "nan", "lng": "121.48"}, "location", "位置坐标无效"),
    ({"lat": "1e999", "lng": "121.48"}, "location", "位置坐标无效"),
    ({"lat": "31.2", "lng": ""}, "location", "位置坐标无效"),
    ({"lat": "9" * 400, "lng": "1"}, "location", "位置坐标无效"),
    ({"lat": "north", "lng": "east"}, "location", "位置坐标无效"),
    ({"contact": "not an address"}, "contact", "电子邮箱或电话号码"),
    ({"contact": "a@b"}, "contact", "电子邮箱或电话号码"),
    ({"contact": "x" * 200 + "@example.org"}, "contact", "电子邮箱或电话号码"),
])
async def test_invalid_input_is_refused_next_to_its_field_and_kept(client, change, field,
                                                                  message):
    response = await send(client, **change)
    assert response.status_code == 422, text_of(response.text)[:300]
    assert response.headers["content-language"] == "zh-CN"
    errors = errors_of(response.text)
    assert list(errors) == [field] and message in errors[field]
    kept = change.get("description") or TEXT
    if field != "description":
        assert kept in response.text
    assert await Case.all().count() == 0


async def test_nul_bytes_and_control_characters_never_reach_the_database(client):
    code, _ = await filed(client, description="路灯\x00坏了\x07，晚上\x1b很黑",
                          address="黄浦区\x00南京东路100号", contact="a\x00@example.org",
                          form_id="\x00" * 20)
    report = await Report.get(case__code=code)
    assert report.text == "路灯坏了，晚上很黑" and report.address == "黄浦区南京东路100号"
    assert (await Person.get(id=report.person_id)).email == "a@example.org"


async def test_every_problem_of_the_form_is_shown_at_once(client):
    response = await send(client, category="", description="", address="", lat="x", lng="y",
                          contact="nobody")
    assert response.status_code == 422
    assert sorted(errors_of(response.text)) == ["category", "contact", "description",
                                                "location"]
    # The summary at the top links to each field.
    for anchor in ("category", "contact", "description", "address"):
        assert f'<li><a href="#{anchor}">' in response.text


async def test_photos_that_are_not_photos_are_refused_and_must_be_chosen_again(client):
    response = await send(client, photos=[b"%PDF-1.4 not a photo"], description="图片测试")
    assert response.status_code == 422
    assert "photos" in errors_of(response.text)
    assert "图片测试" in response.text and "请重新选择照片" in response.text
    too_many = await send(client, photos=[jpeg_with_gps()] * 4)
    assert too_many.status_code == 400 and "photos" not in errors_of(too_many.text)
    assert "3" in errors_of(too_many.text)["general"]
    assert await Case.all().count() == 0


async def test_an_oversized_body_is_refused_without_reading_it(client, settings):
    settings.max_photo_bytes = 10_000
    settings.max_photos = 1
    response = await send(client, photos=[b"\xff" * 200_000])
    assert response.status_code == 413
    assert "请求内容过大" in errors_of(response.text)["photos"]
    assert await Case.all().count() == 0


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"category": "garbage"}'),
    ("multipart/form-data", b"category=garbage"),
    ("multipart/form-data; boundary=xyz", b"garbage that is no multipart"),
    ("multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data; name="category"\r\n\r\ngarbage'),
    ("application/x-www-form-urlencoded", b"\xff\xfe\x00=%%%&&&="),
])
async def test_a_body_that_is_no_form_is_refused(client, content_type, body):
    response = await client.post("/report", content=body,
                                 headers={**HTML, "Content-Type": content_type})
    assert response.status_code in (400, 403, 415), response.status_code
    assert await Case.all().count() == 0


async def test_a_forged_or_missing_csrf_token_is_refused(client, other):
    form = await open_form(client)
    data = {"category": "garbage", "description": TEXT, "address": ADDRESS}
    for token in (None, "", "forged", form["csrf_token"] + "x"):
        response = await client.post("/report", headers=HTML,
                                     data={**data, **({"csrf_token": token} if token is not None
                                                      else {})})
        assert response.status_code == 403
    # A token from another browser is no good either.
    stolen = await open_form(other)
    assert (await client.post("/report", data={**data, **stolen},
                              headers=HTML)).status_code == 403
    assert await Case.all().count() == 0


async def test_a_throttled_resident_keeps_what_they_typed(settings):
    settings.throttle_new_reports = "1/10 minutes"
    app = create_app(settings, manage_db=False)
    app.state.throttle.namespace = f"test-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        await filed(client)
        response = await send(client, category="noise", description="楼下工地半夜施工很吵",
                              address="徐汇区漕溪北路88号", contact=PHONE,
                              photos=[jpeg_with_gps()])
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 600
    html = response.text
    assert "楼下工地半夜施工很吵" in html and "徐汇区漕溪北路88号" in html and PHONE in html
    assert '<option value="noise" data-hint' in html and "selected" in html.split(
        '<option value="noise"')[1].split(">")[0]
    assert re.search(r"您可以在 \d\d:\d\d 之后再次提交（约 \d+ 分钟后）", text_of(html))
    assert "请重新选择照片" in html
    assert await Case.all().count() == 1


async def test_one_network_address_is_limited_whatever_its_cookies(app, monkeypatch):
    monkeypatch.setitem(pages.ADDRESS_LIMITS, "report", "2/minute")
    statuses = []
    for n in range(3):
        # A new browser (no cookies) each time: a new person to the intake.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as c:
            response = await send(c, address=f"黄浦区福州路{n + 1}号", description=f"第{n}次")
            statuses.append(response.status_code)
    assert statuses == [303, 303, 429]
    assert "您所在网络提交的请求过多" in response.text and "第2次" in response.text


# ---------------------------------------------------------------------------- tracking page


async def test_the_tracking_page_shows_the_public_timeline_only(client):
    code, _ = await filed(client, contact=EMAIL, lat="31.239412", lng="121.484207")
    case = await Case.get(code=code)
    await change_status(case.id, Status.ACCEPTED, actor="li.operator",
                        public_note="已受理，将安排人员维修", internal_note="内部：找老王处理")
    dept = await Department.get(code="shizheng")
    await assign_department(case.id, dept.id, actor="li.operator")
    await add_note(case.id, actor="li.operator", public_note=f"如有疑问请致电 {PHONE}",
                   internal_note="内部备注不公开")
    await add_note(case.id, actor="li.operator", public_note=None, internal_note="只给员工看")
    page = await client.get(f"/cases/{code}", headers=HTML)
    assert page.status_code == 200 and page.headers["content-language"] == "zh-CN"
    text = text_of(page.text)
    assert "已派遣" in text and "路灯故障" in text and "南京东路" in text
    assert "已受理，将安排人员维修" in text and "已指派给市政道路" in text
    assert "如有疑问请致电 ***" in text
    for private in ("内部", "只给员工看", "li.operator", EMAIL, PHONE, "web:browser",
                    "31.2394", "121.4842"):
        assert private not in page.text, private
    english = (await client.get(f"/cases/{code}?lang=en", headers=HTML)).text
    assert "Dispatched" in english and "Assigned to roads and public works" in english


async def test_no_personal_data_on_any_public_page(client, other):
    code, receipt = await filed(client, contact=EMAIL, lat="31.239412", lng="121.484207",
                                description=f"请联系我 {PHONE} 或 {EMAIL}")
    await filed(other, contact=PHONE, description="南京东路100号路灯不亮很久了")
    identities = [r.identity for r in await Report.all()]
    for path in ("/", "/cases", f"/cases/{code}", receipt.url.path, "/?lang=en",
                 f"/cases/{code}?lang=en"):
        html = (await other.get(path, headers=HTML)).text
        for private in (EMAIL, PHONE, "31.239412", "31.2394", "121.4842", *identities):
            assert private not in html, (path, private)


async def test_unknown_and_odd_case_numbers_are_not_found(client):
    for code in ("GL-20991231-9999", "x" * 300, "GL-%00", "..%2F..%2Fetc", "<b>", "GL–2026"):
        response = await client.get(f"/cases/{code}", headers=HTML)
        assert response.status_code == 404, code
        assert (await client.get(f"/cases/{code}/events")).status_code == 404


async def test_a_merged_case_leads_to_the_case_that_lives_on(client, other):
    first, _ = await filed(client, category="garbage", address="黄浦区福州路1号")
    second, _ = await filed(other, category="noise", address="徐汇区漕溪北路2号")
    await merge_cases((await Case.get(code=second)).id, (await Case.get(code=first)).id,
                      actor="op")
    response = await client.get(f"/cases/{second}", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == f"/cases/{first}?merged_from={second}"
    page = await client.get(response.headers["location"], headers=HTML)
    assert f"案件 {second} 已并入本案件" in text_of(page.text)
    listing = (await client.get("/cases", headers=HTML)).text
    assert first in listing and second not in listing


async def test_only_photos_of_the_repair_are_served(client, settings):
    code, _ = await filed(client, photos=[jpeg_with_gps()])
    case = await Case.get(code=code)
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (20, 160, 20)).save(out, "PNG")
    stored = await store_photo(out.getvalue(), settings.media_dir, max_bytes=10**6,
                               max_pixels=10**6, max_side=100)
    operator = await create_user("fix.op", "operator-pass-1", "operator")
    fix = await casework.add_fix_photo(operator, code, stored, public_note="换了新灯泡")
    page = (await client.get(f"/cases/{code}", headers=HTML)).text
    [evidence] = await Photo.filter(case_id=case.id, kind="report")
    assert f'src="/photos/{fix.id}"' in page and f"/photos/{evidence.id}" not in page
    assert "新增了处置后的照片" in text_of(page) and "换了新灯泡" in page
    assert "fix.op" not in page
    served = await client.get(f"/photos/{fix.id}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    for bad in (str(evidence.id), "0", "-1", "abc", "9" * 30, "1.5"):
        assert (await client.get(f"/photos/{bad}", headers=HTML)).status_code == 404, bad


async def test_following_a_case_by_email_records_a_subscription(client, other):
    code, _ = await filed(client)
    case = await Case.get(code=code)
    page = await other.get(f"/cases/{code}", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    for _ in range(2):
        response = await other.post(f"/cases/{code}/follow", headers=HTML,
                                    data={"csrf_token": token, "email": " Fan@Example.org "})
        assert response.status_code == 303
    follower = await Person.get(email="fan@example.org")
    subs = await Subscription.filter(case_id=case.id, person_id=follower.id)
    assert [(s.reason, s.identity) for s in subs] == [("follower", "web:fan@example.org")]
    done = await other.get(response.headers["location"], headers=HTML)
    assert "我们已记下您的邮箱" in done.text and "fan@example.org" not in done.text

    for email in ("", "no-at-sign", "a@b", "x y@example.org", "x" * 300 + "@example.org"):
        bad = await other.post(f"/cases/{code}/follow", headers=HTML,
                               data={"csrf_token": token, "email": email})
        assert bad.status_code == 422 and 'id="follow-error"' in bad.text, email
    forged = await other.post(f"/cases/{code}/follow", headers=HTML,
                              data={"csrf_token": "forged", "email": "x@example.org"})
    assert forged.status_code == 403
    missing = await other.post("/cases/GL-20991231-0001/follow", headers=HTML,
                               data={"csrf_token": token, "email": "x@example.org"})
    assert missing.status_code == 404
    assert await Subscription.filter(case_id=case.id, reason="follower").count() == 1


# ---------------------------------------------------------------------------- live updates


def _events(lines, deadline: float, wanted) -> dict:
    """Read server-sent events until one `case` message satisfies `wanted`."""
    event, data = None, []
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif line == "" and data:
            message = json.loads("\n".join(data))
            if event == "case" and wanted(message):
                return message
            event, data = None, []
    raise AssertionError("no such event before the deadline")


async def test_status_changes_reach_an_open_event_stream_from_another_process(
        client, clean_db, tmp_path):
    code, _ = await filed(client)
    case = await Case.get(code=code)
    with live_server(clean_db, tmp_path, env={"GRIDLINK_SECRET_KEY": "sse-test"}) as base:
        def listen():
            with httpx.stream("GET", f"{base}/cases/{code}/events", timeout=30,
                              cookies={"gl_lang": "en"}) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["content-language"] == "en"
                lines = response.iter_lines()
                first = _events(lines, time.monotonic() + 20, lambda m: True)
                assert first["status"] == "new" and first["entries"][0]["title"] == "Reported"
                ready.set()
                return _events(lines, time.monotonic() + 20,
                               lambda m: m["status"] == "accepted")

        ready = threading.Event()
        task = asyncio.create_task(asyncio.to_thread(listen))
        await asyncio.to_thread(ready.wait, 20)
        # This test process, not the server, writes the change: the server sees it by polling.
        await change_status(case.id, Status.ACCEPTED, actor="op", public_note="马上处理",
                            internal_note="secret internal")
        message = await task
    assert message["status_label"] == "Accepted"
    assert [e["note"] for e in message["entries"]] == ["马上处理"]
    assert "secret internal" not in json.dumps(message) and "op" not in [
        e["title"] for e in message["entries"]]


async def test_the_event_stream_resumes_after_the_last_event_it_sent(client, clean_db,
                                                                     tmp_path):
    code, _ = await filed(client)
    case = await Case.get(code=code)
    await change_status(case.id, Status.ACCEPTED, actor="op", public_note="第一条")
    events = await case.events.filter(public=True).order_by("id")
    with live_server(clean_db, tmp_path) as base:
        def first_message(headers):
            with httpx.stream("GET", f"{base}/cases/{code}/events", headers=headers,
                              timeout=30) as response:
                return _events(response.iter_lines(), time.monotonic() + 20, lambda m: True)

        resumed = await asyncio.to_thread(first_message,
                                          {"Last-Event-ID": str(events[0].id)})
    assert [e["id"] for e in resumed["entries"]] == [events[-1].id]


async def test_live_updates_are_refused_beyond_the_open_streams_a_process_takes(
        client, monkeypatch):
    code, _ = await filed(client)
    monkeypatch.setattr(pages, "MAX_STREAMS", 0)
    response = await client.get(f"/cases/{code}/events")
    assert response.status_code == 503 and response.headers["retry-after"] == "60"
    page = await client.get(f"/cases/{code}", headers=HTML)  # the page itself still works
    assert page.status_code == 200 and code in page.text


async def test_a_stream_ends_when_the_browser_goes_away(app, client):
    """Driven at the ASGI level: the stream's first bytes arrive, the client disconnects, and
    the endpoint stops (long before the stream's own end) and gives its slot back."""
    code, _ = await filed(client)
    started, gone, sent = asyncio.Event(), asyncio.Event(), []

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            started.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": f"/cases/{code}/events",
             "raw_path": f"/cases/{code}/events".encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    call = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(started.wait(), pages.STREAM_LIFETIME_S)
    assert app.state.open_streams == 1
    gone.set()
    await asyncio.wait_for(call, pages.STREAM_LIFETIME_S / 2)
    assert app.state.open_streams == 0
    assert sent[0]["status"] == 200
