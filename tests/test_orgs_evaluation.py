"""Evaluation, award, contract and milestones of an opened tender (issue 7, DESIGN §2.5, §6):
the scoring math, the evaluators' scores, abnormally low prices, the finalisation with its tie
draw, the award and the result notices to every bidder, the contract, milestone reports with
photos and the overdue sweep."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from feedback.models import PersonNotice
from orgs.registry.models import DataAgreement, OrgStatus
from orgs.registry.service import OrgError
from orgs.tenders import awards, evaluation, scoring, seal
from orgs.tenders.evaluation import Entry, q
from orgs.tenders.models import (
    Award,
    AwardStatus,
    Bid,
    BidResult,
    BidStatus,
    Contract,
    ContractStatus,
    CriterionScore,
    LowBidReview,
    Milestone,
    MilestonePhoto,
    MilestoneReport,
    MilestoneStatus,
    Tender,
    TenderCriterion,
    TenderEvaluator,
    TenderRelease,
    TenderStatus,
    TieDraw,
)
from portal.staff.models import Role, StaffUser
from tests import orgs_setup
from tests.staff import create_staff, password_hash

SEED = "3f1c9a6e5b7d4c2a9e8f7a6b5c4d3e2f"
SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal
# The worked example of DESIGN §6.1: three evaluators' scores on plan, team, experience.
EXAMPLE = {
    "250000.00": ((85, 85, 85), (80, 80, 80), (90, 90, 90)),
    "268000.00": ((92, 93, 92), (88, 88, 88), (80, 80, 80)),
    "231000.00": ((72, 73, 72), (70, 70, 70), (65, 65, 65)),
}


# --- the math (pure) ------------------------------------------------------------------------

def _example_entries() -> list[Entry]:
    return [Entry(i, D(price), {c: [D(s) for s in scores[c]] for c in range(3)})
            for i, (price, scores) in enumerate(EXAMPLE.items(), start=1)]


WEIGHTS = {0: D("0.40"), 1: D("0.20"), 2: D("0.10")}


def test_the_worked_example_of_the_design():
    results = evaluation.evaluate(_example_entries(), method="comprehensive",
                                  price_weight=D("0.30"), weights=WEIGHTS, seed=SEED)
    by_bid = {r.bid_id: r for r in results}
    a, b, c = by_bid[1], by_bid[2], by_bid[3]
    assert (a.price_score, a.price_part, a.total, a.rank) == (D("92.40"), D("27.72"),
                                                              D("86.72"), 2)
    assert a.criteria_parts == {0: D("34.00"), 1: D("16.00"), 2: D("9.00")}
    assert (b.price_score, b.price_part, b.total, b.rank) == (D("86.19"), D("25.86"),
                                                              D("88.39"), 1)
    assert b.criteria_parts == {0: D("36.93"), 1: D("17.60"), 2: D("8.00")}
    assert (c.price_score, c.price_part, c.total, c.rank) == (D("100.00"), D("30.00"),
                                                              D("79.43"), 3)
    assert c.criteria_parts[0] == D("28.93")
    # The total is the sum of the parts shown, to the cent.
    for r in results:
        assert r.total == r.price_part + sum(r.criteria_parts.values())
        assert r.tie_group is None and r.draw_key is None


def test_half_up_rounding():
    assert q(D("85.125")) == D("85.13")
    assert q(D("85.135")) == D("85.14")
    assert q(D("85.1249")) == D("85.12")


def test_equal_totals_rank_the_lower_price_first():
    # bid 1: 50.00 + 30.00 = 80.00; bid 2: 40.00 + 50.00 = 90.00.
    entries = [Entry(1, D("100.00"), {0: [D(60)]}), Entry(2, D("125.00"), {0: [D(100)]})]
    results = evaluation.evaluate(entries, method="comprehensive", price_weight=D("0.5"),
                                  weights={0: D("0.5")}, seed=SEED)
    assert [(r.bid_id, r.total) for r in results] == [(2, D("90.00")), (1, D("80.00"))]
    tied = [Entry(1, D("100.00"), {0: [D(80)]}), Entry(2, D("80.00"), {0: [D(60)]})]
    # bid 1: 40.00 + 40.00 = 80.00; bid 2: 50.00 + 30.00 = 80.00: the cheaper one leads.
    results = evaluation.evaluate(tied, method="comprehensive", price_weight=D("0.5"),
                                  weights={0: D("0.5")}, seed=SEED)
    assert [r.total for r in results] == [D("80.00"), D("80.00")]
    assert [r.bid_id for r in results] == [2, 1] and results[0].tie_group is None


def test_the_tie_example_of_the_design():
    assert evaluation.draw_key(SEED, 17).startswith("abd5f930")
    assert evaluation.draw_key(SEED, 23).startswith("af836352")
    entries = [Entry(23, D("100.00")), Entry(17, D("100.00")), Entry(5, D("120.00"))]
    results = evaluation.evaluate(entries, method="lowest_price", price_weight=None, weights={},
                                  seed=SEED)
    assert [(r.bid_id, r.rank, r.tie_group) for r in results] == [(17, 1, 1), (23, 2, 1),
                                                                  (5, 3, None)]
    assert all(r.total is None for r in results)
    assert results[2].price_score == D("83.33")
    assert evaluation.tie_groups(results) == {1: [17, 23]}
    # Without the seed (the preview) the tie is shown but not drawn.
    preview = evaluation.evaluate(entries, method="lowest_price", price_weight=None,
                                  weights={}, seed=None)
    assert [r.draw_key for r in preview] == [None, None, None]
    assert preview[0].tie_group == preview[1].tie_group == 1


# --- an opened tender, made with the models -------------------------------------------------

async def opened(settings, prices=tuple(EXAMPLE), *, method="comprehensive", evaluators=1,
                 code="GT-2026-00001", handles_resident_data=False, opened_ago=1):
    now = datetime.now(UTC)
    area = await orgs_setup.area()
    today = now.astimezone(SHANGHAI).date()
    tender = await Tender.create(
        code=code, title="公共区域保洁", description="南京东路街道", service_type="cleaning",
        area=area, budget=D("300000.00"), contract_start=today,
        contract_end=today + timedelta(days=364), procedure="tender", method=method,
        price_weight=D("0.3000") if method == "comprehensive" else None,
        handles_resident_data=handles_resident_data, deadline=now - timedelta(hours=2),
        status=TenderStatus.ACTIVE, published_at=now - timedelta(days=10),
        opened_at=now - timedelta(hours=opened_ago) if opened_ago else None,
        draw_seed_hash=hashlib.sha256(SEED.encode()).hexdigest(), created_by="staff:op",
        created_at=now, updated_at=now)
    tender.draw_seed_sealed = seal.seal_seed(settings, tender.id, SEED)
    await tender.save()
    criteria = []
    if method == "comprehensive":
        for position, (name, weight) in enumerate(
                (("服务方案", "0.4000"), ("团队", "0.2000"), ("经验", "0.1000")), start=1):
            criteria.append(await TenderCriterion.create(tender=tender, position=position,
                                                         name=name, weight=D(weight)))
    bids, admins = [], []
    for i, price in enumerate(prices, start=1):
        org = await orgs_setup.organisation(i)
        admins.append(await orgs_setup.account(f"adm{code[-2:]}{i}", org=org))
        bids.append(await Bid.create(
            tender=tender, organisation=org, status=BidStatus.VALID, version=1,
            submitted_at=now - timedelta(days=1), opened_at=tender.opened_at,
            price=D(price), proposal=f"方案{i}",
            team=[{"name": f"队员{i}", "role": "组长", "qualification": "社工证"}]))
    people = []
    for e in range(evaluators):
        user = await StaffUser.create(username=f"ev{e + 1}", password_hash=password_hash(),
                                      role=Role.EVALUATOR)
        await TenderEvaluator.create(tender=tender, staff_user=user)
        people.append(user)
    return SimpleNamespace(tender=tender, criteria=criteria, bids=bids, admins=admins,
                           evaluators=people)


async def score_all(t, table: dict[int, tuple]) -> None:
    """table: bid index → per criterion, one score per evaluator."""
    for index, per_criterion in table.items():
        for criterion, scores in zip(t.criteria, per_criterion, strict=True):
            for evaluator, value in zip(t.evaluators, scores, strict=True):
                await scoring.enter_score(t.tender, evaluator, bid_id=t.bids[index].id,
                                          criterion_id=criterion.id, score=D(value))


async def example(settings, **kwargs):
    t = await opened(settings, evaluators=3, **kwargs)
    await score_all(t, dict(enumerate(EXAMPLE.values())))
    return t


async def operator() -> StaffUser:
    await create_staff()
    return await StaffUser.get(username="op")


async def refused(coro, status: int) -> OrgError:
    with pytest.raises(OrgError) as caught:
        await coro
    assert caught.value.status == status, caught.value.message
    return caught.value


# --- scores ---------------------------------------------------------------------------------

async def test_scores_come_only_from_assigned_evaluators_during_the_evaluation(settings):
    t = await opened(settings)
    op = await operator()
    stranger = await StaffUser.create(username="ev9", password_hash=password_hash(),
                                      role=Role.EVALUATOR)
    args = {"bid_id": t.bids[0].id, "criterion_id": t.criteria[0].id, "score": D("80")}
    await refused(scoring.enter_score(t.tender, stranger, **args), 403)
    await refused(scoring.enter_score(t.tender, op, **args), 403)
    first = await scoring.enter_score(t.tender, t.evaluators[0], **args)
    again = await scoring.enter_score(t.tender, t.evaluators[0], **{**args, "score": D("81.5")})
    assert first.id == again.id
    assert (await CriterionScore.get(id=first.id)).score == D("81.50")
    for bad in ("100.01", "-1", "1.234", "abc", "", "1e2", "１００"):
        with pytest.raises(OrgError):
            scoring.parse_score(bad)
    assert scoring.parse_score(" 100 ") == D("100")


async def test_no_score_before_the_opening(settings):
    t = await opened(settings, opened_ago=0)
    await refused(scoring.enter_score(t.tender, t.evaluators[0], bid_id=t.bids[0].id,
                                      criterion_id=t.criteria[0].id, score=D(80)), 409)
    assert await scoring.staff_tender(t.tender.code, t.evaluators[0]) is None
    assert await CriterionScore.all().count() == 0


async def test_no_score_after_the_finalisation(settings):
    t = await example(settings)
    await scoring.finalise(t.tender, await operator(), settings)
    await refused(scoring.enter_score(t.tender, t.evaluators[0], bid_id=t.bids[0].id,
                                      criterion_id=t.criteria[0].id, score=D(10)), 409)
    assert await CriterionScore.filter(score=D(10)).count() == 0


# --- finalisation ---------------------------------------------------------------------------

async def test_finalise_writes_the_example_results_and_a_pending_award(settings):
    t = await example(settings)
    preview = await scoring.standing(t.tender, settings)
    assert [r.total for r in preview.results] == [D("88.39"), D("86.72"), D("79.43")]
    assert preview.missing_scores == 0 and await BidResult.all().count() == 0
    tender = await scoring.finalise(t.tender, await operator(), settings)
    assert tender.finalised_at is not None and tender.draw_seed == SEED
    results = {r.bid_id: r for r in await BidResult.all()}
    assert [(results[b.id].total, results[b.id].rank) for b in t.bids] == [
        (D("86.72"), 2), (D("88.39"), 1), (D("79.43"), 3)]
    assert results[t.bids[1].id].criteria_parts == {
        str(t.criteria[0].id): "36.93", str(t.criteria[1].id): "17.60",
        str(t.criteria[2].id): "8.00"}
    award = await Award.get(tender_id=tender.id)
    assert (award.bid_id, award.status, award.value) == (t.bids[1].id, AwardStatus.PENDING,
                                                         D("268000.00"))
    assert await TieDraw.all().count() == 0


async def test_finalise_is_refused_while_scores_are_missing(settings):
    t = await opened(settings, evaluators=2)
    await score_all(t, {0: ((80, 80), (80, 80), (80, 80)), 1: ((80, 80), (80, 80), (80, 80))})
    error = await refused(scoring.finalise(t.tender, await operator(), settings), 409)
    assert error.params["n"] == 6
    assert (await Tender.get(id=t.tender.id)).finalised_at is None
    assert await BidResult.all().count() == 0


async def test_finalise_needs_the_minimum_of_evaluators(settings):
    t = await opened(settings, evaluators=1)
    await score_all(t, {i: ((80,), (80,), (80,)) for i in range(3)})
    settings.tender_min_evaluators = 2
    await refused(scoring.finalise(t.tender, await operator(), settings), 409)
    settings.tender_min_evaluators = 1
    await scoring.finalise(t.tender, await StaffUser.get(username="op"), settings)


async def test_an_undecided_low_bid_blocks_and_a_rejected_one_is_disqualified(settings):
    t = await opened(settings, ("250000.00", "268000.00", "231000.00", "180000.00"))
    await score_all(t, {i: ((80,), (80,), (80,)) for i in range(4)})
    now = datetime.now(UTC)
    review = await LowBidReview.create(bid=t.bids[3], flagged_at=now,
                                       mean_others=D("249666.67"), ratio=D("0.800"))
    op = await operator()
    error = await refused(scoring.finalise(t.tender, op, settings), 409)
    assert "测试社工服务中心4" in error.params["names"]
    await scoring.explain_low_bid(t.tender, t.bids[3].organisation_id, actor="account:x",
                                  explanation="我们有志愿者队伍", settings=settings)
    await refused(scoring.decide_low_bid(t.tender, t.evaluators[0], review_id=review.id,
                                         decision="rejected", reason="x"), 403)
    await refused(scoring.decide_low_bid(t.tender, op, review_id=review.id, decision="maybe",
                                         reason="x"), 422)
    await refused(scoring.decide_low_bid(t.tender, op, review_id=review.id,
                                         decision="rejected", reason="  "), 422)
    await scoring.decide_low_bid(t.tender, op, review_id=review.id, decision="rejected",
                                 reason="无法证明报价合理")
    await refused(scoring.decide_low_bid(t.tender, op, review_id=review.id,
                                         decision="accepted", reason="again"), 409)
    await refused(scoring.explain_low_bid(t.tender, t.bids[3].organisation_id, actor="x",
                                          explanation="too late", settings=settings), 409)
    await scoring.finalise(t.tender, op, settings)
    low = await Bid.get(id=t.bids[3].id)
    assert (low.status, low.disqualified_reason) == (BidStatus.DISQUALIFIED, "abnormally_low")
    assert await BidResult.filter(bid_id=low.id).count() == 0
    # The lowest price among the valid bids is the base again: 231000 scores 100.
    assert (await BidResult.get(bid_id=t.bids[2].id)).price_score == D("100.00")


async def test_too_few_valid_bids_after_rejection_fail_the_tender(settings):
    t = await opened(settings)
    await score_all(t, {i: ((80,), (80,), (80,)) for i in range(3)})
    review = await LowBidReview.create(bid=t.bids[2], flagged_at=datetime.now(UTC),
                                       mean_others=D("259000.00"), ratio=D("0.800"))
    op = await operator()
    await scoring.decide_low_bid(t.tender, op, review_id=review.id, decision="rejected",
                                 reason="不合理")
    tender = await scoring.finalise(t.tender, op, settings)
    assert (tender.status, tender.status_reason) == (TenderStatus.UNSUCCESSFUL,
                                                     "fewer_than_3_valid")
    assert await Award.all().count() == 0
    notices = await PersonNotice.filter(topic="tender.unsuccessful").count()
    assert notices == 3


async def test_finalise_happens_once_under_concurrent_calls(settings):
    t = await example(settings)
    op = await operator()
    outcomes = await asyncio.gather(*(scoring.finalise(t.tender, op, settings)
                                      for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(o, Tender) for o in outcomes) == 1
    assert all(o.status == 409 for o in outcomes if isinstance(o, OrgError))
    assert await BidResult.all().count() == 3
    assert await Award.all().count() == 1


async def test_a_tie_is_drawn_recorded_and_recomputable(settings):
    t = await opened(settings, ("200000.00", "200000.00", "250000.00"), method="lowest_price")
    tender = await scoring.finalise(t.tender, await operator(), settings)
    draw = await TieDraw.get(tender_id=tender.id)
    tied = sorted([t.bids[0].id, t.bids[1].id])
    assert draw.candidates == tied and draw.seed == SEED == tender.draw_seed
    # Anyone with the revealed seed can redo the order.
    assert hashlib.sha256(SEED.encode()).hexdigest() == tender.draw_seed_hash
    assert draw.order == sorted(tied, key=lambda b: hashlib.sha256(
        f"{draw.seed}:{b}".encode()).hexdigest())
    results = {r.bid_id: r for r in await BidResult.all()}
    assert [results[b].rank for b in draw.order] == [1, 2]
    assert results[draw.order[0]].draw_key == evaluation.draw_key(SEED, draw.order[0])
    assert results[t.bids[2].id].rank == 3 and results[t.bids[2].id].tie_group is None
    assert (await Award.get(tender_id=tender.id)).bid_id == draw.order[0]


# --- award ----------------------------------------------------------------------------------

async def test_confirming_tells_every_bidder_the_result(settings):
    t = await example(settings)
    over = await orgs_setup.organisation(9)
    over_admin = await orgs_setup.account("over9", org=over)
    await Bid.create(tender=t.tender, organisation=over, status=BidStatus.DISQUALIFIED,
                     version=1, price=D("320000.00"), disqualified_reason="over_budget",
                     opened_at=t.tender.opened_at)
    op = await operator()
    await scoring.finalise(t.tender, op, settings)
    award = await Award.get(tender_id=t.tender.id)
    contract = await awards.confirm(award.id, op, settings)
    assert contract.status == ContractStatus.PENDING and contract.value == D("268000.00")
    assert (await Award.get(id=award.id)).status == AwardStatus.ACTIVE
    tender = await Tender.get(id=t.tender.id)
    assert tender.status == TenderStatus.COMPLETE and tender.awarded_at is not None

    async def body(acct, lang="en"):
        found = await PersonNotice.get(person_id=acct.person_id, topic="tender.result")
        return found.texts[lang]["title"] + " | " + found.texts[lang]["body"]

    won = await body(t.admins[1])
    assert "won" in won and "88.39" in won
    lost = await body(t.admins[0])
    assert "ranked 2 of 3 with a total of 86.72" in lost
    assert "测试社工服务中心2" in lost and "88.39" in lost
    assert "ranked 3 of 3 with a total of 79.43" in await body(t.admins[2])
    assert "86.72" not in await body(t.admins[2])
    assert "disqualified" in await body(over_admin)
    assert "86.72" not in await body(over_admin)
    assert "seed" not in lost
    assert "排名第 2" in await body(t.admins[0], "zh-CN")
    await refused(awards.confirm(award.id, op, settings), 409)
    assert await PersonNotice.filter(topic="tender.result").count() == 4
    tags = [r.tag for r in await TenderRelease.filter(tender_id=tender.id).order_by("id")]
    assert tags == [["award"], ["contract"]]
    release = (await TenderRelease.filter(tender_id=tender.id).order_by("id").first()).data
    assert release["awards"][0]["status"] == "active"
    assert "方案1" not in str(release) and "队员1" not in str(release)


async def test_a_draw_that_decided_is_in_the_notices(settings):
    t = await opened(settings, ("200000.00", "200000.00", "250000.00"), method="lowest_price")
    op = await operator()
    await scoring.finalise(t.tender, op, settings)
    await awards.confirm((await Award.get(tender_id=t.tender.id)).id, op, settings)
    for acct in t.admins:
        found = await PersonNotice.get(person_id=acct.person_id, topic="tender.result")
        assert SEED in found.texts["en"]["body"] and SEED in found.texts["zh-CN"]["body"]


async def test_an_ineligible_winner_cannot_be_confirmed(settings):
    t = await example(settings, handles_resident_data=True)
    op = await operator()
    await scoring.finalise(t.tender, op, settings)
    award = await Award.get(tender_id=t.tender.id)
    error = await refused(awards.confirm(award.id, op, settings), 409)
    assert "data-processing" in error.message
    winner = t.bids[1].organisation_id
    await DataAgreement.create(organisation_id=winner, purpose="处理居民信息",
                               data_types=["name"], starts_on=t.tender.contract_start,
                               ends_on=t.tender.contract_end, end_action="delete",
                               recorded_by="staff:op", recorded_at=datetime.now(UTC))
    from orgs.registry.service import change_status
    await change_status(winner, OrgStatus.SUSPENDED, actor="staff:op", reason="投诉")
    error = await refused(awards.confirm(award.id, op, settings), 409)
    assert "verified" in error.message
    await change_status(winner, OrgStatus.VERIFIED, actor="staff:op")
    await awards.confirm(award.id, op, settings)
    assert await PersonNotice.filter(topic="tender.result").count() == 3


async def test_cancelling_passes_the_award_down_the_ranks(settings):
    t = await example(settings)
    op = await operator()
    await scoring.finalise(t.tender, op, settings)
    first = await Award.get(tender_id=t.tender.id)
    await refused(awards.cancel(first.id, op, settings, reason=""), 422)
    second = await awards.cancel(first.id, op, settings, reason="放弃中标")
    assert second.bid_id == t.bids[0].id and second.status == AwardStatus.PENDING
    assert (await Award.get(id=first.id)).status == AwardStatus.CANCELLED
    await refused(awards.cancel(first.id, op, settings, reason="again"), 409)
    notice = await PersonNotice.get(topic="award.cancelled")
    assert notice.person_id == t.admins[1].person_id
    third = await awards.cancel(second.id, op, settings, reason="资质")
    assert third.bid_id == t.bids[2].id
    assert await awards.cancel(third.id, op, settings, reason="资质") is None
    tender = await Tender.get(id=t.tender.id)
    assert (tender.status, tender.status_reason) == (TenderStatus.UNSUCCESSFUL, "no_award")


# --- contract and milestones ----------------------------------------------------------------

async def contracted(settings, app=None):
    t = await example(settings)
    op = await operator()
    await scoring.finalise(t.tender, op, settings)
    contract = await awards.confirm((await Award.get(tender_id=t.tender.id)).id, op, settings)
    return t, op, contract


def jpeg_with_exif(colour=(200, 30, 30)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0110] = "SerialX123"
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG", exif=exif.tobytes())
    assert b"SecretCam" in out.getvalue()
    return out.getvalue()


async def test_contract_signature_and_milestones(settings):
    t, op, contract = await contracted(settings)
    today = datetime.now(SHANGHAI).date()
    await refused(awards.sign(contract.id, op, settings,
                              signed_on=today + timedelta(days=1)), 422)
    signed = await awards.sign(contract.id, op, settings, signed_on=today)
    assert signed.status == ContractStatus.ACTIVE and signed.date_signed is not None
    await refused(awards.sign(contract.id, op, settings, signed_on=today), 409)
    assert await PersonNotice.filter(topic="contract.active",
                                     person_id=t.admins[1].person_id).exists()
    m = await awards.add_milestone(contract.id, op, settings, title="一季度保洁验收",
                                   description="", due_date=today + timedelta(days=90))
    await refused(awards.add_milestone(contract.id, op, settings, title=" ", description="",
                                       due_date=today), 422)
    admin = t.admins[1]
    org = t.bids[1].organisation_id
    await refused(awards.report(m.id, t.bids[0].organisation_id, t.admins[0], text="x",
                                photos=[]), 404)
    report = await awards.report(m.id, org, admin, text="完成第一季度", photos=[])
    await refused(awards.decide(report.id, op, settings, decision="rejected", reason=""), 422)
    await awards.decide(report.id, op, settings, decision="rejected", reason="缺少照片")
    assert (await Milestone.get(id=m.id)).status == MilestoneStatus.SCHEDULED
    await refused(awards.decide(report.id, op, settings, decision="accepted", reason=""), 409)
    second = await awards.report(m.id, org, admin, text="补充", photos=[])
    await awards.decide(second.id, op, settings, decision="partial", reason="部分区域未完成")
    assert (await Milestone.get(id=m.id)).status == MilestoneStatus.PARTIALLY_MET
    third = await awards.report(m.id, org, admin, text="全部完成", photos=[])
    await awards.decide(third.id, op, settings, decision="accepted", reason="")
    done = await Milestone.get(id=m.id)
    assert done.status == MilestoneStatus.MET and done.date_met == third.submitted_at
    await refused(awards.report(m.id, org, admin, text="再报", photos=[]), 409)
    assert await PersonNotice.filter(topic="milestone.decided").count() == 3
    release = (await TenderRelease.filter(tender_id=t.tender.id).order_by("-id").first()).data
    assert release["tag"] == ["implementation"]
    assert release["contracts"][0]["implementation"]["milestones"][0]["status"] == "met"


async def test_overdue_milestones_become_not_met_once(settings):
    t, op, contract = await contracted(settings)
    await awards.sign(contract.id, op, settings, signed_on=datetime.now(SHANGHAI).date())
    due = date(2026, 12, 1)
    m = await awards.add_milestone(contract.id, op, settings, title="月度", description="",
                                   due_date=due)
    later = await awards.add_milestone(contract.id, op, settings, title="次月", description="",
                                       due_date=date(2026, 12, 31))
    # 23:59 in Shanghai on the due day: not yet.
    assert await awards.mark_overdue(settings, datetime(2026, 12, 1, 15, 59, tzinfo=UTC)) == 0
    end = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert await awards.mark_overdue(settings, end) == 1
    assert await awards.mark_overdue(settings, end) == 0
    assert (await Milestone.get(id=m.id)).status == MilestoneStatus.NOT_MET
    assert (await Milestone.get(id=later.id)).status == MilestoneStatus.SCHEDULED
    # A late acceptance still counts as met, after the due day.
    late = await awards.report(m.id, t.bids[1].organisation_id, t.admins[1], text="补交",
                               photos=[], now=end + timedelta(days=2))
    await awards.decide(late.id, op, settings, decision="accepted", reason="")
    met = await Milestone.get(id=m.id)
    assert met.status == MilestoneStatus.MET and met.date_met > end


# --- pages ----------------------------------------------------------------------------------

async def test_the_evaluation_page_is_for_operators_and_assigned_evaluators(settings, app):
    t = await opened(settings, evaluators=1)
    await create_staff()
    await StaffUser.create(username="ev9", password_hash=password_hash(), role=Role.EVALUATOR)
    url = f"/staff/tenders/{t.tender.code}/evaluation"
    for name, status in (("op", 200), ("boss", 200), ("ev1", 200), ("roads", 404),
                         ("ev9", 404)):
        async with await orgs_setup.staff_client(app, name) as c:
            page = await c.get(url)
            assert page.status_code == status, name
            assert ("方案1" in page.text) == (status == 200)
    async with await orgs_setup.staff_client(app, "op") as c:
        assert "完成评审" in (await c.get(url)).text
        english = (await c.get(url + "?lang=en")).text
        assert "Finalise the evaluation" in english and "Preview of the ranking" in english
    async with await orgs_setup.staff_client(app, "ev1") as c:
        # Evaluators score on their own: no running ranking, no finalise button.
        english = (await c.get(url + "?lang=en")).text
        assert "Preview of the ranking" not in english and "Finalise" not in english
        assert "Save the scores" in english
        assert (await c.get("/staff/tenders/GT-2026-99999/evaluation")).status_code == 404
        token = await orgs_setup.csrf_of(c, url)
        bid = t.bids[0]
        scores = {f"score_{cr.id}": "88.5" for cr in t.criteria}
        done = await c.post(f"{url}/bids/{bid.id}/scores", data={"csrf_token": token, **scores})
        assert done.status_code == 303
        assert await CriterionScore.filter(bid_id=bid.id).count() == 3
        for bad in ("101", "abc", "1.999", "x" * 5000):
            r = await c.post(f"{url}/bids/{bid.id}/scores",
                             data={"csrf_token": token, f"score_{t.criteria[0].id}": bad})
            assert r.status_code == 422, bad
        for junk in ("abc", "99999999999999999999", "-1", "0"):
            r = await c.post(f"{url}/bids/{junk}/scores",
                             data={"csrf_token": token, f"score_{t.criteria[0].id}": "50"})
            assert r.status_code == 404, junk
        r = await c.post(f"{url}/bids/{bid.id}/scores", data={f"score_{t.criteria[0].id}": "1"})
        assert r.status_code == 403
        # An evaluator finalises nothing.
        r = await c.post(f"{url}/finalise", data={"csrf_token": token})
        assert r.status_code == 403
    async with await orgs_setup.staff_client(app, "ev9") as c:
        r = await c.post(f"{url}/bids/{bid.id}/scores", data={"csrf_token": "x"})
        assert r.status_code == 404


async def test_no_evaluation_page_before_the_opening(settings, app):
    t = await opened(settings, opened_ago=0)
    await create_staff()
    for name in ("op", "ev1"):
        async with await orgs_setup.staff_client(app, name) as c:
            url = f"/staff/tenders/{t.tender.code}/evaluation"
            assert (await c.get(url)).status_code == 404
            assert (await c.post(f"{url}/finalise", data={})).status_code == 404
    assert (await Tender.get(id=t.tender.id)).finalised_at is None


async def test_the_whole_flow_through_the_pages(settings, app):
    t = await example(settings)
    await create_staff()
    url = f"/staff/tenders/{t.tender.code}/evaluation"
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, url)
        assert (await op.post(f"{url}/finalise", data={"csrf_token": token})).status_code == 303
        again = await op.post(f"{url}/finalise", data={"csrf_token": token})
        assert again.status_code == 303 and await BidResult.all().count() == 3
        page = await op.get(url)
        assert "88.39" in page.text and "86.72" in page.text
        award = await Award.get(tender_id=t.tender.id)
        for junk in ("x", "999999", "²", "0", "1%0A", "9" * 30):
            r = await op.post(f"{url}/awards/{junk}/confirm", data={"csrf_token": token})
            assert r.status_code == 404
        # Before the award is active the bidders see no result.
        async with await orgs_setup.member_client(app, t.admins[0]) as m:
            assert (await m.get(f"/org/tenders/{t.tender.code}/result")).status_code == 404
        assert (await op.post(f"{url}/awards/{award.id}/confirm",
                              data={"csrf_token": token})).status_code == 303
        contract = await Contract.get(tender_id=t.tender.id)
        for bad in ("", "2026-13-01", "tomorrow", "9" * 100, "0001-01-01", "9999-12-31",
                    "２０２６-01-01"):
            r = await op.post(f"{url}/contracts/{contract.id}/sign",
                              data={"csrf_token": token, "date_signed": bad})
            assert r.status_code == 422, bad
            r = await op.post(f"{url}/contracts/{contract.id}/milestones",
                              data={"csrf_token": token, "title": "验收", "due_date": bad})
            assert r.status_code == 422, bad
        today = datetime.now(SHANGHAI).date().isoformat()
        assert (await op.post(f"{url}/contracts/{contract.id}/sign",
                              data={"csrf_token": token, "date_signed": today})).status_code == 303
        r = await op.post(f"{url}/contracts/{contract.id}/milestones",
                          data={"csrf_token": token, "title": "季度验收", "due_date": today})
        assert r.status_code == 303
    milestone = await Milestone.get(contract_id=contract.id)

    async with await orgs_setup.member_client(app, t.admins[0]) as loser:
        page = await loser.get(f"/org/tenders/{t.tender.code}/result")
        assert page.status_code == 200 and "86.72" in page.text and "88.39" in page.text
        assert "79.43" not in page.text
        assert (await loser.get(f"/org/contracts/{contract.id}")).status_code == 404
        assert (await loser.get("/org/contracts/abc")).status_code == 404
    async with await orgs_setup.member_client(app, t.admins[1]) as winner:
        listing = await winner.get("/org/contracts")
        assert listing.status_code == 200 and t.tender.code in listing.text
        page_url = f"/org/contracts/{contract.id}"
        token = await orgs_setup.csrf_of(winner, page_url)
        post = f"{page_url}/milestones/{milestone.id}/report"
        r = await winner.post(post, data={"csrf_token": token, "text": "完成"},
                              files=[("photos", ("a.jpg", jpeg_with_exif(), "image/jpeg"))])
        assert r.status_code == 303
        stored = await MilestonePhoto.get(report__milestone_id=milestone.id)
        data = (settings.media_dir / stored.path).read_bytes()
        assert b"SecretCam" not in data and b"SerialX123" not in data
        assert not Image.open(io.BytesIO(data)).getexif()
        shown = await winner.get(f"{page_url}/photos/{stored.id}")
        assert shown.status_code == 200 and shown.content == data
        on_disk = sorted(p for p in settings.media_dir.rglob("*") if p.is_file())
        # Not a photo, too many photos, no text, no token, not multipart: 4xx.
        r = await winner.post(post, data={"csrf_token": token, "text": "x"},
                              files=[("photos", ("a.jpg", b"not an image", "image/jpeg"))])
        assert r.status_code == 400
        r = await winner.post(post, data={"csrf_token": token, "text": "x"}, files=[
            ("photos", (f"{i}.jpg", jpeg_with_exif(), "image/jpeg")) for i in range(5)])
        assert r.status_code == 400
        r = await winner.post(post, data={"csrf_token": token, "text": " "}, files=[
            ("photos", ("a.jpg", jpeg_with_exif((10, 200, 10)), "image/jpeg"))])
        assert r.status_code == 422
        r = await winner.post(post, data={"csrf_token": token, "text": "x"}, files=[
            ("photos", ("a.jpg", jpeg_with_exif((10, 10, 200)), "image/jpeg")),
            ("photos", ("b.jpg", b"not an image", "image/jpeg"))])
        assert r.status_code == 400
        # Refused reports leave no photo on disk.
        assert sorted(p for p in settings.media_dir.rglob("*") if p.is_file()) == on_disk
        r = await winner.post(post, data={"text": "x"}, files=[("photos", ("a", b"", "x/y"))])
        assert r.status_code == 403
        r = await winner.post(post, data={"csrf_token": token, "text": "x"})
        assert r.status_code == 415
        assert await MilestoneReport.filter(milestone_id=milestone.id).count() == 1
    report = await MilestoneReport.get(milestone_id=milestone.id)
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, url)
        shown = await op.get(f"{url}/photos/{stored.id}")
        assert shown.status_code == 200
        r = await op.post(f"{url}/reports/{report.id}/decide",
                          data={"csrf_token": token, "decision": "bogus", "reason": ""})
        assert r.status_code == 422
        r = await op.post(f"{url}/reports/{report.id}/decide",
                          data={"csrf_token": token, "decision": "accepted", "reason": ""})
        assert r.status_code == 303
    assert (await Milestone.get(id=milestone.id)).status == MilestoneStatus.MET


async def test_the_low_bid_explanation_page(settings, app):
    t = await opened(settings, ("250000.00", "268000.00", "231000.00", "180000.00"))
    await LowBidReview.create(bid=t.bids[3], flagged_at=datetime.now(UTC),
                              mean_others=D("249666.67"), ratio=D("0.800"))
    url = f"/org/tenders/{t.tender.code}/explain"
    async with await orgs_setup.member_client(app, t.admins[0]) as other:
        assert (await other.get(url)).status_code == 404
    async with await orgs_setup.member_client(app, t.admins[3]) as low:
        token = await orgs_setup.csrf_of(low, url)
        for bad, status in (("", 422), ("x" * 20000, 422)):
            r = await low.post(url, data={"csrf_token": token, "explanation": bad})
            assert r.status_code == status
        r = await low.post(url, data={"csrf_token": token, "explanation": "志愿者参与，成本低"})
        assert r.status_code == 200
    review = await LowBidReview.get(bid_id=t.bids[3].id)
    assert review.explanation == "志愿者参与，成本低"
    await create_staff()
    async with await orgs_setup.staff_client(app, "op") as op:
        eval_url = f"/staff/tenders/{t.tender.code}/evaluation"
        token = await orgs_setup.csrf_of(op, eval_url)
        assert "志愿者参与，成本低" in (await op.get(eval_url)).text
        r = await op.post(f"{eval_url}/low-bids/{review.id}",
                          data={"csrf_token": token, "decision": "accepted", "reason": "合理"})
        assert r.status_code == 303
    assert (await LowBidReview.get(id=review.id)).decision == "accepted"


async def test_an_evaluator_sees_its_tenders_and_no_case(app, settings):
    """Evaluators (评审专家) score tenders: the case console, its API and other tenders stay
    closed to them."""
    from portal.intake.service import submit
    from portal.intake.submission import Submission
    from portal.staff import service as staff

    t = await opened(settings)
    await create_staff()
    receipt = await submit(Submission(reporter="tg:777", channel="telegram", category="garbage",
                                      text="垃圾堆在路边三天了没人清理", lat=31.2356, lng=121.4810,
                                      crs="wgs84", language="zh-CN"),
                           throttle=app.state.throttle, settings=settings)
    other = await Tender.create(
        code="GT-2026-00009", title="别的项目", description="-", service_type="cleaning",
        area=t.tender.area, budget=D("1000.00"), contract_start=t.tender.contract_start,
        contract_end=t.tender.contract_end, procedure="tender", method="lowest_price",
        deadline=t.tender.deadline, status=TenderStatus.ACTIVE, created_by="staff:op",
        created_at=t.tender.created_at, updated_at=t.tender.created_at)
    async with await orgs_setup.staff_client(app, "ev1") as ev:
        queue = await ev.get("/staff")
        assert queue.status_code == 303 and queue.headers["location"] == "/staff/tenders"
        mine = await ev.get("/staff/tenders")
        assert mine.status_code == 200
        assert "GT-2026-00001" in mine.text and "GT-2026-00009" not in mine.text
        assert (await ev.get(f"/staff/cases/{receipt.case_code}")).status_code == 404
        assert (await ev.get(f"/staff/tenders/{other.code}/evaluation")).status_code == 404
        assert (await ev.get(f"/staff/tenders/{t.tender.code}/evaluation")).status_code == 200
        assert (await ev.get("/staff/orgs")).status_code == 404
    token, _session = await staff.start_session(await StaffUser.get(username="ev1"))
    headers = {"Authorization": f"Bearer {token}"}
    async with orgs_setup._client(app, {}) as api:
        listed = await api.get("/api/v1/staff/cases", headers=headers)
        assert listed.status_code == 200 and receipt.case_code not in listed.text
        one = await api.get(f"/api/v1/staff/cases/{receipt.case_code}", headers=headers)
        assert one.status_code == 404
        status = await api.post(f"/api/v1/staff/cases/{receipt.case_code}/status",
                                json={"status": "accepted"}, headers=headers)
        assert status.status_code == 404
