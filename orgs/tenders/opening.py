"""The opening of sealed bids: a sweep every minute, and at once when a tender page is loaded
after the deadline.

One guarded UPDATE claims the tender (status active, not opened, deadline passed), so the
opening runs once however often, late or concurrently it is called; a failure rolls the whole
opening back. Then the bids are unsealed, checked, counted, and the low ones flagged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal

from tortoise.transactions import in_transaction

from orgs import notify
from orgs.assessment.service import suspended_from_bidding
from orgs.registry.models import Organisation, OrgStatus
from orgs.registry.service import has_current_training
from orgs.tenders import ocds, seal
from orgs.tenders.models import (
    Bid,
    BidEvent,
    BidStatus,
    LowBidReview,
    Tender,
    TenderStatus,
)
from orgs.tenders.scoring import explain_due
from portal.cases.service import SHANGHAI
from portal.i18n import _
from portal.settings import Settings

log = logging.getLogger("gridlink.orgs")
ACTOR = "system:opening"
CENT = Decimal("0.01")
REASONS = {"over_budget": _("the price is above the budget"),
           "not_verified": _("the organisation is not verified"),
           "suspended": _("the organisation is suspended"),
           "no_training": _("no valid pre-job training on the deadline"),
           "abnormally_low": _("abnormally low price not justified"),
           "other": _("other")}
# Tender.status_reason of an active tender whose opening failed: a bid does not unseal.
SEAL_BROKEN = "seal_broken"


async def _disqualified(org: Organisation, tender: Tender, price: Decimal) -> str | None:
    if org.status == OrgStatus.SUSPENDED or await suspended_from_bidding(org.id,
                                                                         tender.deadline):
        return "suspended"
    if org.status != OrgStatus.VERIFIED:
        return "not_verified"
    if not await has_current_training(org, tender.service_type, tender.deadline):
        return "no_training"
    if price > tender.budget:
        return "over_budget"
    return None


def low_flags(prices: dict[int, Decimal], ratio: Decimal) -> dict[int, Decimal]:
    """Bid id → mean of the other prices, for each price below ratio × that mean."""
    if len(prices) < 2:
        return {}
    total = sum(prices.values(), Decimal(0))
    flags = {}
    for bid_id, price in prices.items():
        mean = (total - price) / (len(prices) - 1)
        if price < ratio * mean:
            flags[bid_id] = mean
    return flags


async def _ask_explanation(settings: Settings, review: LowBidReview, org_id: int,
                           tender: Tender, conn) -> None:
    """The flagged bidder's admins are asked for a written explanation by the due time."""
    due = explain_due(review, settings).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    await notify.to_org(
        org_id, conn=conn, topic="bid.explain", ref=f"explain:{tender.code}", code=tender.code,
        url=f"/org/tenders/{tender.code}/explain", link=_("Explain your price"),
        tender=tender.code, due=due,
        title=_("Please explain your price for {tender}"),
        body=_("Your price for {tender} is abnormally low compared with the other valid bids. "
               "Please explain in writing how you can deliver at this price by {due} (Beijing "
               "time). The evaluators decide whether the price is accepted."))


async def _open_one(settings: Settings, tender_id: int, now: datetime) -> bool:
    """Opens the tender, or leaves it unopened for the next sweep when a bid does not unseal:
    a changed key must never destroy a tender by disqualifying its bids."""
    try:
        return await _open_claimed(settings, tender_id, now)
    except seal.SealBroken:
        code = await Tender.filter(id=tender_id).values_list("code", flat=True)
        log.error("tender %s: the opening failed, a bid does not unseal with the bid seal key "
                  "(GRIDLINK_BID_SEAL_KEY); it is retried every minute", code[0] if code else "?")
        await Tender.filter(id=tender_id, status=TenderStatus.ACTIVE,
                            opened_at__isnull=True).update(status_reason=SEAL_BROKEN)
        return False


async def _open_claimed(settings: Settings, tender_id: int, now: datetime) -> bool:
    seed = secrets.token_hex(16)
    async with in_transaction() as conn:
        claimed = await Tender.filter(
            id=tender_id, status=TenderStatus.ACTIVE, opened_at__isnull=True,
            deadline__lte=now).using_db(conn).update(
            opened_at=now, updated_at=now, status_reason=None,
            draw_seed_hash=hashlib.sha256(seed.encode()).hexdigest(),
            draw_seed_sealed=seal.seal_seed(settings, tender_id, seed))
        if not claimed:
            return False
        tender = await Tender.get(id=tender_id).using_db(conn)
        bids = await Bid.filter(tender_id=tender_id, status=BidStatus.PENDING).using_db(conn) \
            .prefetch_related("organisation").order_by("id")
        valid: dict[int, Decimal] = {}
        for bid in bids:
            # SealBroken rolls the whole opening back (see _open_one).
            content = seal.unseal(settings, tender, bid, now)
            price = Decimal(content["price"])
            reason = await _disqualified(bid.organisation, tender, price)
            status = BidStatus.DISQUALIFIED if reason else BidStatus.VALID
            await Bid.filter(id=bid.id).using_db(conn).update(
                opened_at=now, price=price, proposal=content["proposal"], team=content["team"],
                status=status, disqualified_reason=reason)
            await BidEvent.create(bid_id=bid.id, kind="opened", version=bid.version,
                                  digest=bid.digest, actor=ACTOR, created_at=now, using_db=conn)
            await BidEvent.create(bid_id=bid.id, kind=status.value, version=bid.version,
                                  actor=ACTOR, created_at=now, using_db=conn)
            if not reason:
                valid[bid.id] = price
        if len(valid) < settings.tender_min_valid_bids:
            await Tender.filter(id=tender_id).using_db(conn).update(
                status=TenderStatus.UNSUCCESSFUL,
                status_reason=f"fewer_than_{settings.tender_min_valid_bids}_valid")
        else:
            ratio = Decimal(str(settings.abnormally_low_ratio))
            owners = {bid.id: bid.organisation_id for bid in bids}
            for bid_id, mean in low_flags(valid, ratio).items():
                review = await LowBidReview.create(bid_id=bid_id, flagged_at=now,
                                                   mean_others=mean.quantize(CENT), ratio=ratio,
                                                   using_db=conn)
                await _ask_explanation(settings, review, owners[bid_id], tender, conn)
        tender = await Tender.get(id=tender_id).using_db(conn)
        await ocds.release(conn, settings, tender, "tenderUpdate", now)
        failed = tender.status == TenderStatus.UNSUCCESSFUL
        for bid in bids:
            await notify.to_org(
                bid.organisation_id, topic="tender.unsuccessful" if failed else "tender.opened",
                ref=f"tender:{tender_id}:opened", code=tender.code, conn=conn,
                tender=tender.code,
                url=f"/org/tenders/{tender.code}/bid",
                title=_("Tender {tender} was unsuccessful") if failed
                else _("Bids for {tender} were opened"),
                body=_("The bids for {tender} were opened: {valid} valid, fewer than needed. "
                       "The tender is unsuccessful.") if failed
                else _("The bids for {tender} were opened: {valid} valid. Evaluation follows."),
                valid=len(valid))
    log.info("tender %s opened: %d valid", tender.code, len(valid))
    return True


async def open_due(settings: Settings, now: datetime | None = None) -> int:
    """Opens every tender whose deadline has passed; returns how many this call opened."""
    now = now or datetime.now(UTC)
    due = await Tender.filter(status=TenderStatus.ACTIVE, opened_at__isnull=True,
                              deadline__lte=now).order_by("deadline").values_list("id",
                                                                                   flat=True)
    opened = 0
    for tender_id in due:
        opened += await _open_one(settings, tender_id, now)
    return opened


async def open_if_due(settings: Settings, tender: Tender, now: datetime | None = None) -> Tender:
    """The tender, opened first if its deadline has passed (pages call it before showing it)."""
    now = now or datetime.now(UTC)
    if tender.status == TenderStatus.ACTIVE and tender.opened_at is None \
            and tender.deadline <= now:
        await _open_one(settings, tender.id, now)
        return await Tender.get(id=tender.id)
    return tender
