"""submit(): new cases, repeats, merges across reporters and datums, throttling, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.cases.models import Case, CaseEvent, Report, Status, Subscription
from portal.intake.geo import distance_m, gcj02_to_wgs84, wgs84_to_gcj02
from portal.intake.service import submit
from portal.intake.submission import InvalidSubmission, Submission, Throttled
from portal.intake.throttle import Throttle, storage_for

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def sub(reporter="tg:1", text="南京东路100号门口垃圾堆了好几天没人清运", category="garbage",
        lat=31.2394, lng=121.4842, crs="wgs84", address=None, at=T0, **kw) -> Submission:
    return Submission(reporter=reporter, channel=kw.pop("channel", "telegram"), text=text,
                      category=category, lat=lat, lng=lng, crs=crs, address=address,
                      received_at=at, **kw)


async def test_first_report_opens_a_case_with_a_public_code(settings, throttle):
    receipt = await submit(sub(), throttle=throttle, settings=settings)
    assert receipt.join == "new"
    assert receipt.case_code == "GL-20261120-0001"
    case = await Case.get(code=receipt.case_code)
    assert case.status == Status.NEW and case.report_count == 1
    assert await Subscription.filter(case=case).count() == 1
    assert await CaseEvent.filter(case=case, kind="created").exists()
    assert "GL-20261120-0001" in receipt.message


async def test_second_reporter_nearby_joins_the_case(settings, throttle):
    first = await submit(sub(), throttle=throttle, settings=settings)
    second = await submit(sub(reporter="web:a@example.org", channel="web",
                              text="南京东路100号那里垃圾满了，味道很大", lat=31.23945,
                              lng=121.48425, at=T0 + timedelta(hours=3)),
                          throttle=throttle, settings=settings)
    assert second.join == "merged"
    assert second.case_code == first.case_code
    assert second.reporter_count == 2
    assert await Subscription.filter(case_id=first.case_id).count() == 2


async def test_wechat_gcj02_point_joins_a_telegram_case_at_the_same_spot(settings, throttle):
    first = await submit(sub(), throttle=throttle, settings=settings)
    glat, glng = wgs84_to_gcj02(31.2394, 121.4842)
    assert distance_m(31.2394, 121.4842, glat, glng) > 300
    second = await submit(sub(reporter="wx:openid-1", channel="wechat", crs="gcj02",
                              lat=glat, lng=glng, text="南京东路100号垃圾堆积",
                              at=T0 + timedelta(hours=1)),
                          throttle=throttle, settings=settings)
    assert second.case_code == first.case_code
    report = await Report.get(id=second.report_id)
    assert (report.raw_lat, report.crs) == (glat, "gcj02")
    assert distance_m(report.lat, report.lng, 31.2394, 121.4842) < 1


def test_gcj02_round_trip_is_within_a_metre():
    lat, lng = 31.2304, 121.4737
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lng))
    assert distance_m(lat, lng, *back) < 1


async def test_same_problem_far_away_is_a_new_case(settings, throttle):
    first = await submit(sub(), throttle=throttle, settings=settings)
    other = await submit(sub(reporter="tg:2", lat=31.2450, lng=121.4842),
                         throttle=throttle, settings=settings)
    assert other.case_code != first.case_code and other.join == "new"


async def test_different_problem_at_the_same_spot_is_a_new_case(settings, throttle):
    first = await submit(sub(), throttle=throttle, settings=settings)
    light = await submit(sub(reporter="tg:2", category="street_light",
                             text="南京东路100号门口路灯不亮"), throttle=throttle,
                         settings=settings)
    assert light.case_code != first.case_code


async def test_a_resend_is_a_repeat_and_never_throttled(settings):
    throttle = Throttle(storage_for(""), "2/10 minutes")
    first = await submit(sub(), throttle=throttle, settings=settings)
    for n in range(4):
        again = await submit(sub(at=T0 + timedelta(minutes=n + 1)), throttle=throttle,
                             settings=settings)
        assert again.join == "repeat" and again.case_code == first.case_code
    case = await Case.get(id=first.case_id)
    assert case.report_count == 5 and case.reporter_count == 1


async def test_a_flood_is_throttled_with_a_time_to_retry(settings, state_url):
    throttle = Throttle(storage_for(state_url), "3/10 minutes",
                        namespace=f"flood-{datetime.now().timestamp()}")
    problems = [("路灯不亮", "street_light"), ("井盖松动", "manhole"), ("违章停车", "illegal_parking"),
                ("噪声扰民", "noise")]
    for n, (text, category) in enumerate(problems[:3]):
        await submit(sub(lat=31.20 + n * 0.01, text=text, category=category),
                     throttle=throttle, settings=settings)
    with pytest.raises(Throttled) as err:
        await submit(sub(lat=31.25, text=problems[3][0], category=problems[3][1],
                         language="en"), throttle=throttle, settings=settings)
    assert 60 <= err.value.retry_after <= 600
    assert "minutes" in err.value.message
    assert await Report.all().count() == 3


async def test_the_same_delivery_twice_files_once(settings, throttle):
    a = await submit(sub(external_ref="hotline:12345:1"), throttle=throttle, settings=settings)
    b = await submit(sub(external_ref="hotline:12345:1"), throttle=throttle, settings=settings)
    assert b.duplicate_delivery and b.report_id == a.report_id
    assert await Report.all().count() == 1


@pytest.mark.parametrize("bad", [
    {"category": "volcano"},
    {"text": "   "},
    {"text": "x" * 5000},
    {"lat": 91.0},
    {"lat": float("nan")},
    {"lat": None, "lng": None, "address": None},
    {"crs": "bd09"},
    {"reporter": "nobody"},
])
async def test_bad_submissions_are_refused_with_a_reason(settings, throttle, bad):
    with pytest.raises(InvalidSubmission) as err:
        await submit(sub(**bad), throttle=throttle, settings=settings)
    assert err.value.message
    assert await Report.all().count() == 0


async def test_address_only_report_finds_the_case_by_road_and_number(settings, throttle):
    first = await submit(sub(address="上海市黄浦区南京东路100号"), throttle=throttle,
                         settings=settings)
    phoned = await submit(sub(reporter="hotline:12345-2026-000001", channel="hotline",
                              lat=None, lng=None, address="黄浦区南京东路100号",
                              text="来电人反映南京东路100号门口垃圾没人清运"),
                          throttle=throttle, settings=settings)
    assert phoned.case_code == first.case_code


async def test_report_at_a_closed_case_opens_a_recurrence(settings, throttle):
    first = await submit(sub(), throttle=throttle, settings=settings)
    await Case.filter(id=first.case_id).update(status=Status.CLOSED)
    again = await submit(sub(reporter="tg:9", at=T0 + timedelta(days=12)), throttle=throttle,
                         settings=settings)
    assert again.case_code != first.case_code
    assert again.recurrence_of == first.case_code


async def test_control_characters_are_removed_and_a_nul_reporter_refused(settings, throttle):
    receipt = await submit(sub(text="南京东路100号\x00垃圾\x07堆积\n三天了"), throttle=throttle,
                           settings=settings)
    assert (await Report.get(id=receipt.report_id)).text == "南京东路100号垃圾堆积\n三天了"
    with pytest.raises(InvalidSubmission):
        await submit(sub(reporter="tg:1\x00"), throttle=throttle, settings=settings)


async def test_times_with_an_offset_are_kept_in_utc(settings, throttle):
    from zoneinfo import ZoneInfo

    local = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    first = await submit(sub(at=local), throttle=throttle, settings=settings)
    again = await submit(sub(at=local + timedelta(minutes=5)), throttle=throttle,
                         settings=settings)
    assert again.join == "repeat" and again.case_code == first.case_code
    assert first.case_code == "GL-20261120-0001"
