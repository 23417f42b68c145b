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


async def _disqualified(org: Organisation, tender: Tender, price: Decimal) -> str | None:
    if org.status == OrgStatus.SUSPENDED:
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


async def _open_one(settings: Settings, tender_id: int, now: datetime) -> bool:
    seed = secrets.token_hex(16)
    async with in_transaction() as conn:
        claimed = await Tender.filter(
            id=tender_id, status=TenderStatus.ACTIVE, opened_at__isnull=True,
            deadline__lte=now).using_db(conn).update(
            opened_at=now, updated_at=now,
            draw_seed_hash=hashlib.sha256(seed.encode()).hexdigest(),
            draw_seed_sealed=seal.seal_seed(settings, tender_id, seed))
        if not claimed:
            return False
        tender = await Tender.get(id=tender_id).using_db(conn)
        bids = await Bid.filter(tender_id=tender_id, status=BidStatus.PENDING).using_db(conn) \
            .order_by("id")
        valid: dict[int, Decimal] = {}
        for bid in bids:
            try:
                content = seal.unseal(settings, tender, bid, now)
            except seal.SealBroken:
                # A changed key or a damaged row: recorded, never guessed at.
                log.error("tender %s: bid %s does not unseal", tender.code, bid.id)
                content = {"price": None, "proposal": None, "team": None}
            price = Decimal(content["price"]) if content["price"] else None
            org = await Organisation.get(id=bid.organisation_id).using_db(conn)
            reason = await _disqualified(org, tender, price) if price else "other"
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
            for bid_id, mean in low_flags(valid, ratio).items():
                await LowBidReview.create(bid_id=bid_id, flagged_at=now,
                                          mean_others=mean.quantize(CENT), ratio=ratio,
                                          using_db=conn)
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
