"""Abnormally low bids (DESIGN §6.4): the opening asks the flagged bidder's admins for an
explanation by a due time, the explanation is refused after it, the operator still decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedback.models import PersonNotice
from orgs.registry.service import SHANGHAI, OrgError
from orgs.tenders import opening, scoring
from orgs.tenders.models import LowBidReview, Tender
from tests import orgs_setup
from tests.staff import create_staff
from tests.tenders_setup import bid, close, published

PRICES = ("100000", "100000", "80000", "60000")


async def _opened_with_a_low_bid(settings):
    tender = await published(settings)
    orgs = [await orgs_setup.organisation(n) for n in range(1, 5)]
    admins = [await orgs_setup.account(f"boss{n}", org=org) for n, org in enumerate(orgs, 1)]
    member = await orgs_setup.account("helper4", org=orgs[3], role="member")
    for org, price in zip(orgs, PRICES, strict=True):
        await bid(settings, tender, org, price)
    await close(tender)
    assert await opening.open_due(settings) == 1
    return await Tender.get(id=tender.id), orgs, admins, member


def _shanghai(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


async def test_the_flagged_bidder_is_asked_to_explain_by_a_due_time(settings):
    settings.low_bid_explain_hours = 24
    tender, orgs, admins, member = await _opened_with_a_low_bid(settings)
    review = await LowBidReview.get(bid__organisation_id=orgs[3].id)
    due = _shanghai(review.flagged_at + timedelta(hours=24))
    notices = await PersonNotice.filter(topic="bid.explain")
    assert [n.person_id for n in notices] == [admins[3].person_id]
    notice = notices[0]
    assert notice.url == f"/org/tenders/{tender.code}/explain" and notice.code == tender.code
    assert due in notice.texts["zh-CN"]["body"] and due in notice.texts["en"]["body"]
    assert tender.code in notice.texts["en"]["title"]
    # The plain member and the other bidders are not asked.
    assert not await PersonNotice.filter(topic="bid.explain",
                                         person_id=member.person_id).exists()
    # Opening again (a second sweep) asks nobody twice.
    assert await opening.open_due(settings) == 0
    assert await PersonNotice.filter(topic="bid.explain").count() == 1


async def test_an_explanation_after_the_due_time_is_refused(settings, app):
    tender, orgs, admins, _member = await _opened_with_a_low_bid(settings)
    review = await LowBidReview.get(bid__organisation_id=orgs[3].id)
    url = f"/org/tenders/{tender.code}/explain"
    due = _shanghai(review.flagged_at + timedelta(hours=settings.low_bid_explain_hours))
    async with await orgs_setup.member_client(app, admins[3]) as low:
        page = await low.get(url + "?lang=en")
        assert page.status_code == 200 and due in page.text and "Explain by" in page.text
        token = await orgs_setup.csrf_of(low, url)
        r = await low.post(url, data={"csrf_token": token, "explanation": "志愿者参与，成本低"})
        assert r.status_code == 200
        # The due time passes.
        late = datetime.now(UTC) - timedelta(hours=settings.low_bid_explain_hours, minutes=1)
        await LowBidReview.filter(id=review.id).update(flagged_at=late)
        page = await low.get(url)
        assert page.status_code == 200 and 'name="explanation"' not in page.text
        r = await low.post(url + "?lang=en", data={"csrf_token": token,
                                                   "explanation": "再补充一点"})
        assert r.status_code == 409 and "ended on" in r.text
        r = await low.post(url, data={"csrf_token": token, "explanation": "再补充一点"})
        assert r.status_code == 409 and "北京时间" in r.text
    assert (await LowBidReview.get(id=review.id)).explanation == "志愿者参与，成本低"
    # The operator still decides, and sees when the explanation was due.
    await create_staff()
    async with await orgs_setup.staff_client(app, "op") as op:
        eval_url = f"/staff/tenders/{tender.code}/evaluation"
        page = await op.get(eval_url + "?lang=en")
        assert "Explanation due by " + _shanghai(late + timedelta(
            hours=settings.low_bid_explain_hours)) in page.text
        token = await orgs_setup.csrf_of(op, eval_url)
        r = await op.post(f"{eval_url}/low-bids/{review.id}",
                          data={"csrf_token": token, "decision": "accepted", "reason": "合理"})
        assert r.status_code == 303
    assert (await LowBidReview.get(id=review.id)).decision == "accepted"


async def test_the_due_time_follows_the_setting(settings):
    tender, orgs, _admins, _member = await _opened_with_a_low_bid(settings)
    review = await LowBidReview.get(bid__organisation_id=orgs[3].id)
    settings.low_bid_explain_hours = 1
    later = review.flagged_at + timedelta(hours=1, seconds=1)
    with pytest.raises(OrgError) as refused:
        await scoring.explain_low_bid(tender, orgs[3].id, actor="account:boss4",
                                      explanation="说明", settings=settings, now=later)
    assert refused.value.status == 409
    settings.low_bid_explain_hours = 2
    done = await scoring.explain_low_bid(tender, orgs[3].id, actor="account:boss4",
                                         explanation="说明", settings=settings, now=later)
    assert done.explanation == "说明"
