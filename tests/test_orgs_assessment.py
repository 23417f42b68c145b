"""Assessment of contracted organisations: the indicators on real rows, n/a rules and bands,
versioned sets, publishing once, elimination and its effect on bids and claims, appeals, and
who sees which page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from feedback.models import PersonNotice, Rating
from orgs.assessment import indicators, service
from orgs.assessment.indicators import Measured
from orgs.assessment.jobs import compute_due
from orgs.assessment.models import (
    Appeal,
    Assessment,
    BiddingSuspension,
    ConsequenceRecord,
    IndicatorSet,
    Period,
)
from orgs.casework.models import CaseAssignment, Complaint
from orgs.registry.service import OrgError
from orgs.tasks import service as tasks
from orgs.tenders import awards, opening
from orgs.tenders.models import (
    Award,
    Bid,
    BidStatus,
    Contract,
    ContractStatus,
    Milestone,
    MilestoneReport,
    MilestoneStatus,
)
from portal.cases.models import Case, Person
from portal.cases.service import SHANGHAI
from portal.staff.models import StaffUser
from tests import orgs_setup, tenders_setup
from tests.staff import create_staff

D = Decimal


def now() -> datetime:
    return datetime.now(UTC)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


# --- pure arithmetic --------------------------------------------------------------------------

def test_parts_are_quantised_half_up_and_add_up():
    scored = indicators.score([Measured("a", D(40), D(1) / D(3)),
                               Measured("b", D(60), D("0.123456"))], "rescale")
    # 13.333… → 13.33 and 7.40736 → 7.41: the total is the sum of the shown parts.
    assert [r["part"] for r in scored.rows] == ["13.33", "7.41"]
    assert scored.score == D("20.74") and scored.rescaled_from is None


@pytest.mark.parametrize(("missing", "expected", "rescaled"), [
    ("rescale", D("85.71"), D("60.00")), ("full", D("90.00"), None), ("zero", D("60.00"), None)])
def test_an_indicator_without_data(missing, expected, rescaled):
    scored = indicators.score([Measured("a", D(40), D("0.75")), Measured("b", D(30), None),
                               Measured("c", D(30), D(1))], missing)
    assert scored.score == expected and scored.rescaled_from == rescaled
    assert scored.rows[1]["na"] is True and scored.rows[1]["value"] is None


def test_no_data_at_all_is_not_assessable():
    assert indicators.score([Measured("a", D(40), None), Measured("b", D(60), None)],
                            "full") is None


@pytest.mark.parametrize(("score", "grade"), [
    ("100", "优"), ("90.00", "优"), ("89.99", "良"), ("80.00", "良"), ("79.99", "中"),
    ("60.00", "中"), ("59.99", "差"), ("0", "差")])
def test_bands_at_the_boundaries(score, grade):
    assert indicators.grade(D(score), service.DEFAULT_BANDS) == grade


def test_complaints_value_never_below_zero():
    assert indicators.complaints_value(0, D("0.25")) == 1
    assert indicators.complaints_value(3, D("0.25")) == D("0.25")
    assert indicators.complaints_value(9, D("0.25")) == 0


def test_bands_checked():
    assert indicators.check_bands(service.DEFAULT_BANDS)
    assert not indicators.check_bands([{"grade": "优", "min": "90"}])
    assert not indicators.check_bands([{"grade": "优", "min": "x"}, {"grade": "差", "min": "0"}])


# --- fixtures on rows -------------------------------------------------------------------------

MONTHS = {m: service.month_bounds(2026, m) for m in (7, 8, 9, 10)}


async def contracted(settings, n: int, start: date = date(2026, 7, 1),
                     end: date = date(2026, 12, 31)) -> tuple:
    org = await orgs_setup.organisation(n)
    admin = await orgs_setup.account(f"admin{n}", org=org)
    tender = await tenders_setup.published(settings, title=f"保洁{n}")
    bid = await Bid.create(tender=tender, organisation=org, status=BidStatus.VALID)
    award = await Award.create(tender=tender, bid=bid, organisation=org, status="active",
                               value=D(1000), created_at=now())
    contract = await Contract.create(
        award=award, tender=tender, organisation=org, value=D(1000), period_start=start,
        period_end=end, status=ContractStatus.ACTIVE, date_signed=at(start) - timedelta(days=1),
        created_at=now())
    return org, admin, contract


async def milestones(contract: Contract, month: int, *, due: int, on_time: int,
                     late: int = 0) -> None:
    first, _last = MONTHS[month]
    base = await Milestone.filter(contract_id=contract.id).count()
    for i in range(due):
        met = at(first + timedelta(days=5)) if i < on_time else (
            at(first + timedelta(days=12)) if i < on_time + late else None)
        await Milestone.create(contract=contract, position=base + i, title=f"M{i}",
                               due_date=first + timedelta(days=10), date_met=met,
                               status=MilestoneStatus.MET if met else MilestoneStatus.NOT_MET,
                               date_modified=now())


async def complaints(org, month: int, n: int) -> None:
    for i in range(n):
        await Complaint.create(organisation=org, text=f"投诉{i}", recorded_by="staff:op",
                               recorded_at=at(MONTHS[month][0] + timedelta(days=3)))


async def rated_case(org, code: str, scores: list[tuple[int, bool | None]], when: datetime):
    case = await Case.create(code=code, category="garbage", summary="垃圾满溢",
                             first_reported_at=when, last_reported_at=when)
    await CaseAssignment.create(case=case, organisation=org, assigned_at=when - timedelta(days=2),
                                assigned_by="staff:op", active_key=case.id)
    for score, fixed in scores:
        person = await Person.create(language="zh-CN")
        rating = await Rating.create(case=case, person=person, score=score, fixed=fixed,
                                     channel="web")
        await Rating.filter(id=rating.id).update(updated_at=when)


async def month_of(org, contract, month: int, grade: str) -> None:
    """Data that gives `grade` (差 or 中) in `month` with the default set."""
    await milestones(contract, month, due=4, on_time=0 if grade == "差" else 3)
    await complaints(org, month, 4)


async def run(month: int, *, publish: bool = True) -> Period:
    period = await service.compute(*MONTHS[month])
    if publish:
        await service.publish(period.id, await StaffUser.get(username="op"))
    return period


# --- the indicators on real rows --------------------------------------------------------------

async def test_each_indicator_on_rows(settings):
    await create_staff()
    org, admin, contract = await contracted(settings, 1)
    other, _admin, _c = await contracted(settings, 2)
    await milestones(contract, 10, due=4, on_time=3)
    # Last month's milestone does not count in October.
    await milestones(contract, 9, due=1, on_time=0)
    ms = await Milestone.filter(contract_id=contract.id, due_date__gte=MONTHS[10][0])
    decided = at(MONTHS[10][0] + timedelta(days=15))
    for m, decision in zip(ms, ("accepted", "accepted", "partial", "rejected"), strict=True):
        await MilestoneReport.create(milestone=m, account=admin, text="完成", submitted_at=decided,
                                     decision=decision, decided_at=decided)
    await rated_case(org, "GL-20261001-0001", [(5, True), (4, None), (4, True), (2, False)],
                     at(MONTHS[10][0] + timedelta(days=20)))
    # A rating given in September is not October's.
    await rated_case(org, "GL-20260901-0001", [(1, False)], at(MONTHS[9][0]))
    await complaints(org, 10, 1)
    await complaints(other, 9, 3)
    period = await run(10, publish=False)
    a = await Assessment.get(period_id=period.id, organisation_id=org.id)
    rows = {r["key"]: r for r in a.breakdown["indicators"]}
    assert rows["milestones_on_time"]["data"]["due"] == 4
    assert rows["milestones_on_time"]["part"] == "30.00"
    assert rows["acceptance_pass_rate"]["value"] == "0.6250"
    assert rows["acceptance_pass_rate"]["part"] == "12.50"
    assert rows["satisfaction"]["data"] == {"ratings": 4, "satisfied": 3}
    assert rows["satisfaction"]["part"] == "22.50"
    # One recorded complaint and one poor rating.
    assert rows["complaints"]["data"] == {"complaints": 1, "poor_ratings": 1}
    assert rows["complaints"]["part"] == "5.00"
    assert a.score == D("70.00") and a.grade == "中"
    assert a.breakdown["rescaled_from"] is None
    # The other organisation has only its (zero) complaints in October: rescaled from 10.
    b = await Assessment.get(period_id=period.id, organisation_id=other.id)
    assert b.score == D("100.00") and b.grade == "优"
    assert b.breakdown["rescaled_from"] == "10.00"
    assert [r["na"] for r in b.breakdown["indicators"]] == [True, True, True, False]


async def test_too_few_ratings_leave_satisfaction_out(settings):
    org, _admin, _contract = await contracted(settings, 1)
    await rated_case(org, "GL-20261001-0002", [(5, True), (5, True)],
                     at(MONTHS[10][0] + timedelta(days=2)))
    period = await run(10, publish=False)
    a = await Assessment.get(period_id=period.id)
    rows = {r["key"]: r for r in a.breakdown["indicators"]}
    assert rows["satisfaction"]["na"] and rows["satisfaction"]["data"]["ratings"] == 2


async def test_only_contracted_orgs_and_recompute_is_idempotent(settings):
    org, _admin, contract = await contracted(settings, 1, start=date(2026, 11, 1))
    period = await run(10, publish=False)
    assert await Assessment.filter(period_id=period.id).count() == 0
    await Contract.filter(id=contract.id).update(period_start=date(2026, 10, 20))
    for _i in range(2):
        period = await run(10, publish=False)
    assert await Assessment.filter(period_id=period.id, organisation_id=org.id).count() == 1
    assert await Period.all().count() == 1


async def test_a_month_not_ended_is_refused(settings):
    today = now().astimezone(SHANGHAI).date()
    with pytest.raises(OrgError) as exc:
        await service.compute(*service.month_bounds(today.year, today.month))
    assert exc.value.status == 422


# --- versioning -------------------------------------------------------------------------------

async def test_versions(settings):
    await create_staff()
    boss, op = await StaffUser.get(username="boss"), await StaffUser.get(username="op")
    org, _admin, contract = await contracted(settings, 1)
    await month_of(org, contract, 9, "中")
    v1 = await service.active_set()
    published = await run(9)
    before = await Assessment.get(period_id=published.id)
    with pytest.raises(OrgError) as exc:
        await service.edit_draft(v1.id, boss, weights={}, bands={}, missing="rescale")
    assert exc.value.status == 409
    with pytest.raises(OrgError) as exc:
        await service.new_version(v1.id, op)
    assert exc.value.status == 403
    v2 = await service.new_version(v1.id, boss)
    assert v2.version == 2 and v2.status == "draft"
    bad = {"milestones_on_time": "50", "acceptance_pass_rate": "20", "satisfaction": "30",
           "complaints": "10"}
    with pytest.raises(OrgError):
        await service.edit_draft(v2.id, boss, weights=bad, bands={}, missing="rescale")
    await service.edit_draft(
        v2.id, boss, weights={**bad, "milestones_on_time": "40"}, missing="zero",
        bands={"优": "95", "良": "85", "中": "50", "差": "0"})
    await service.activate(v2.id, boss)
    assert (await IndicatorSet.get(id=v1.id)).status == "retired"
    assert (await IndicatorSet.get(id=v2.id)).status == "active"
    # The published v1 period is frozen: it keeps its set and its numbers.
    with pytest.raises(OrgError) as exc:
        await service.compute(*MONTHS[9])
    assert exc.value.status == 409
    after = await Assessment.get(period_id=published.id)
    assert (after.score, after.grade, after.breakdown) == (before.score, before.grade,
                                                           before.breakdown)
    assert (await Period.get(id=published.id)).indicator_set_id == v1.id
    # A new period uses v2: n/a counts zero, 30 of 100 points → 差 under v2's bands.
    await month_of(org, contract, 10, "中")
    october = await run(10, publish=False)
    a = await Assessment.get(period_id=october.id)
    assert october.indicator_set_id == v2.id and a.score == D("30.00") and a.grade == "差"


# --- publishing and elimination ---------------------------------------------------------------

async def test_publish_once_with_notices_and_consequences(settings):
    await create_staff()
    op = await StaffUser.get(username="op")
    org, admin, contract = await contracted(settings, 1)
    await month_of(org, contract, 10, "差")
    period = await run(10, publish=False)
    assert await PersonNotice.filter(topic="assessment.published").count() == 0
    assert await service.publish(period.id, op) is True
    assert await service.publish(period.id, op) is False
    notices = await PersonNotice.filter(topic="assessment.published")
    assert [n.person_id for n in notices] == [admin.person_id]
    assert "差" in notices[0].texts["en"]["body"]
    kinds = sorted(await ConsequenceRecord.all().values_list("kind", flat=True))
    assert kinds == ["fee_deduction_pct", "warning"]
    record = await ConsequenceRecord.get(kind="warning")
    await service.decide_consequence(record.id, op, "applied", "已书面警告")
    with pytest.raises(OrgError):
        await service.decide_consequence(record.id, op, "waived", "")


async def test_two_poor_in_a_row_suspend_once(settings):
    await create_staff()
    org, admin, contract = await contracted(settings, 1)
    for m in (9, 10):
        await month_of(org, contract, m, "差")
    await run(9)
    assert await BiddingSuspension.all().count() == 0
    october = await run(10)
    await service.publish(october.id, await StaffUser.get(username="op"))
    s = await BiddingSuspension.get(organisation_id=org.id)
    assert s.status == "active" and "2026-09、2026-10" in s.reason
    assert (s.ends_at - s.starts_at) == timedelta(days=180)
    assert await PersonNotice.filter(topic="org.suspended_from_bidding",
                                     person_id=admin.person_id).count() == 1
    assert await service.suspended_from_bidding(org.id, s.ends_at - timedelta(seconds=1))
    assert await service.suspended_from_bidding(org.id, s.ends_at) is None


@pytest.mark.parametrize("grades", [("差", "中", "差"), ("差", None, "差")])
async def test_a_better_grade_or_a_gap_breaks_the_run(settings, grades):
    await create_staff()
    org, _admin, contract = await contracted(settings, 1)
    for month, grade in zip((8, 9, 10), grades, strict=True):
        if grade is not None:
            await month_of(org, contract, month, grade)
            await run(month)
    assert await BiddingSuspension.all().count() == 0


async def test_a_corrected_grade_counts(settings):
    await create_staff()
    op = await StaffUser.get(username="op")
    org, admin, contract = await contracted(settings, 1)
    for m in (9, 10):
        await month_of(org, contract, m, "差")
    september = await run(9)
    a = await Assessment.get(period_id=september.id)
    appeal = await service.file_appeal(org.id, admin.id, f"assessment:{a.id}", "里程碑已按期完成",
                                       window_days=15)
    await service.decide_appeal(appeal.id, op, "overturned", "复核后更正",
                                corrected_score="65")
    a = await Assessment.get(id=a.id)
    assert (a.grade, a.corrected_grade, a.corrected_score) == ("差", "中", D("65.00"))
    await run(10)
    assert await BiddingSuspension.all().count() == 0


async def test_overturning_an_assessment_lifts_its_suspension(settings):
    await create_staff()
    op = await StaffUser.get(username="op")
    org, admin, contract = await contracted(settings, 1)
    for m in (9, 10):
        await month_of(org, contract, m, "差")
    await run(9)
    october = await run(10)
    a = await Assessment.get(period_id=october.id)
    appeal = await service.file_appeal(org.id, admin.id, f"assessment:{a.id}", "数据有误",
                                       window_days=15)
    await service.decide_appeal(appeal.id, op, "overturned", "复核后更正",
                                corrected_score="72.5")
    assert (await BiddingSuspension.get(organisation_id=org.id)).status == "lifted"
    assert await service.suspended_from_bidding(org.id, now()) is None
    assert await PersonNotice.filter(topic="appeal.decided").count() == 1


# --- what a suspension blocks -----------------------------------------------------------------

async def suspend(org, days: int = 180) -> BiddingSuspension:
    return await BiddingSuspension.create(
        organisation=org, starts_at=now() - timedelta(days=1),
        ends_at=now() + timedelta(days=days), reason="连续2期考核为差", trigger="test")


async def test_suspension_blocks_bids_and_claims_until_it_ends(settings):
    org, admin, _contract = await contracted(settings, 1)
    s = await suspend(org)
    tender = await tenders_setup.published(settings)
    with pytest.raises(OrgError) as exc:
        await tenders_setup.bid(settings, tender, org, "1000")
    assert exc.value.status == 403 and "suspended" in exc.value.message
    grid = await orgs_setup.area()
    starts = now() + timedelta(hours=2)
    task = await tasks.create_task(tasks.NewTask(
        title="清理楼道杂物", description="三号楼", service_type="cleaning", area_id=grid.id,
        places=2, who="any", requires_training=False, starts_at=starts,
        ends_at=starts + timedelta(hours=2), points=5), actor="staff:op", grace_minutes=30)
    with pytest.raises(tasks.TaskError) as refused:
        await tasks.claim(task.id, admin, as_org=True)
    assert refused.value.status == 403
    await BiddingSuspension.filter(id=s.id).update(ends_at=now() - timedelta(seconds=1))
    assert (await tenders_setup.bid(settings, tender, org, "1000")).version == 1
    assert (await tasks.claim(task.id, admin, as_org=True)).id


async def test_suspended_at_the_deadline_is_disqualified_and_cannot_win(settings):
    org, _admin, _contract = await contracted(settings, 1)
    tender = await tenders_setup.published(settings)
    await tenders_setup.bid(settings, tender, org, "1000")
    await suspend(org)
    tender = await tenders_setup.close(tender)
    assert await opening.open_due(settings) == 1
    bid = await Bid.get(tender_id=tender.id, organisation_id=org.id)
    assert (bid.status, bid.disqualified_reason) == (BidStatus.DISQUALIFIED, "suspended")
    assert "suspended" in await awards.ineligible(tender, org, now())


async def test_overturned_suspension_allows_bidding_at_once(settings):
    await create_staff()
    org, admin, _contract = await contracted(settings, 1)
    s = await suspend(org)
    appeal = await service.file_appeal(org.id, admin.id, f"suspension:{s.id}", "申诉",
                                       window_days=15)
    # The suspension stays while the appeal waits.
    assert await service.suspended_from_bidding(org.id, now())
    await service.decide_appeal(appeal.id, await StaffUser.get(username="op"), "overturned",
                                "情况属实")
    assert (await BiddingSuspension.get(id=s.id)).status == "overturned"
    assert await service.suspended_from_bidding(org.id, now()) is None


# --- appeals ----------------------------------------------------------------------------------

async def test_appeal_window_and_one_open_per_subject(settings):
    await create_staff()
    op = await StaffUser.get(username="op")
    org, admin, contract = await contracted(settings, 1)
    other, other_admin, _c = await contracted(settings, 2)
    await month_of(org, contract, 10, "中")
    period = await run(10)
    a = await Assessment.get(period_id=period.id, organisation_id=org.id)
    published = (await Period.get(id=period.id)).published_at
    with pytest.raises(OrgError) as exc:
        await service.file_appeal(org.id, admin.id, f"assessment:{a.id}", "晚了",
                                  window_days=15, now=published + timedelta(days=15, seconds=1))
    assert exc.value.status == 409
    with pytest.raises(OrgError) as exc:
        await service.file_appeal(other.id, other_admin.id, f"assessment:{a.id}", "不是我们的",
                                  window_days=15)
    assert exc.value.status == 404
    first = await service.file_appeal(org.id, admin.id, f"assessment:{a.id}", "申诉",
                                      window_days=15, now=published + timedelta(days=15))
    with pytest.raises(OrgError) as exc:
        await service.file_appeal(org.id, admin.id, f"assessment:{a.id}", "再次申诉",
                                  window_days=15)
    assert exc.value.status == 409
    await service.decide_appeal(first.id, op, "upheld", "维持原评分")
    assert (await Assessment.get(id=a.id)).corrected_grade is None
    with pytest.raises(OrgError):
        await service.decide_appeal(first.id, op, "overturned", "x", corrected_score="90")
    assert await Appeal.filter(active_key__isnull=False).count() == 0


# --- the sweep --------------------------------------------------------------------------------

async def test_sweep_computes_the_month_just_ended_once(settings):
    org, _admin, contract = await contracted(settings, 1)
    await month_of(org, contract, 10, "中")
    clock = at(date(2026, 11, 1), 0) + timedelta(minutes=5)
    assert await compute_due(settings, now=clock) == 1
    assert await compute_due(settings, now=clock + timedelta(hours=1)) == 0
    period = await Period.get()
    assert (period.starts_on, period.ends_on) == MONTHS[10]
    assert await Assessment.filter(period_id=period.id).count() == 1


# --- pages ------------------------------------------------------------------------------------

async def test_staff_pages_by_role(app, settings):
    await create_staff()
    org, _admin, contract = await contracted(settings, 1)
    await month_of(org, contract, 10, "中")
    async with await orgs_setup.staff_client(app, "roads") as roads:
        for path in ("/staff/assessment", "/staff/assessment/sets", "/staff/appeals"):
            assert (await roads.get(path)).status_code == 404
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, "/staff/assessment")
        for month in ("2026-13", "ÿ", "9999999-01", ""):
            r = await op.post("/staff/assessment/compute", data={"csrf_token": token,
                                                                  "month": month})
            assert r.status_code == 422, month
        r = await op.post("/staff/assessment/compute", data={"csrf_token": token,
                                                              "month": "2026-10"})
        assert r.status_code == 303
        period = await Period.get()
        page = await op.get(f"/staff/assessment/periods/{period.id}")
        assert page.status_code == 200 and org.name in page.text and "60.00" in page.text
        for junk in ("ÿ", "²", "99999999999999999999999", "0"):
            assert (await op.get(f"/staff/assessment/periods/{junk}")).status_code == 404
        r = await op.post(f"/staff/assessment/periods/{period.id}/publish",
                          data={"csrf_token": token})
        assert r.status_code == 303
        assert (await Period.get()).status == "published"
        v1 = await IndicatorSet.get()
        r = await op.post(f"/staff/assessment/sets/{v1.id}/new-version",
                          data={"csrf_token": token})
        assert r.status_code == 403
        r = await op.post("/staff/appeals/ÿ/decide", data={"csrf_token": token})
        assert r.status_code == 404
    async with await orgs_setup.staff_client(app, "boss") as boss:
        token = await orgs_setup.csrf_of(boss, "/staff/assessment/sets")
        r = await boss.post(f"/staff/assessment/sets/{v1.id}/new-version",
                            data={"csrf_token": token})
        assert r.status_code == 303
        draft = await IndicatorSet.get(status="draft")
        page = await boss.get("/staff/assessment/sets")
        assert page.status_code == 200 and 'name="w_satisfaction"' in page.text
        r = await boss.post(f"/staff/assessment/sets/{draft.id}/edit", data={
            "csrf_token": token, "missing": "rescale", "w_milestones_on_time": "abc"})
        assert r.status_code == 422
        r = await boss.post(f"/staff/assessment/sets/{draft.id}/activate",
                            data={"csrf_token": token})
        assert r.status_code == 303
        assert (await IndicatorSet.get(id=draft.id)).status == "active"


async def test_org_pages_show_only_their_own(app, settings):
    await create_staff()
    org, admin, contract = await contracted(settings, 1)
    other, other_admin, _c = await contracted(settings, 2)
    member = await orgs_setup.account("member1", org=org, role="member")
    await month_of(org, contract, 10, "中")
    period = await run(10, publish=False)
    mine = await Assessment.get(period_id=period.id, organisation_id=org.id)
    theirs = await Assessment.get(period_id=period.id, organisation_id=other.id)
    async with await orgs_setup.member_client(app, admin) as c:
        # Not published yet: nothing to see.
        assert (await c.get(f"/org/assessments/{mine.id}")).status_code == 404
    await service.publish(period.id, await StaffUser.get(username="op"))
    async with await orgs_setup.member_client(app, member) as c:
        page = await c.get(f"/org/assessments/{mine.id}")
        assert page.status_code == 200 and "3 of 4" in (await c.get(
            f"/org/assessments/{mine.id}?lang=en")).text
        assert (await c.get(f"/org/assessments/{theirs.id}")).status_code == 404
        for junk in ("ÿ", "²", "99999999999999999999999"):
            assert (await c.get(f"/org/assessments/{junk}")).status_code == 404
        listing = await c.get("/org/assessments?lang=en")
        assert listing.status_code == 200 and "60.00" in listing.text
        assert "Why you disagree" not in listing.text
        token = await orgs_setup.csrf_of(c, "/volunteer")
        r = await c.post("/org/appeals", data={"csrf_token": token,
                                               "subject": f"assessment:{mine.id}", "text": "x"})
        assert r.status_code == 403
    async with await orgs_setup.member_client(app, other_admin) as c:
        token = await orgs_setup.csrf_of(c, "/org/assessments")
        for subject in (f"assessment:{mine.id}", "assessment:ÿ", "junk", ""):
            r = await c.post("/org/appeals", data={"csrf_token": token, "subject": subject,
                                                   "text": "申诉"})
            assert r.status_code == 404, subject
        listing = await c.get("/org/assessments")
        assert listing.status_code == 200 and f"/org/assessments/{theirs.id}" in listing.text
        assert "60.00" not in listing.text
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/org/assessments")
        r = await c.post("/org/appeals", data={"csrf_token": token,
                                               "subject": f"assessment:{mine.id}", "text": ""})
        assert r.status_code == 422
        r = await c.post("/org/appeals", data={"csrf_token": token,
                                               "subject": f"assessment:{mine.id}",
                                               "text": "里程碑已完成"})
        assert r.status_code == 303
        r = await c.post("/org/appeals", data={"csrf_token": token,
                                               "subject": f"assessment:{mine.id}",
                                               "text": "再次"})
        assert r.status_code == 409
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get("/staff/appeals")
        assert "里程碑已完成" in page.text
        token = await orgs_setup.csrf_of(op, "/staff/appeals")
        appeal = await Appeal.get()
        r = await op.post(f"/staff/appeals/{appeal.id}/decide", data={
            "csrf_token": token, "decision": "overturned", "reason": "更正",
            "corrected_score": "abc"})
        assert r.status_code == 422
        r = await op.post(f"/staff/appeals/{appeal.id}/decide", data={
            "csrf_token": token, "decision": "overturned", "reason": "更正",
            "corrected_score": "81"})
        assert r.status_code == 303
    assert (await Assessment.get(id=mine.id)).corrected_grade == "良"


async def test_suspension_and_its_appeal_on_the_pages(app, settings):
    await create_staff()
    org, admin, _contract = await contracted(settings, 1)
    s = await suspend(org)
    async with await orgs_setup.member_client(app, admin) as c:
        page = await c.get("/org/assessments")
        assert page.status_code == 200 and "连续2期考核为差" in page.text
        assert "暂停投标和认领任务" in page.text
        token = await orgs_setup.csrf_of(c, "/org/assessments")
        r = await c.post("/org/appeals", data={"csrf_token": token,
                                               "subject": f"suspension:{s.id}", "text": "申诉"})
        assert r.status_code == 303
        assert "waiting for a decision" in (await c.get("/org/assessments?lang=en")).text
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get("/staff/appeals?lang=en")
        assert page.status_code == 200 and "suspension from bidding" in page.text
        token = await orgs_setup.csrf_of(op, "/staff/appeals")
        appeal = await Appeal.get()
        r = await op.post(f"/staff/appeals/{appeal.id}/decide", data={
            "csrf_token": token, "decision": "maybe", "reason": "x"})
        assert r.status_code == 422
        r = await op.post(f"/staff/appeals/{appeal.id}/decide", data={
            "csrf_token": token, "decision": "overturned", "reason": "情况属实"})
        assert r.status_code == 303
    assert await service.suspended_from_bidding(org.id, now()) is None
