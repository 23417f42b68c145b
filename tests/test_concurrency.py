"""Twin submissions of one problem at the same moment make one case, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from portal.cases.models import Case, Report
from portal.intake.service import submit
from portal.intake.submission import Submission

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
