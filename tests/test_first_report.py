"""A first report creates its reporter in the same commit as the report itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from portal.cases.models import Identity, Person, Report
from portal.intake.service import submit
from portal.intake.submission import Submission, Throttled
from portal.intake.throttle import Throttle, storage_for

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def first_report(n: int, reporter: str = "wx:first-time") -> Submission:
    return Submission(reporter=reporter, channel="wechat", category="street_light",
                      text=f"长乐路{100 + n * 200}号门口路灯不亮", lat=31.2200 + n * 0.01,
                      lng=121.4500, received_at=T0)


async def test_a_first_report_makes_the_person_and_the_case(settings, throttle):
    receipt = await submit(first_report(0), throttle=throttle, settings=settings)
    ident = await Identity.get(key="wx:first-time").select_related("person")
    report = await Report.get(id=receipt.report_id)
    assert report.person_id == ident.person.id
    assert await Person.all().count() == 1


async def test_two_first_reports_of_one_identity_at_once_make_one_person(settings, throttle):
    receipts = await asyncio.gather(*(submit(first_report(n), throttle=throttle,
                                             settings=settings) for n in range(2)))
    assert len({r.case_code for r in receipts}) == 2
    assert await Person.all().count() == 1
    assert await Identity.filter(key="wx:first-time").count() == 1
    assert {r.person_id for r in await Report.all()} == {
        (await Identity.get(key="wx:first-time")).person_id}


async def test_a_first_report_counts_towards_the_throttle(settings):
    throttle = Throttle(storage_for(""), "1/10 minutes", namespace="first-report")
    await submit(first_report(0), throttle=throttle, settings=settings)
    with pytest.raises(Throttled):
        await submit(first_report(1), throttle=throttle, settings=settings)
    assert await Report.all().count() == 1
