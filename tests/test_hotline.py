"""POST /api/v1/hotline/tickets as a hotline system uses it: keys per line, idempotent batches,
one case for one problem phoned to two lines, bad batches answered with 4xx, callers' phone
numbers kept private."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from portal.cases.models import Case, Person, Report
from portal.hotline.service import category_for
from portal.staff.service import create_api_key

URL = "/api/v1/hotline/tickets"
PHONE = "13912345678"


def ticket(no="A001", line="12345", **kw) -> dict:
    at = datetime.now(UTC) - timedelta(hours=2)
    t = {
        "line": line, "ticket_no": no,
        "received_at": at.astimezone().isoformat(),
        "category_text": "垃圾堆放",
        "address": "黄浦区南京东路100号",
        "lat": 31.2394, "lng": 121.4842,
        "description": "来电人反映南京东路100号门口垃圾堆积，好几天没人清运",
        "caller_phone": PHONE,
    }
    t.update(kw)
    return {k: v for k, v in t.items() if v is not ...}


@pytest.fixture
async def keys(clean_db) -> dict[str, str]:
    return {line: (await create_api_key(f"{line} system", "hotline", line))[1]
            for line in ("12345", "12319", "962121")}


async def post(client, key: str | None, body, **headers):
    if key is not None:
        headers["X-Api-Key"] = key
    if isinstance(body, (dict, list)):
        return await client.post(URL, json=body, headers=headers)
    return await client.post(URL, content=body, headers={"Content-Type": "application/json",
                                                         **headers})


async def test_a_batch_is_filed_and_sending_it_again_creates_nothing(client, keys):
    batch = {"tickets": [
        ticket("A001"),
        ticket("A002", category_text="路灯不亮", lat=31.2300, lng=121.4700,
               address="徐汇区漕溪北路200号", description="漕溪北路200号路灯晚上不亮"),
    ]}
    first = await post(client, keys["12345"], batch)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    assert body["created"] == 2 and body["rejected"] == 0
    codes = [r["case_code"] for r in body["results"]]
    assert codes[0] != codes[1]

    again = await post(client, keys["12345"], batch)
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert [r["case_code"] for r in again.json()["results"]] == codes
    assert await Report.all().count() == 2
    assert await Case.all().count() == 2
    light = await Case.get(code=codes[1])
    assert light.category == "street_light"
    report = await Report.get(external_ref="hotline:12345:A002")
    assert report.channel == "hotline"
    assert report.identity.startswith("hotline:12345-") and report.identity.endswith("-A002")


async def test_one_problem_phoned_to_two_lines_is_one_case(client, keys):
    first = await post(client, keys["12345"], {"tickets": [ticket("2026112800017")]})
    second = await post(client, keys["12319"], {"tickets": [ticket(
        "CJ-88412", line="12319", lat=31.23942, lng=121.48422, caller_phone="021-63210000",
        description="市民反映南京东路100号门口垃圾堆积无人清运")]})
    a, b = first.json()["results"][0], second.json()["results"][0]
    assert a["status"] == "created" and b["status"] == "merged"
    assert a["case_code"] == b["case_code"]
    case = await Case.get(code=a["case_code"])
    assert case.report_count == 2 and case.reporter_count == 2


async def test_one_bad_ticket_does_not_sink_the_batch(client, keys):
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    batch = {"tickets": [
        ticket("B1"),
        ticket("B2", category="volcano"),
        ticket("B3", lat=None, lng=None, address=None),
        ticket("B4", received_at=future),
        ticket("B5", category="noise", lat=31.2500, lng=121.5000, address=None,
               description="夜间施工噪声扰民"),
    ]}
    res = await post(client, keys["12345"], batch, **{"Accept-Language": "en"})
    assert res.status_code == 200
    results = {r["ticket_no"]: r for r in res.json()["results"]}
    assert results["B1"]["status"] == "created" and results["B5"]["status"] == "created"
    for no, field in (("B2", "category"), ("B3", "address"), ("B4", "received_at")):
        assert results[no]["status"] == "rejected"
        assert results[no]["case_code"] is None
        assert results[no]["field"] == field and results[no]["error"]
    assert "volcano" in results["B2"]["error"]
    assert await Report.all().count() == 2


async def test_times_at_the_ends_of_the_calendar_are_rejected_not_crashed_on(client, keys):
    batch = {"tickets": [ticket("E1", received_at="9999-12-31T23:59:59-12:00"),
                         ticket("E2", received_at="0001-01-01T00:00:00+01:00"),
                         ticket("E3")]}
    res = await post(client, keys["12345"], batch, **{"Accept-Language": "en"})
    assert res.status_code == 200, res.text
    results = {r["ticket_no"]: r for r in res.json()["results"]}
    assert "future" in results["E1"]["error"] and "year old" in results["E2"]["error"]
    assert results["E1"]["field"] == results["E2"]["field"] == "received_at"
    assert results["E3"]["status"] == "created"


@pytest.mark.parametrize("key", [None, "", "not-a-key", "open311"])
async def test_a_missing_or_wrong_key_is_refused(client, keys, key):
    if key == "open311":
        _, key = await create_api_key("a client", "open311")
    res = await post(client, key, {"tickets": [ticket()]})
    assert res.status_code == 401
    assert "X-Api-Key" in res.json()["detail"]
    assert await Report.all().count() == 0


async def test_a_key_posts_only_its_own_line(client, keys):
    batch = {"tickets": [ticket("C1"), ticket("C2", line="12319", lat=31.2, lng=121.4)]}
    res = await post(client, keys["12345"], batch, **{"Accept-Language": "en"})
    assert res.status_code == 403
    assert "12345" in res.json()["detail"]
    assert await Report.all().count() == 0
    ok = await post(client, keys["12319"], {"tickets": [batch["tickets"][1]]})
    assert ok.json()["results"][0]["status"] == "created"


def _many(n: int) -> dict:
    return {"tickets": [ticket(f"M{i}", lat=31.1 + i * 0.0001) for i in range(n)]}


@pytest.mark.parametrize("body, status", [
    (b'{"tickets": [', 400),
    (b"\xff\xfe not utf-8", 400),
    (b"", 400),
    ({"tickets": "A001"}, 422),
    ([ticket()], 422),
    ({"tickets": []}, 422),
    ({"tickets": [ticket()], "extra": 1}, 422),
    ({"tickets": ["A001"]}, 422),
    ({"tickets": [ticket(lat="north")]}, 422),
    ({"tickets": [ticket(description=42)]}, 422),
    ({"tickets": [ticket(description=None)]}, 422),
    ({"tickets": [ticket(ticket_no=None)]}, 422),
    ({"tickets": [ticket(ticket_no="A:1")]}, 422),
    ({"tickets": [ticket(line="110")]}, 422),
    ({"tickets": [ticket(description="x" * 2001)]}, 422),
    ({"tickets": [ticket(description="垃圾\x00堆积")]}, 422),
    ({"tickets": [ticket(address="南京东路\x00100号")]}, 422),
    ({"tickets": [ticket(caller_phone="call me maybe")]}, 422),
    ({"tickets": [ticket(lattitude=31.2)]}, 422),
    ({"tickets": [ticket(received_at="2026-11-28 09:30")]}, 422),
    ({"tickets": [ticket(received_at="2026-11-28T09:30:00")]}, 422),
    ({"tickets": [ticket(received_at="yesterday")]}, 422),
    ({"tickets": [ticket(received_at=1764300000)]}, 422),
    ({"tickets": [ticket(received_at="2026-02-30T09:30:00+08:00")]}, 422),
    ({"tickets": [ticket(lat=95.0)]}, 422),
    ({"tickets": [ticket(lng=-181.0)]}, 422),
    ({"tickets": [ticket(lng=None)]}, 422),
    (b'{"tickets": [{"line": "12345", "ticket_no": "N1", "received_at": '
     b'"2026-11-28T09:30:00+08:00", "address": "x", "description": "d", "lat": NaN, '
     b'"lng": 121.4}]}', 422),
    (_many(501), 422),
])
async def test_a_malformed_batch_is_refused_and_never_echoes_the_phone(client, keys, body,
                                                                       status):
    res = await post(client, keys["12345"], body)
    assert res.status_code == status, res.text
    assert res.json()["detail"]
    assert PHONE not in res.text
    assert await Report.all().count() == 0


async def test_each_problem_is_named_in_the_senders_language(client, keys):
    body = {"tickets": [ticket("A1", description="x" * 2001, lat=95.0, lattitude=31.2,
                               received_at="2026-11-28T09:30:00", address="南京东路\x01")]}
    zh = await post(client, keys["12345"], body)
    assert zh.status_code == 422
    said = {e["loc"]: e["message"] for e in zh.json()["errors"]}
    assert said == {
        "tickets.0.received_at": "请写明时区，例如 +08:00。",
        "tickets.0.lat": "此处的数值不能大于 90。",
        "tickets.0.address": "不允许使用控制字符。",
        "tickets.0.description": "此处最多 2000 个字符。",
        "tickets.0.lattitude": "热线工单中没有这个字段。",
    }
    en = await post(client, keys["12345"], body, **{"Accept-Language": "en"})
    said = {e["loc"]: e["message"] for e in en.json()["errors"]}
    assert said["tickets.0.lat"] == "Send a number of at most 90."
    assert said["tickets.0.description"] == "Send at most 2000 characters here."
    half = await post(client, keys["12345"], {"tickets": [ticket("A2", lng=None)]})
    assert [e["message"] for e in half.json()["errors"]] == ["请同时提供 lat 和 lng，或都不提供。"]
    empty = await post(client, keys["12345"], {"tickets": []})
    assert [e["message"] for e in empty.json()["errors"]] == ["至少发送 1 张工单。"]
    empty = await post(client, keys["12345"], {"tickets": []}, **{"Accept-Language": "en"})
    assert [e["message"] for e in empty.json()["errors"]] == ["Send 1 or more tickets."]


async def test_validation_errors_say_which_ticket_and_field(client, keys):
    res = await post(client, keys["12345"], {"tickets": [ticket("ok"),
                                                         ticket("bad", lat=95.0)]})
    assert res.status_code == 422
    assert [e["loc"] for e in res.json()["errors"]] == ["tickets.1.lat"]


async def test_a_body_over_the_size_bound_is_refused(client, keys):
    res = await post(client, keys["12345"], b" " * (8 * 1024 * 1024 + 1))
    assert res.status_code == 413
    assert await Report.all().count() == 0


async def test_numbers_for_line_and_ticket_are_taken_as_text(client, keys):
    res = await post(client, keys["962121"], {"tickets": [ticket(7001, line=962121)]})
    assert res.json()["results"][0] == {
        "ticket_no": "7001", "line": "962121", "status": "created",
        "case_code": res.json()["results"][0]["case_code"], "error": None, "field": None}
    assert await Report.filter(external_ref="hotline:962121:7001").exists()


async def test_the_caller_phone_is_kept_privately_and_never_logged(client, keys, caplog):
    caplog.set_level(logging.INFO)
    res = await post(client, keys["12345"], {"tickets": [ticket(caller_phone="139 1234 5678")]})
    assert res.status_code == 200
    assert PHONE not in res.text and "139 1234 5678" not in res.text
    report = await Report.get(external_ref="hotline:12345:A001").prefetch_related("person")
    assert report.person.phone == PHONE
    assert PHONE not in json.dumps(report.extra, ensure_ascii=False)
    assert await Person.filter(phone=PHONE).count() == 1
    assert "hotline 12345 batch: 1 tickets, 1 created" in caplog.text
    assert PHONE not in caplog.text and "139 1234 5678" not in caplog.text


async def test_free_text_category_from_the_description_when_no_category_is_sent(client, keys):
    res = await post(client, keys["12345"], {"tickets": [ticket(
        "D1", category_text=..., description="小区门口井盖缺了一块，很危险")]})
    case = await Case.get(code=res.json()["results"][0]["case_code"])
    assert case.category == "manhole"


@pytest.mark.parametrize("text, key", [
    ("路灯不亮", "street_light"),
    ("井盖破损", "manhole"),
    ("夜间施工噪音", "noise"),
    ("噪声扰民", "noise"),
    ("违停", "illegal_parking"),
    ("乱停车", "illegal_parking"),
    ("生活垃圾", "garbage"),
    ("流动摊贩", "street_vendor"),
    ("违法搭建", "illegal_construction"),
    ("水管漏水", "water_leak"),
    ("路面积水", "water_leak"),
    ("绿化养护", "greenery"),
    ("树木倒伏", "greenery"),
    ("路面破损", "road_damage"),
    ("马路上有个坑", "road_damage"),
    ("其他问题", None),
])
def test_free_text_categories_map_to_our_keys(text, key):
    assert category_for(text) == key
