"""Tenders: publishing rules, sealed bids (submit, replace, withdraw), the deadline, the
opening (once, however often it runs), disqualification, unsuccessful tenders, low bids."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from feedback.models import PersonNotice
from orgs.registry.models import OrgStatus
from orgs.registry.service import OrgError, change_status
from orgs.tenders import bids, opening, service
from orgs.tenders.models import (
    Bid,
    BidEvent,
    LowBidReview,
    Tender,
    TenderEvaluator,
    TenderRelease,
)
from portal.staff.models import Role, StaffUser
from tests import orgs_setup
from tests.staff import create_staff, password_hash
from tests.tenders_setup import bid, close, draft, published

pytestmark = pytest.mark.usefixtures("clean_db")


async def _publish_refused(settings, **changes) -> str:
    area = await orgs_setup.area()
    tender = await service.create(draft(area.id, **changes), actor="staff:op")
    with pytest.raises(OrgError) as refused:
        await service.publish(tender, settings, actor="staff:op")
    assert (await Tender.get(id=tender.id)).status == "planning"
    return refused.value.message


async def test_publish_checks_the_rules(settings):
    start = date.today() + timedelta(days=30)
    weights = dict(method="comprehensive", criteria=[("服务方案", "", Decimal("0.5")),
                                                     ("团队", "", Decimal("0.2"))])
    assert "100%" in await _publish_refused(settings, price_weight=Decimal("0.29"), **weights)
    assert "10%" in await _publish_refused(
        settings, price_weight=Decimal("0.05"), method="comprehensive",
        criteria=[("服务方案", "", Decimal("0.95"))])
    assert "30%" in await _publish_refused(
        settings, procedure="negotiation", price_weight=Decimal("0.40"), method="comprehensive",
        criteria=[("服务方案", "", Decimal("0.60"))])
    assert "criteria" in await _publish_refused(settings, criteria=[("方案", "", Decimal("1"))])
    assert "criterion" in await _publish_refused(settings, method="comprehensive",
                                                 price_weight=Decimal("1"))
    assert "reason" in await _publish_refused(settings, contract_end=start + timedelta(days=500))
    assert "three years" in await _publish_refused(
        settings, contract_end=start + timedelta(days=4 * 365), long_period_reason="长期服务")
    assert "future" in await _publish_refused(
        settings, deadline=datetime.now(UTC) - timedelta(minutes=1))
    assert "zero" in await _publish_refused(settings, budget=Decimal("0"))

    # Exactly 100% (30 + 50 + 20) publishes, with its OCDS release.
    tender = await published(settings, price_weight=Decimal("0.30"), **weights)
    assert tender.status == "active" and re.fullmatch(r"GT-\d{4}-\d{5}", tender.code)
    two_years = await published(settings, contract_end=start + timedelta(days=700),
                                long_period_reason="设备投入需要两年")
    assert two_years.status == "active"
    release = await TenderRelease.get(tender_id=tender.id)
    assert release.tag == ["tender"]
    assert release.data["tender"]["awardCriteria"] == "ratedCriteria"
    assert "bids" not in release.data


async def test_codes_are_unique_when_made_at_once(settings):
    area = await orgs_setup.area()
    made = await asyncio.gather(*(service.create(draft(area.id), actor="staff:op")
                                  for _ in range(5)))
    codes = sorted(t.code for t in made)
    assert len(set(codes)) == 5 and codes[0].endswith("-00001") and codes[-1].endswith("-00005")


async def test_cancel_and_retender(settings):
    tender = await published(settings)
    org = await orgs_setup.organisation(1)
    await bid(settings, tender, org, "1000.00")
    with pytest.raises(OrgError):
        await service.cancel(tender, settings, actor="staff:op", reason="  ")
    cancelled = await service.cancel(tender, settings, actor="staff:op", reason="需求取消")
    assert cancelled.status == "cancelled"
    assert (await Bid.get(tender_id=tender.id)).sealed is None
    assert await TenderRelease.filter(tender_id=tender.id, release_id__endswith=
                                      "-tenderCancellation").exists()

    failed = await close(await published(settings))
    assert await opening.open_due(settings) == 1
    failed = await Tender.get(id=failed.id)
    assert failed.status == "unsuccessful" and failed.status_reason == "fewer_than_3_valid"
    with pytest.raises(OrgError):
        await service.retender(cancelled, actor="staff:op",
                               deadline=datetime.now(UTC) + timedelta(days=2))
    again = await service.retender(failed, actor="staff:op",
                                   deadline=datetime.now(UTC) + timedelta(days=2))
    again = await service.publish(again, settings, actor="staff:op")
    release = await TenderRelease.get(tender_id=again.id)
    assert release.data["relatedProcesses"][0]["relationship"] == ["unsuccessfulProcess"]


async def test_evaluators(settings):
    await create_staff()
    tender = await published(settings)
    judge = await StaffUser.create(username="judge", password_hash=password_hash(),
                                   role=Role.EVALUATOR)
    await service.assign_evaluator(tender, "judge", actor="staff:op")
    assert await TenderEvaluator.filter(tender_id=tender.id, staff_user_id=judge.id).exists()
    with pytest.raises(OrgError):
        await service.assign_evaluator(tender, "judge", actor="staff:op")
    with pytest.raises(OrgError):
        await service.assign_evaluator(tender, "op", actor="staff:op")  # an operator
    mine = await published(settings)
    await Tender.filter(id=mine.id).update(created_by="staff:judge")
    with pytest.raises(OrgError, match="creator"):
        await service.assign_evaluator(await Tender.get(id=mine.id), "judge", actor="staff:op")


async def test_submit_replace_withdraw_through_the_pages(settings, app):
    tender = await published(settings)
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("boss1", org=org)
    async with await orgs_setup.member_client(app, admin) as c:
        url = f"/org/tenders/{tender.code}/bid"
        form = await c.get(url + "?lang=en")
        assert form.status_code == 200
        assert "nobody, you included, can see this bid before the deadline" in form.text
        token = await orgs_setup.csrf_of(c, url)
        sent = await c.post(url, data={"csrf_token": token, "price": "1234.50",
                                       "proposal": "方案一", "team": "张三 | 队长 | 持证"})
        assert sent.status_code == 303 and sent.headers["location"].endswith("/receipt")
        receipt = await c.get(sent.headers["location"] + "?lang=en")
        row = await Bid.get(tender_id=tender.id)
        assert "version 1" in receipt.text and row.digest[:16] in receipt.text
        assert "1234.50" not in receipt.text and "方案一" not in receipt.text

        again = await c.post(url, data={"csrf_token": token, "price": "1000",
                                        "proposal": "方案二"})
        assert again.status_code == 303
        form = await c.get(url)
        assert "方案二" not in form.text and "1000" not in form.text.replace("100,000", "")
        row = await Bid.get(tender_id=tender.id)
        assert row.version == 2 and row.status == "pending" and row.price is None

        gone = await c.post(f"/org/tenders/{tender.code}/withdraw", data={"csrf_token": token})
        assert gone.status_code == 303
        row = await Bid.get(tender_id=tender.id)
        assert row.status == "withdrawn" and row.sealed is None
        assert (await c.post(f"/org/tenders/{tender.code}/withdraw",
                             data={"csrf_token": token})).status_code == 409

        back = await c.post(url, data={"csrf_token": token, "price": "999", "proposal": "三"})
        assert back.status_code == 303
        row = await Bid.get(tender_id=tender.id)
        assert row.version == 3 and row.status == "pending"
    kinds = await BidEvent.filter(bid_id=row.id).order_by("id").values_list("kind", flat=True)
    assert kinds == ["submitted", "replaced", "withdrawn", "submitted"]


async def test_no_bid_after_the_deadline(settings, app):
    tender = await published(settings)
    org = await orgs_setup.organisation(1)
    with pytest.raises(OrgError, match="deadline"):
        await _submit_late(settings, tender, org)
    admin = await orgs_setup.account("boss1", org=org)
    async with await orgs_setup.member_client(app, admin) as c:
        url = f"/org/tenders/{tender.code}/bid"
        token = await orgs_setup.csrf_of(c, url)
        await close(tender)
        late = await c.post(url, data={"csrf_token": token, "price": "100", "proposal": "迟"})
        assert late.status_code == 409
    assert not await Bid.filter(tender_id=tender.id).exists()
    # The page load after the deadline opened it (no bids: unsuccessful).
    assert (await Tender.get(id=tender.id)).opened_at is not None


async def _submit_late(settings, tender, org):
    return await bids.submit(settings, tender, org, actor="test", price="100", proposal="迟",
                             team=[], now=tender.deadline + timedelta(seconds=1))


async def test_opening_runs_once_when_run_twice_at_once(settings):
    tender = await published(settings, budget=Decimal("5000"))
    orgs = [await orgs_setup.organisation(n) for n in range(1, 5)]
    for org, price in zip(orgs, ("1000", "1100", "1200", "9000"), strict=True):
        await bid(settings, tender, org, price)
    await close(tender)
    counts = await asyncio.gather(opening.open_due(settings), opening.open_due(settings))
    assert sorted(counts) == [0, 1]
    assert await opening.open_due(settings) == 0
    tender = await Tender.get(id=tender.id)
    assert tender.status == "active" and tender.opened_at is not None
    assert len(tender.draw_seed_hash) == 64 and tender.draw_seed_sealed
    assert await BidEvent.filter(bid__tender_id=tender.id, kind="opened").count() == 4
    over = await Bid.get(tender_id=tender.id, organisation_id=orgs[3].id)
    assert over.status == "disqualified" and over.disqualified_reason == "over_budget"
    assert over.price == Decimal("9000.00")
    assert await Bid.filter(tender_id=tender.id, status="valid").count() == 3
    update = await TenderRelease.get(tender_id=tender.id, release_id__endswith="-tenderUpdate")
    assert update.data["bids"]["statistics"][1] == {"id": "2", "measure": "validBids",
                                                     "value": 3}


async def test_fewer_than_three_valid_is_unsuccessful(settings):
    tender = await published(settings, budget=Decimal("5000"))
    orgs = [await orgs_setup.organisation(n) for n in range(1, 4)]
    for org, price in zip(orgs, ("1000", "1100", "6000"), strict=True):
        await bid(settings, tender, org, price)
    await change_status(orgs[1].id, OrgStatus.SUSPENDED, actor="staff:op", reason="违规")
    await close(tender)
    assert await opening.open_due(settings) == 1
    tender = await Tender.get(id=tender.id)
    assert tender.status == "unsuccessful" and tender.status_reason == "fewer_than_3_valid"
    reasons = dict(await Bid.filter(tender_id=tender.id).values_list(
        "organisation_id", "disqualified_reason"))
    assert reasons == {orgs[0].id: None, orgs[1].id: "suspended", orgs[2].id: "over_budget"}
    assert not await LowBidReview.all().exists()


async def test_abnormally_low_bids_are_flagged_not_rejected(settings):
    tender = await published(settings)
    orgs = [await orgs_setup.organisation(n) for n in range(1, 5)]
    for org, price in zip(orgs, ("100000", "100000", "80000", "60000"), strict=True):
        await bid(settings, tender, org, price)
    await close(tender)
    await opening.open_due(settings)
    flagged = await LowBidReview.all().prefetch_related("bid")
    # 60,000 < 0.8 × 93,333.33; 80,000 is not below 0.8 × 86,666.67 = 69,333.33.
    assert [r.bid.organisation_id for r in flagged] == [orgs[3].id]
    assert flagged[0].mean_others == Decimal("93333.33") and flagged[0].bid.status == "valid"
    assert opening.low_flags({1: Decimal(80), 2: Decimal(100), 3: Decimal(100)},
                             Decimal("0.8")) == {}


async def test_bad_input_is_refused_clearly(settings, app):
    tender = await published(settings)
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("boss1", org=org)
    async with await orgs_setup.member_client(app, admin) as c:
        url = f"/org/tenders/{tender.code}/bid"
        token = await orgs_setup.csrf_of(c, url)
        for price in ("abc", "-1", "0", "1.234", "1e400", "NaN", "Infinity", "12元", ""):
            res = await c.post(url, data={"csrf_token": token, "price": price,
                                          "proposal": "方案"})
            assert res.status_code == 422, (price, res.status_code)
        for data in ({"price": "100", "proposal": ""}, {"price": "100", "proposal": "x" * 20001},
                     {"price": "100", "proposal": "方案", "team": "\n".join(["甲"] * 31)},
                     {"price": "100", "proposal": "方案", "team": "| 无名"}):
            res = await c.post(url, data={"csrf_token": token, **data})
            assert res.status_code == 422, data
        assert (await c.post(url, data={"price": "100", "proposal": "方案"})).status_code == 403
        assert (await c.post(url, content=b"\xff" * 10, headers={
            "content-type": "application/octet-stream"})).status_code == 415
        for junk in ("x", "GT-2026-1", "GT-9999-99999", "%00", "GT-2026-00001%27"):
            assert (await c.get(f"/org/tenders/{junk}/bid")).status_code == 404
            assert (await c.get(f"/tenders/{junk}")).status_code == 404
    assert not await Bid.all().exists()
    await create_staff()
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, "/staff/tenders/new")
        area = await orgs_setup.area()
        good = {"csrf_token": token, "title": "保洁", "description": "说明", "service_type":
                "cleaning", "area": str(area.id), "budget": "1000", "contract_start":
                "2027-01-01", "contract_end": "2027-12-31", "procedure": "tender",
                "method": "lowest_price", "deadline": "2030-01-01T10:00"}
        for bad in ({"budget": "lots"}, {"contract_start": "2027-13-45"}, {"deadline": "soon"},
                    {"service_type": "x"}, {"area": "999999999"}, {"title": ""},
                    {"method": "comprehensive", "price_weight": "150"},
                    {"source_case": "GL-00000000-0000"},
                    {"deadline": "0001-01-01T00:00"}, {"contract_end": "9999-12-31"},
                    {"area": "999999999999"}, {"price_weight": "1e999999999",
                                               "method": "comprehensive"},
                    {"criterion_name": "方案", "criterion_weight": "NaN"}):
            res = await op.post("/staff/tenders", data={**good, **bad})
            assert 400 <= res.status_code < 500, (bad, res.status_code)
        made = await op.post("/staff/tenders", data=good)
        assert made.status_code == 303
        code = made.headers["location"].rsplit("/", 1)[1]
        assert (await op.post(f"/staff/tenders/{code}/publish",
                              data={"csrf_token": token})).status_code == 303
        assert (await Tender.get(code=code)).status == "active"
        # Refused, changed nothing: the console steps go back to the tender with a message.
        for step, answer in (("publish", 303), ("retender", 422), ("evaluators", 303),
                             ("cancel", 303)):
            res = await op.post(f"/staff/tenders/{code}/{step}", data={"csrf_token": token})
            assert res.status_code == answer, step
            if answer == 303:
                assert res.headers["location"] == f"/staff/tenders/{code}", step
        assert (await Tender.get(code=code)).status == "active"
        assert (await op.get("/staff/tenders/nope")).status_code == 404


async def test_only_admins_of_able_organisations_bid(settings, app):
    tender = await published(settings)
    org = await orgs_setup.organisation(1)
    untrained = await orgs_setup.organisation(2, trained=False)
    pending = await orgs_setup.organisation(3, verified=False)
    member = await orgs_setup.account("plain", org=org, role="member")
    lonely = await orgs_setup.account("lonely")
    url = f"/org/tenders/{tender.code}/bid"
    for acct in (member, lonely):
        async with await orgs_setup.member_client(app, acct) as c:
            assert (await c.get(url)).status_code == 403
            assert (await c.post(url, data={"price": "1", "proposal": "x"})).status_code == 403
    for n, other in ((2, untrained), (3, pending)):
        acct = await orgs_setup.account(f"boss{n}", org=other)
        async with await orgs_setup.member_client(app, acct) as c:
            page = await c.get(url)
            assert page.status_code == 200 and 'name="price"' not in page.text
            token = await orgs_setup.csrf_of(c, "/report")
            res = await c.post(url, data={"csrf_token": token, "price": "1", "proposal": "x"})
            assert res.status_code == 403
    assert not await Bid.all().exists()
    async with await orgs_setup.member_client(app, member) as c:
        assert (await c.get("/org/tenders")).status_code == 200


async def test_staff_pages_by_role(settings, app):
    await create_staff()
    await StaffUser.create(username="judge", password_hash=password_hash(), role=Role.EVALUATOR)
    tender = await published(settings)
    for name, status in (("op", 200), ("boss", 200), ("roads", 404), ("judge", 404)):
        async with await orgs_setup.staff_client(app, name) as c:
            for url in ("/staff/tenders", "/staff/tenders/new", f"/staff/tenders/{tender.code}"):
                if name == "judge" and url == "/staff/tenders":
                    # An evaluator's list holds only the tenders it is assigned to.
                    listed = await c.get(url)
                    assert listed.status_code == 200 and tender.code not in listed.text
                    continue
                assert (await c.get(url)).status_code == status, (name, url)
    async with await orgs_setup.staff_client(app, "op") as c:
        page = await c.get(f"/staff/tenders/{tender.code}")
        assert tender.code in page.text


async def test_a_changed_seal_key_leaves_the_tender_unopened(settings, app, caplog):
    tender = await published(settings)
    orgs = [await orgs_setup.organisation(n) for n in range(1, 4)]
    for org, price in zip(orgs, ("1000", "1100", "1200"), strict=True):
        await bid(settings, tender, org, price, proposal="密封的方案内容")
    await close(tender)
    other = settings.model_copy(update={"bid_seal_key": base64.b64encode(bytes(32)).decode()})
    caplog.set_level(logging.INFO)
    assert await opening.open_due(other) == 0
    assert await opening.open_due(other) == 0
    kept = await Tender.get(id=tender.id)
    assert kept.status == "active" and kept.opened_at is None and not kept.draw_seed_hash
    assert kept.status_reason == opening.SEAL_BROKEN
    assert await Bid.filter(tender_id=tender.id, status="pending", sealed__isnull=False,
                            price__isnull=True).count() == 3
    assert not await BidEvent.filter(bid__tender_id=tender.id, kind="opened").exists()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all(tender.code in r.getMessage() for r in errors)
    assert "密封" not in caplog.text and "1100" not in caplog.text

    await create_staff()
    app.state.settings = other
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get(f"/staff/tenders/{tender.code}?lang=en")
    assert page.status_code == 200
    assert "The opening failed" in page.text and "GRIDLINK_BID_SEAL_KEY" in page.text

    # The right key back: the next sweep opens it as if nothing had happened.
    assert await opening.open_due(settings) == 1
    opened = await Tender.get(id=tender.id)
    assert opened.opened_at is not None and opened.status_reason is None
    assert await Bid.filter(tender_id=tender.id, status="valid").count() == 3


async def test_cancelling_during_the_evaluation_does_not_say_unopened(settings):
    tender = await published(settings)
    orgs = [await orgs_setup.organisation(n) for n in range(1, 4)]
    admins = [await orgs_setup.account(f"adm{n}", org=org) for n, org in enumerate(orgs)]
    for org, price in zip(orgs, ("1000", "1100", "1200"), strict=True):
        await bid(settings, tender, org, price)
    await close(tender)
    assert await opening.open_due(settings) == 1
    await service.cancel(await Tender.get(id=tender.id), settings, actor="staff:op",
                         reason="预算调整")
    for admin in admins:
        notice = await PersonNotice.get(person_id=admin.person_id, topic="tender.cancelled")
        assert "预算调整" in notice.texts["en"]["body"]
        assert "never opened" not in notice.texts["en"]["body"]
        assert "during its evaluation" in notice.texts["en"]["body"]

    unopened = await published(settings)
    await bid(settings, unopened, orgs[0], "1000")
    await service.cancel(unopened, settings, actor="staff:op", reason="需求取消")
    notice = await PersonNotice.filter(person_id=admins[0].person_id,
                                       topic="tender.cancelled").order_by("-id").first()
    assert "never opened" in notice.texts["en"]["body"]


async def test_hostile_numbers_are_refused_not_crashed(settings, app):
    await create_staff()
    area = await orgs_setup.area()
    for page in ("²", "٣", "0", "-1", "1.5", "9" * 40, ""):
        r = await app_get(app, f"/api/v1/orgs/ocds/releases.json?page={page}")
        assert r.status_code == 400, page
    assert (await app_get(app, "/api/v1/orgs/ocds/releases.json?page=1")).status_code == 200
    async with await orgs_setup.staff_client(app, "op") as op:
        token = await orgs_setup.csrf_of(op, "/staff/tenders/new")
        start = date.today() + timedelta(days=30)
        form = {"csrf_token": token, "title": "保洁", "description": "每日保洁。",
                "service_type": "cleaning", "budget": "300000",
                "contract_start": start.isoformat(),
                "contract_end": (start + timedelta(days=300)).isoformat(),
                "procedure": "tender", "method": "lowest_price",
                "deadline": (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")}
        for bad in ("²", "٣", "9" * 12, "0", ""):
            r = await op.post("/staff/tenders", data={**form, "area": bad})
            assert r.status_code == 422, (bad, r.status_code)
        r = await op.post("/staff/tenders", data={**form, "area": str(area.id)})
        assert r.status_code == 303


async def app_get(app, path: str):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        return await c.get(path)
