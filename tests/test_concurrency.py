"""Twin submissions of one problem at the same moment make one case, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from portal.cases.models import Case, Report
from portal.intake.service import submit
from portal.intake.submission import Submission, Throttled

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


async def test_simultaneous_reports_of_one_problem_make_one_case(settings, throttle):
    texts = ["福州路300号门口井盖缺了一块，很危险", "福州路300号井盖破了，有人差点踩空",
             "福州路300号门前井盖破损", "福州路300号的井盖坏了请尽快修",
             "福州路300号门口井盖缺失"]
    subs = [Submission(reporter=f"tg:{900 + n}", channel="telegram", text=text,
                       category="manhole", lat=31.2345 + n * 0.00002, lng=121.4810,
                       received_at=T0)
            for n, text in enumerate(texts)]
    receipts = await asyncio.gather(*(submit(s, throttle=throttle, settings=settings)
                                      for s in subs))
    assert len({r.case_code for r in receipts}) == 1
    case = await Case.get(code=receipts[0].case_code)
    assert case.report_count == 5 and case.reporter_count == 5
    assert await Case.all().count() == 1
    assert await Report.all().count() == 5


async def test_one_submission_delivered_twice_at_once_is_filed_once(settings, throttle):
    # A channel that retries (a webhook redelivery, a double tap) can race its own first try.
    subs = [Submission(reporter=f"tg:{950 + n}", channel="telegram", text="南京东路100号垃圾满了",
                       category="garbage", lat=31.2401, lng=121.4852, received_at=T0,
                       external_ref=f"tg-update:{n}")
            for n in range(3)]
    receipts = await asyncio.gather(*(submit(s, throttle=throttle, settings=settings)
                                      for s in subs for _twice in range(2)))
    assert len({r.report_id for r in receipts}) == 3
    assert sum(r.duplicate_delivery for r in receipts) == 3
    assert await Report.all().count() == 3


async def test_a_throttled_reporter_among_simultaneous_reports_is_refused_alone(
        settings, throttle):
    # On SQLite these share one transaction: the refusal must undo only its own report.
    first = await submit(Submission(reporter="tg:1001", channel="telegram", text="第一次报告",
                                    category="garbage", lat=31.20, lng=121.40, received_at=T0),
                         throttle=None, settings=settings)
    person = (await Report.get(id=first.report_id)).person_id
    for _ in range(5):  # the reporter's limit for ten minutes
        assert await throttle.hit(person) is None
    subs = [Submission(reporter=f"tg:{1100 + n}", channel="telegram", text=f"路灯{n}号不亮了",
                       category="street_light", lat=31.25 + n * 0.01, lng=121.45,
                       received_at=T0) for n in range(4)]
    subs.insert(2, Submission(reporter="tg:1001", channel="telegram",
                              text="河南中路88号垃圾没人清理", category="garbage",
                              lat=31.2305, lng=121.4800, received_at=T0))
    results = await asyncio.gather(*(submit(s, throttle=throttle, settings=settings)
                                     for s in subs), return_exceptions=True)
    assert isinstance(results[2], Throttled)
    filed = [r for n, r in enumerate(results) if n != 2]
    assert all(r.join == "new" for r in filed)
    assert len({r.case_code for r in filed}) == 4
    assert await Report.all().count() == 5  # the first report and these four
    assert not await Report.filter(text="河南中路88号垃圾没人清理").exists()
