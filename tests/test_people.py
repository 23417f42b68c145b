"""A person with several identities is one person to the throttle and to their cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.cases.models import Case, Identity, Person, Subscription
from portal.cases.people import IdentityError, link_identity
from portal.intake.service import person_for, submit
from portal.intake.submission import Submission, Throttled
from portal.intake.throttle import Throttle, storage_for

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
PROBLEMS = [("光复路10号路灯不亮", "street_light", 31.2450), ("天潼路20号井盖松动", "manhole", 31.2460),
            ("海宁路30号违章停车", "illegal_parking", 31.2470)]


def report(reporter: str, n: int) -> Submission:
    text, category, lat = PROBLEMS[n]
    return Submission(reporter=reporter, channel=reporter.split(":")[0].replace("tg", "telegram")
                      .replace("wx", "wechat"), text=text, category=category, lat=lat,
                      lng=121.48, received_at=T0 + timedelta(minutes=n))


async def test_throttle_counts_a_person_across_linked_channels(settings):
    throttle = Throttle(storage_for(""), "2/10 minutes", namespace="people-test")
    person = await person_for("tg:4242", "zh-CN")
    await link_identity(person, "wx:open-4242")
    await submit(report("tg:4242", 0), throttle=throttle, settings=settings)
    await submit(report("wx:open-4242", 1), throttle=throttle, settings=settings)
    with pytest.raises(Throttled):
        await submit(report("tg:4242", 2), throttle=throttle, settings=settings)


async def test_linking_an_identity_that_already_reported_moves_its_cases(settings, throttle):
    await submit(report("wx:open-77", 0), throttle=throttle, settings=settings)
    person = await person_for("tg:77", "zh-CN")
    await link_identity(person, "wx:open-77")
    assert {i.key for i in await Identity.filter(person=person)} == {"tg:77", "wx:open-77"}
    assert await Subscription.filter(person=person).count() == 1
    assert await Person.all().count() == 1


async def test_linking_keeps_the_contact_and_counts_one_reporter_once(settings):
    first = await submit(Submission(
        reporter="tg:88", channel="telegram", text="光复路10号路灯不亮", category="street_light",
        lat=31.2450, lng=121.48, phone="13800000088", received_at=T0), throttle=None,
        settings=settings)
    again = await submit(Submission(
        reporter="wx:open-88", channel="wechat", text="光复路10号路灯不亮了", category="street_light",
        lat=31.2450, lng=121.48, received_at=T0 + timedelta(minutes=1)), throttle=None,
        settings=settings)
    assert again.case_code == first.case_code and again.reporter_count == 2
    person = await person_for("wx:open-88", "zh-CN")
    await link_identity(person, "tg:88")
    assert (await Person.get(id=person.id)).phone == "13800000088"
    assert (await Case.get(code=first.case_code)).reporter_count == 1


@pytest.mark.parametrize("key", ["tg:", "nothing", "x" * 40 + ":1", "tg:" + "9" * 200])
async def test_a_malformed_identity_is_refused(clean_db, key):
    person = await person_for("tg:99", "zh-CN")
    with pytest.raises(IdentityError):
        await link_identity(person, key)
    assert await Identity.filter(person=person).count() == 1


async def test_a_later_submission_cannot_replace_the_contact_details(settings, throttle):
    first = report("web:resident@example.org", 0)
    first.phone, first.email = "13800001111", "resident@example.org"
    await submit(first, throttle=throttle, settings=settings)
    forged = report("web:resident@example.org", 1)
    forged.phone, forged.email = "13999998888", "attacker@example.org"
    await submit(forged, throttle=throttle, settings=settings)
    person = await person_for("web:resident@example.org", "zh-CN")
    assert (person.phone, person.email) == ("13800001111", "resident@example.org")
