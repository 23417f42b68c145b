"""Open311 GeoReport v2 under /open311/v2/, through HTTP on the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import uuid
import zlib
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from PIL import Image

from portal.cases.categories import CATEGORIES
from portal.cases.models import Case, CaseEvent, Person, Photo, Report, Status
from portal.cases.service import merge_cases, utcnow
from portal.intake.throttle import Throttle, storage_for
from portal.open311 import service as open311
from portal.photos import store_photo
from portal.staff.service import create_api_key
from tests.photos import has_exif_gps, jpeg_with_gps

V2 = "/open311/v2"
HERE = {"lat": "31.2394", "long": "121.4842"}
TEXT = "南京东路100号门口垃圾堆了好几天没人清运"


@pytest.fixture
async def key(clean_db) -> str:
    return (await create_api_key("client-a", "open311"))[1]


@pytest.fixture
async def other_key(clean_db) -> str:
    return (await create_api_key("client-b", "open311"))[1]


def fields(key: str, **kw) -> dict:
    data = {"api_key": key, "service_code": "garbage", "description": TEXT,
            "device_id": "device-1", **HERE}
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


async def post(client, key, fmt="json", headers=None, **kw):
    return await client.post(f"{V2}/requests.{fmt}", data=fields(key, **kw), headers=headers)


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body[0]["code"] == status
    assert len(body[0]["description"]) > 10
    return body[0]["description"]


def parse_xml(response) -> ET.Element:
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def png_bomb(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side pixels (900 megapixels) that is only a few KB long."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed)
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------- services


async def test_discovery_says_where_the_api_is_and_how_to_get_a_key(client, app):
    found = (await client.get("/open311/discovery.json")).json()
    [endpoint] = found["endpoints"]
    assert endpoint["url"] == "http://127.0.0.1:8000/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["application/json", "application/xml"]
    assert endpoint["type"] == "production"
    assert found["changeset"] == endpoint["changeset"] == open311.SERVICES_CHANGESET
    assert "API 密钥" in found["key_service"] and "管理员" in found["contact"]
    # What the discovery names answers.
    listed = await client.get(endpoint["url"].removeprefix("http://127.0.0.1:8000")
                              + "/services.json")
    assert listed.status_code == 200

    app.state.settings = app.state.settings.model_copy(update={
        "public_base_url": "https://grid.example.gov.cn/", "open311_contact": "12345@example.gov.cn"})
    root = parse_xml(await client.get("/open311/discovery.xml", headers={"Accept-Language": "en"}))
    assert root.tag == "discovery"
    assert root.findtext("endpoints/endpoint/url") == "https://grid.example.gov.cn/open311/v2"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "application/json", "application/xml"]
    assert root.findtext("contact") == "12345@example.gov.cn"
    assert "API key" in root.findtext("key_service")
    assert_error(await client.get("/open311/discovery.html"), 404)


def test_the_discovery_changeset_moves_with_the_service_list():
    """Clients cache the service list until the changeset moves: a change to the categories
    (their codes, names, hints, groups) must come with a new SERVICES_CHANGESET, and then with
    the new digest here."""
    listed = [open311.list_services(lang) for lang in ("zh-CN", "en")]
    listed.append([open311.service_definition(c.key) for c in CATEGORIES])
    digest = hashlib.sha256(json.dumps(listed, ensure_ascii=False, sort_keys=True).encode())
    assert (open311.SERVICES_CHANGESET, digest.hexdigest()[:16]) == (
        "2026-11-28T00:00:00Z", "40f81320668f6bc8"), "the service list changed: move SERVICES_CHANGESET"


async def test_services_list_all_categories_in_chinese_by_default(client):
    response = await client.get(f"{V2}/services.json")
    assert response.status_code == 200
    services = response.json()
    assert [s["service_code"] for s in services] == [c.key for c in CATEGORIES]
    garbage = services[0]
    assert garbage["service_name"] == "垃圾堆放 / 环境卫生"
    assert garbage["description"] == CATEGORIES[0].hint_zh
    assert garbage["metadata"] is False and garbage["type"] == "realtime"
    assert garbage["keywords"] and garbage["group"]


async def test_services_in_english_by_header_or_locale(client):
    by_header = (await client.get(f"{V2}/services.json",
                                  headers={"Accept-Language": "en-US,en;q=0.9"})).json()
    by_param = (await client.get(f"{V2}/services.json", params={"locale": "en"})).json()
    assert by_header == by_param
    assert by_header[3]["service_name"] == "street light out"
    assert by_header[3]["description"] == CATEGORIES[3].hint_en


async def test_services_xml_is_well_formed(client):
    root = parse_xml(await client.get(f"{V2}/services.xml"))
    assert root.tag == "services"
    items = root.findall("service")
    assert len(items) == len(CATEGORIES)
    assert items[0].findtext("service_code") == "garbage"
    assert items[0].findtext("metadata") == "false"


async def test_service_definition_and_unknown_service(client):
    response = await client.get(f"{V2}/services/manhole.json")
    assert response.json() == {"service_code": "manhole", "attributes": []}
    root = parse_xml(await client.get(f"{V2}/services/manhole.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "manhole"
    assert "volcano" in assert_error(await client.get(f"{V2}/services/volcano.json"), 404)
    missing = await client.get(f"{V2}/services/volcano.xml")
    assert missing.status_code == 404
    assert parse_xml(missing).findtext("error/code") == "404"


@pytest.mark.parametrize("path", ["services.yaml", "requests.yaml", "services/garbage.csv",
                                  "requests/GL-20261128-0001.html"])
async def test_unknown_format_is_not_found(client, path):
    assert ".json" in assert_error(await client.get(f"{V2}/{path}"), 404)


async def test_unknown_format_on_post_is_not_found(client, key):
    assert_error(await post(client, key, fmt="yaml"), 404)
    assert await Case.all().count() == 0


# -------------------------------------------------------------------------- posting requests


async def test_post_creates_a_case_and_keeps_contact_details_private(client, key):
    response = await post(client, key, email="Resident@Example.org", phone="138 0013 8000",
                          first_name="Wei", last_name="Zhang", account_id="acct-7",
                          media_url="https://photos.example.org/p/1.jpg",
                          **{"attribute[bins]": "3"})
    assert response.status_code == 200, response.text
    [answer] = response.json()
    code = answer["service_request_id"]
    assert code.startswith("GL-") and code in answer["service_notice"]
    assert answer["account_id"] == "acct-7"
    case = await Case.get(code=code)
    assert case.category == "garbage" and case.status == Status.NEW
    report = await Report.get(case=case)
    assert report.channel == "open311" and report.identity == "web:resident@example.org"
    assert report.extra["media_url"] == "https://photos.example.org/p/1.jpg"
    assert report.extra["attributes"] == {"bins": "3"}
    person = await Person.get(id=report.person_id)
    assert (person.email, person.phone) == ("resident@example.org", "13800138000")


async def test_device_id_becomes_an_open311_identity(client, key):
    response = await post(client, key)
    report = await Report.get(case__code=response.json()[0]["service_request_id"])
    assert report.identity.startswith("open311:") and report.identity.endswith(":device-1")


async def test_post_answers_xml(client, key):
    response = await post(client, key, fmt="xml", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    root = parse_xml(response)
    assert root.tag == "service_requests"
    code = root.findtext("request/service_request_id")
    assert await Case.filter(code=code).exists()
    assert "received" in root.findtext("request/service_notice")


async def test_same_problem_from_another_client_is_merged_with_a_notice(client, key, other_key):
    first = (await post(client, key)).json()[0]
    second = await post(client, other_key, device_id=None, email="b@example.org",
                        description="南京东路100号那里垃圾满了，味道很大",
                        lat="31.23945", long="121.48425", headers={"Accept-Language": "en"})
    assert second.status_code == 200, second.text
    [answer] = second.json()
    assert answer["service_request_id"] == first["service_request_id"]
    assert "joined" in answer["service_notice"]
    assert first["service_request_id"] in answer["service_notice"]
    case = await Case.get(code=first["service_request_id"])
    assert case.report_count == 2 and case.reporter_count == 2


async def test_a_flood_from_one_reporter_is_throttled_with_retry_after(client, key):
    problems = [("garbage", "垃圾房满溢"), ("street_light", "路灯不亮"), ("noise", "夜间施工噪声"),
                ("road_damage", "路面有大坑"), ("greenery", "树木倒伏挡路"),
                ("manhole", "井盖缺失很危险")]
    for n, (code, text) in enumerate(problems[:5]):
        ok = await post(client, key, service_code=code, description=f"{text}，编号{n}",
                        lat=str(31.20 + n * 0.02), long="121.45")
        assert ok.status_code == 200, ok.text
    code, text = problems[5]
    refused = await post(client, key, service_code=code, description=text, lat="31.35",
                         long="121.45", headers={"Accept-Language": "en"})
    message = assert_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert "try again" in message
    assert await Case.all().count() == 5


async def test_a_throttled_xml_post_answers_xml(app, client, key):
    app.state.throttle = Throttle(storage_for(""), "1/minute", namespace=uuid.uuid4().hex)
    assert (await post(client, key, fmt="xml")).status_code == 200
    refused = await post(client, key, fmt="xml", service_code="noise", description="夜间噪声",
                         lat="31.30")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert parse_xml(refused).findtext("error/code") == "429"


BAD = [
    ({"lat": "abc"}, 400, "lat"),
    ({"lat": "999"}, 400, "lat"),
    ({"long": "-181"}, 400, "long"),
    ({"lat": "NaN"}, 400, "lat"),
    ({"long": "inf"}, 400, "long"),
    ({"lat": "1e400"}, 400, "lat"),
    ({"long": None}, 400, "long"),
    ({"lat": None, "long": None}, 400, "address_string"),
    ({"description": "x" * 2001}, 400, "2000"),
    ({"description": "   "}, 400, "description"),
    ({"description": None}, 400, "description"),
    ({"service_code": "volcano"}, 404, "volcano"),
    ({"service_code": None}, 400, "service_code"),
    ({"device_id": None}, 400, "email"),
    ({"email": "not-an-address"}, 400, "email"),
    ({"phone": "call me"}, 400, "phone"),
    ({"device_id": "bad\x01id"}, 400, "device_id"),
    ({"media_url": "ftp://example.org/a.jpg"}, 400, "media_url"),
    ({"media_url": "https://example.org/\x00"}, 400, "media_url"),
    ({"email": "a\x00b@example.org"}, 400, "email"),
    ({"account_id": "a\x00b"}, 400, "account_id"),
    ({"address_string": "路" * 301, "lat": None, "long": None}, 400, "address_string"),
]


@pytest.mark.parametrize(("change", "status", "mentions"), BAD)
async def test_bad_fields_are_refused_with_a_message(client, key, change, status, mentions):
    message = assert_error(await post(client, key, headers={"Accept-Language": "en"}, **change),
                           status)
    assert mentions in message
    assert await Case.all().count() == 0


async def test_address_only_request_is_taken(client, key):
    response = await post(client, key, lat=None, long=None,
                          address_string="上海市黄浦区南京东路100号")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("api_key", [None, "", "not-a-key", "x" * 500])
async def test_posting_needs_a_valid_open311_key(client, api_key):
    message = assert_error(await post(client, api_key), 403)
    assert "api_key" in message
    assert await Case.all().count() == 0


async def test_a_hotline_key_is_not_an_open311_key(client):
    _, hotline = await create_api_key("12345", "hotline", "12345")
    assert_error(await post(client, hotline), 403)


async def test_errors_of_xml_endpoints_are_xml(client, key):
    refused = await post(client, key, fmt="xml", lat="abc")
    assert refused.status_code == 400
    error = parse_xml(refused).find("error")
    assert error.findtext("code") == "400" and "lat" in error.findtext("description")


async def test_a_body_that_is_not_a_form_is_refused(client, key):
    response = await client.post(f"{V2}/requests.json", json=fields(key))
    assert "form" in assert_error(response, 415)


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"service_code=garbage"),
    ("multipart/form-data; boundary=xyz", b"garbage that is no multipart"),
    ("multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data; name="service_code"\r\n\r\ngarbage'),
    ("multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data\r\n\r\ngarbage\r\n--xyz--\r\n'),
])
async def test_broken_multipart_is_refused(client, content_type, body):
    response = await client.post(f"{V2}/requests.json", content=body,
                                 headers={"Content-Type": content_type})
    assert_error(response, 400)


async def test_an_oversized_body_is_refused_before_it_is_read(client, key, settings):
    settings.max_photo_bytes = 10_000
    settings.max_photos = 1
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("a.jpg", b"\xff" * 200_000, "image/jpeg")})
    assert "请求内容过大" in assert_error(response, 413)
    assert await Case.all().count() == 0


# ------------------------------------------------------------------------------------ photos


async def test_photo_posted_with_the_request_is_stored_without_exif(client, key, settings):
    photo = jpeg_with_gps(size=(120, 80))
    assert has_exif_gps(photo)
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("gps.jpg", photo, "image/jpeg")})
    assert response.status_code == 200, response.text
    case = await Case.get(code=response.json()[0]["service_request_id"])
    [stored] = await Photo.filter(case=case)
    data = (settings.media_dir / stored.path).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (120, 80)
        assert not img.getexif() and "exif" not in img.info
    assert b"Exif" not in data and b"SecretCam" not in data


async def test_a_jpeg_comment_and_xmp_do_not_survive_the_re_encoding(client, key, settings):
    img = Image.new("RGB", (90, 60), (40, 40, 200))
    out = io.BytesIO()
    img.save(out, "JPEG", comment=b"owner Zhang 13912345678",
             xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS 31.2394,121.4842</x:xmpmeta>')
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("c.jpg", out.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text
    [stored] = await Photo.filter(case__code=response.json()[0]["service_request_id"])
    data = (settings.media_dir / stored.path).read_bytes()
    assert b"13912345678" not in data and b"31.2394" not in data
    with Image.open(io.BytesIO(data)) as kept:
        assert "comment" not in kept.info and "xmp" not in kept.info


async def test_photo_added_to_an_own_request_later(client, key, other_key, settings):
    code = (await post(client, key)).json()[0]["service_request_id"]
    upload = {"media": ("gps.jpg", jpeg_with_gps(), "image/jpeg")}
    foreign = await client.post(f"{V2}/requests/{code}/media.json", data={"api_key": other_key},
                                files=upload)
    assert_error(foreign, 404)
    assert_error(await client.post(f"{V2}/requests/{code}/media.json",
                                   data={"api_key": "wrong"}, files=upload), 403)
    assert_error(await client.post(f"{V2}/requests/GL-20000101-0001/media.json",
                                   data={"api_key": key}, files=upload), 404)
    added = await client.post(f"{V2}/requests/{code}/media.json", data={"api_key": key},
                              files=upload)
    assert added.status_code == 200, added.text
    assert added.json()[0]["service_request_id"] == code
    [stored] = await Photo.filter(case__code=code)
    assert stored.kind == "report"
    with Image.open(settings.media_dir / stored.path) as img:
        assert not img.getexif()


async def test_a_decompression_bomb_is_refused(client, key, settings):
    bomb = png_bomb()
    assert len(bomb) < 200_000
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("bomb.png", bomb, "image/png")})
    assert_error(response, 400)
    assert await Case.all().count() == 0
    assert not settings.media_dir.exists() or not any(settings.media_dir.rglob("*.jpg"))


async def test_a_file_that_is_no_image_is_refused(client, key):
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("notes.txt", b"just some text", "text/plain")},
                                 headers={"Accept-Language": "en"})
    assert "photo" in assert_error(response, 400)
    assert await Case.all().count() == 0


async def test_an_oversized_photo_is_refused(client, key, settings):
    settings.max_photo_bytes = 20_000
    response = await client.post(f"{V2}/requests.json", data=fields(key),
                                 files={"media": ("big.jpg", b"\xff" * 30_000, "image/jpeg")},
                                 headers={"Accept-Language": "en"})
    assert "19 KB" in assert_error(response, 413)


async def test_too_many_photos_are_refused(client, key, settings):
    photo = jpeg_with_gps()
    files = [("media", (f"{n}.jpg", photo, "image/jpeg")) for n in range(4)]
    response = await client.post(f"{V2}/requests.json", data=fields(key), files=files)
    assert_error(response, 400)


async def test_media_as_a_text_field_is_refused(client, key):
    response = await post(client, key, media="https://example.org/a.jpg",
                          headers={"Accept-Language": "en"})
    assert "media_url" in assert_error(response, 400)


# -------------------------------------------------------------------------- reading requests


async def _three(client, key) -> dict[str, str]:
    codes = {}
    for n, (service, text) in enumerate([("garbage", TEXT), ("street_light", "路灯不亮"),
                                         ("noise", "夜间施工噪声")]):
        answer = await post(client, key, service_code=service, description=text,
                            device_id=f"dev-{n}", lat=str(31.20 + n * 0.02))
        codes[service] = answer.json()[0]["service_request_id"]
    return codes


async def test_get_requests_filters(client, key):
    codes = await _three(client, key)
    await Case.filter(code=codes["street_light"]).update(status=Status.CLOSED)
    await Case.filter(code=codes["noise"]).update(status=Status.REJECTED)

    async def ids(**params) -> set[str]:
        response = await client.get(f"{V2}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    assert await ids() == set(codes.values())
    assert await ids(status="open") == {codes["garbage"]}
    assert await ids(status="closed") == {codes["street_light"], codes["noise"]}
    assert await ids(status="open,closed") == set(codes.values())
    assert await ids(service_code="street_light,noise") == {codes["street_light"], codes["noise"]}
    assert await ids(service_request_id=f"{codes['noise']}, {codes['garbage']},GL-0") == {
        codes["noise"], codes["garbage"]}
    now = utcnow()
    assert await ids(start_date=(now + timedelta(hours=1)).isoformat()) == set()
    assert await ids(start_date=(now - timedelta(hours=1)).isoformat(),
                     end_date=(now + timedelta(hours=1)).isoformat()) == set(codes.values())
    assert await ids(end_date=(now - timedelta(days=1)).isoformat()) == set()
    first = await ids(page_size=2)
    second = await ids(page_size=2, page=2)
    assert len(first) == 2 and len(second) == 1 and first | second == set(codes.values())
    closed = (await client.get(f"{V2}/requests.json",
                               params={"service_code": "noise"})).json()[0]
    assert closed["status"] == "closed"


@pytest.mark.parametrize("params, status", [
    ({"status": "pending"}, 400),
    ({"service_code": "garbage,volcano"}, 404),
    ({"start_date": "yesterday"}, 400),
    ({"start_date": "2026-11-20T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, 400),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, 400),
    ({"start_date": "0001-01-01T00:00:00"}, 400),
    ({"end_date": "9999-12-31T23:59:59-12:00"}, 400),
    ({"start_date": "9999-12-01T00:00:00"}, 400),
    ({"page": "0"}, 400),
    ({"page_size": "1000"}, 400),
    ({"page": "many"}, 400),
    ({"service_request_id": ",".join(f"GL-20261128-{n:04d}" for n in range(201))}, 400),
])
async def test_bad_filters_are_refused_with_a_message(client, params, status):
    assert_error(await client.get(f"{V2}/requests.json", params=params), status)


async def test_single_request_json_and_xml(client, key):
    code = (await post(client, key)).json()[0]["service_request_id"]
    [record] = (await client.get(f"{V2}/requests/{code}.json")).json()
    assert record["service_request_id"] == code and record["status"] == "open"
    assert record["service_code"] == "garbage" and record["service_name"] == "垃圾堆放 / 环境卫生"
    assert record["requested_datetime"].endswith("+08:00")
    root = parse_xml(await client.get(f"{V2}/requests/{code}.xml",
                                      headers={"Accept-Language": "en"}))
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == code
    assert root.findtext("request/service_name") == "garbage"
    assert root.findtext("request/lat") == "31.239"


async def test_ids_with_control_characters_are_simply_not_found(client, key):
    code = (await post(client, key, **{"attribute[a\x00b]": "x\x00y"})).json()[0][
        "service_request_id"]
    assert_error(await client.get(f"{V2}/requests/GL%00.json"), 404)
    found = await client.get(f"{V2}/requests.json",
                             params={"service_request_id": f"GL\x00,{code}\n"})
    assert [r["service_request_id"] for r in found.json()] == [code]


async def test_unknown_request_is_not_found(client):
    assert "GL-20000101-0001" in assert_error(
        await client.get(f"{V2}/requests/GL-20000101-0001.json"), 404)
    missing = await client.get(f"{V2}/requests/GL-20000101-0001.xml")
    assert missing.status_code == 404 and parse_xml(missing).findtext("error/code") == "404"


async def test_a_merged_request_reads_as_its_master(client, key):
    codes = await _three(client, key)
    master = await Case.get(code=codes["garbage"])
    source = await Case.get(code=codes["street_light"])
    await merge_cases(source.id, master.id, actor="operator")
    await Case.filter(id=master.id).update(status=Status.CLOSED)
    [record] = (await client.get(f"{V2}/requests/{source.code}.json",
                                 headers={"Accept-Language": "en"})).json()
    assert record["service_request_id"] == source.code
    assert record["status"] == "closed"
    assert master.code in record["service_notice"]
    listed = {r["service_request_id"] for r in
              (await client.get(f"{V2}/requests.json")).json()}
    assert source.code not in listed and master.code in listed


async def test_status_notes_and_department_are_published(client, key):
    code = (await post(client, key)).json()[0]["service_request_id"]
    case = await Case.get(code=code)
    from portal.cases.models import Department
    from portal.cases.service import assign_department, change_status

    await change_status(case.id, Status.ACCEPTED, actor="operator",
                        public_note="已立案，将安排清运", internal_note="内部：联系物业")
    await assign_department(case.id, (await Department.get(code="shirong")).id, actor="operator")
    [record] = (await client.get(f"{V2}/requests/{code}.json")).json()
    assert record["status_notes"] == "已立案，将安排清运"
    assert record["agency_responsible"] == "市容环卫"
    assert "内部" not in (await client.get(f"{V2}/requests/{code}.json")).text


async def test_a_phone_number_or_e_mail_in_a_staff_note_is_masked_when_published(client, key):
    code = (await post(client, key)).json()[0]["service_request_id"]
    from portal.cases.service import add_note

    await add_note((await Case.get(code=code)).id, actor="operator", internal_note=None,
                   public_note="已联系报告人 139-1234-5678（zhang.wei@example.org），明日清运")
    for fmt in ("json", "xml"):
        page = (await client.get(f"{V2}/requests/{code}.{fmt}")).text
        assert "明日清运" in page
        assert "139-1234-5678" not in page and "zhang.wei@example.org" not in page


async def test_only_photos_of_the_repair_are_published(client, key, settings):
    upload = {"media": ("gps.jpg", jpeg_with_gps(), "image/jpeg")}
    response = await client.post(f"{V2}/requests.json", data=fields(key), files=upload)
    code = response.json()[0]["service_request_id"]
    [evidence] = await Photo.filter(case__code=code)
    [record] = (await client.get(f"{V2}/requests/{code}.json")).json()
    assert record["media_url"] is None
    assert_error(await client.get(f"{V2}/media/{evidence.id}.jpg"), 404)

    img = Image.new("RGB", (60, 40), (20, 160, 20))
    out = io.BytesIO()
    img.save(out, "PNG")
    stored = await store_photo(out.getvalue(), settings.media_dir, max_bytes=10**6,
                               max_pixels=10**6, max_side=100)
    case = await Case.get(code=code)
    fix = await Photo.create(case=case, path=stored.path, width=stored.width,
                             height=stored.height, size=stored.size, kind="fix")
    [record] = (await client.get(f"{V2}/requests/{code}.json")).json()
    assert record["media_url"].endswith(f"/open311/v2/media/{fix.id}.jpg")
    served = await client.get(record["media_url"].split("127.0.0.1:8000", 1)[1])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content == (settings.media_dir / stored.path).read_bytes()


async def test_personal_data_never_appears_in_get_responses(client, key):
    secret = {"email": "zhang.wei@example.org", "phone": "13912345678", "first_name": "Wei",
              "last_name": "Zhangsan", "device_id": "device-SECRET-42",
              "account_id": "account-SECRET-7", "address_id": "addr-SECRET-9"}
    response = await post(client, key, lat="31.239412", long="121.484237",
                          address_string="上海市黄浦区南京东路100号3号楼502室",
                          description="南京东路100号门口垃圾堆积，联系电话 139-1234-5678，"
                                      "邮箱 zhang.wei@example.org", **secret)
    code = response.json()[0]["service_request_id"]
    event_kinds = await CaseEvent.filter(case__code=code).values_list("kind", flat=True)
    assert "created" in event_kinds
    pages = [
        await client.get(f"{V2}/requests.json"),
        await client.get(f"{V2}/requests.xml"),
        await client.get(f"{V2}/requests/{code}.json"),
        await client.get(f"{V2}/requests/{code}.xml"),
        await client.get(f"{V2}/requests.json", params={"service_request_id": code}),
    ]
    for page in pages:
        assert page.status_code == 200 and code in page.text
        for value in [*secret.values(), "139-1234-5678", "31.239412", "121.484237",
                      "31.2394", "121.4842", "502室", "3号楼"]:
            assert value not in page.text, (value, page.request.url)
    [record] = pages[2].json()
    assert (record["lat"], record["long"]) == (31.239, 121.484)
    assert record["address"] == "南京东路"
    assert "南京东路100号门口垃圾堆积" in record["description"]


# --------------------------------------------------------------------------------- the schema


async def test_the_endpoints_are_in_the_openapi_schema_with_form_bodies(client):
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/open311/v2/services.{fmt}", "/open311/v2/services/{service_code}.{fmt}",
                 "/open311/v2/requests.{fmt}", "/open311/v2/requests/{service_request_id}.{fmt}",
                 "/open311/v2/requests/{service_request_id}/media.{fmt}"):
        assert path in paths
    body = paths["/open311/v2/requests.{fmt}"]["post"]["requestBody"]["content"]
    form = body["application/x-www-form-urlencoded"]["schema"]
    assert {"service_code", "lat", "long", "address_string", "email", "device_id",
            "account_id", "phone", "description", "media_url", "api_key"} <= set(form["properties"])
    assert body["multipart/form-data"]["schema"]["properties"]["media"]["type"] == "array"
    post_responses = paths["/open311/v2/requests.{fmt}"]["post"]["responses"]
    assert {"200", "400", "403", "404", "413", "429"} <= set(post_responses)
    assert "application/xml" in post_responses["200"]["content"]


async def test_a_streamed_upload_is_cut_off_at_the_bound(client, key, settings):
    settings.max_photo_bytes = 10_000
    settings.max_photos = 1
    sent = []

    async def endless():
        yield (f'--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n{key}\r\n'
               '--b\r\nContent-Disposition: form-data; name="media"; filename="a.jpg"\r\n'
               'Content-Type: image/jpeg\r\n\r\n').encode()
        for _ in range(10_000):
            sent.append(1)
            yield b"\xff" * 1000

    response = await client.post(f"{V2}/requests.json", content=endless(),
                                 headers={"Content-Type": "multipart/form-data; boundary=b",
                                          "Accept-Language": "en"})
    assert "too large" in assert_error(response, 413)
    assert len(sent) < 1000
    assert await Case.all().count() == 0


async def test_an_overlong_field_is_refused(client, key):
    response = await post(client, key, description="路" * 20_000,
                          headers={"Accept-Language": "en"})
    assert "2000" in assert_error(response, 400)
