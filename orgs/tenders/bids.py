"""Submitting, replacing and withdrawing a sealed bid (org admins only, before the deadline).

Every write starts its transaction with the guarded UPDATE of the tender row (§5.3): after the
deadline, or once the opening has claimed the tender, it matches nothing and the write is
refused, so no bid slips in after the opening and none is lost to it. The bidder gets a
receipt (version, time, fingerprint), never an echo of the content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from orgs import notify
from orgs.assessment.service import suspended_from_bidding
from orgs.registry.models import Organisation, OrgStatus
from orgs.registry.service import OrgError, has_current_training
from orgs.tenders import seal
from orgs.tenders.models import Bid, BidEvent, BidStatus, Tender, TenderStatus
from portal.cases.service import SHANGHAI
from portal.i18n import _
from portal.settings import Settings

MAX_PRICE = Decimal("1e12")
PROPOSAL_CHARS = 20000
TEAM_ROWS = 30
TEAM_FIELD_CHARS = 100


@dataclass
class Receipt:
    version: int
    at: datetime
    fingerprint: str


def receipt_of(bid: Bid) -> Receipt | None:
    if bid.status == BidStatus.WITHDRAWN or not bid.digest:
        return None
    return Receipt(bid.version, bid.submitted_at, bid.digest[:16])


def parse_price(value: str) -> str:
    """The price as a plain string with two decimals, or OrgError."""
    cleaned = (value or "").strip().replace(",", "").replace("，", "")
    try:
        price = Decimal(cleaned)
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or price <= 0 or price >= MAX_PRICE or price != round(price, 2):
        raise OrgError(_("Give the price in yuan, more than zero, with at most two decimals."),
                       422)
    return f"{price:.2f}"


def parse_team(text: str) -> list[dict]:
    """One member a line: name | role | qualification."""
    team = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("｜", "|").split("|")] + ["", ""]
        if not parts[0] or any(len(p) > TEAM_FIELD_CHARS for p in parts[:3]):
            raise OrgError(_("Each team line needs a name; each part at most {n} characters."),
                           422, n=TEAM_FIELD_CHARS)
        team.append({"name": parts[0], "role": parts[1], "qualification": parts[2]})
    if len(team) > TEAM_ROWS:
        raise OrgError(_("At most {n} team members."), 422, n=TEAM_ROWS)
    return team


async def can_bid(org: Organisation, tender: Tender, now: datetime | None = None
                  ) -> OrgError | None:
    if org.status == OrgStatus.SUSPENDED:
        return OrgError(_("A suspended organisation cannot bid."), 403)
    if org.status != OrgStatus.VERIFIED:
        return OrgError(_("Only a verified organisation can bid."), 403)
    suspension = await suspended_from_bidding(org.id, now or datetime.now(UTC))
    if suspension is not None:
        return OrgError(_("Your organisation is suspended from bidding until {until} after its "
                          "assessments."), 403,
                        until=suspension.ends_at.astimezone(SHANGHAI).strftime("%Y-%m-%d"))
    if not await has_current_training(org, tender.service_type, tender.deadline):
        return OrgError(_("Your organisation needs pre-job training for this service that is "
                          "valid on the deadline."), 403)
    return None


async def _claim_tender(conn, tender: Tender, now: datetime) -> None:
    moved = await Tender.filter(id=tender.id, status=TenderStatus.ACTIVE,
                                opened_at__isnull=True, deadline__gt=now).using_db(conn) \
        .update(bid_lock=F("bid_lock") + 1)
    if not moved:
        raise OrgError(_("The deadline has passed: this tender takes no more bids."), 409)


async def submit(settings: Settings, tender: Tender, org: Organisation, *, actor: str,
                 price: str, proposal: str, team: list[dict],
                 now: datetime | None = None) -> Receipt:
    """A new bid, or a new version of the organisation's bid (the old one is overwritten)."""
    price = parse_price(price)
    proposal = (proposal or "").strip()
    if not 1 <= len(proposal) <= PROPOSAL_CHARS:
        raise OrgError(_("Write the proposal: 1 to {n} characters."), 422, n=PROPOSAL_CHARS)
    if len(team) > TEAM_ROWS:
        raise OrgError(_("At most {n} team members."), 422, n=TEAM_ROWS)
    problem = await can_bid(org, tender, now)
    if problem:
        raise problem
    async with in_transaction() as conn:
        # Stamped after can_bid's queries: the deadline check and submitted_at are one moment.
        now = now or datetime.now(UTC)
        await _claim_tender(conn, tender, now)
        bid = await Bid.get_or_none(tender_id=tender.id, organisation_id=org.id).using_db(conn)
        if bid is not None and bid.status not in (BidStatus.INVITED, BidStatus.PENDING,
                                                   BidStatus.WITHDRAWN):
            raise OrgError(_("This bid can no longer change."), 409)
        version = (bid.version if bid else 0) + 1
        sealed, digest = seal.seal(settings, tender_id=tender.id, org_id=org.id,
                                   version=version, price=price, proposal=proposal, team=team)
        kind = "replaced" if bid is not None and bid.status == BidStatus.PENDING else "submitted"
        if bid is None:
            bid = await Bid.create(tender_id=tender.id, organisation_id=org.id,
                                   status=BidStatus.PENDING, version=version, submitted_at=now,
                                   sealed=sealed, digest=digest, using_db=conn)
        else:
            await Bid.filter(id=bid.id).using_db(conn).update(
                status=BidStatus.PENDING, version=version, submitted_at=now, withdrawn_at=None,
                sealed=sealed, digest=digest)
        await BidEvent.create(bid_id=bid.id, kind=kind, version=version, digest=digest,
                              actor=actor[:100], created_at=now, using_db=conn)
        await notify.to_org(
            org.id, topic="bid.received", ref=f"bid:{bid.id}:v{version}",
            title=_("Bid received for {tender}"),
            body=_("Your bid for {tender} was received: version {version}, fingerprint "
                   "{fingerprint}. Nobody can read it before the deadline."),
            url=f"/org/tenders/{tender.code}/receipt", code=tender.code, conn=conn,
            tender=tender.code,
            version=version, fingerprint=digest[:16])
    return Receipt(version, now, digest[:16])


async def withdraw(tender: Tender, org: Organisation, *, actor: str,
                   now: datetime | None = None) -> None:
    """The bid is destroyed unopened; the organisation may bid again before the deadline."""
    now = now or datetime.now(UTC)
    async with in_transaction() as conn:
        await _claim_tender(conn, tender, now)
        bid = await Bid.get_or_none(tender_id=tender.id, organisation_id=org.id).using_db(conn)
        if bid is None or bid.status != BidStatus.PENDING:
            raise OrgError(_("There is no bid to withdraw."), 409)
        await Bid.filter(id=bid.id).using_db(conn).update(
            status=BidStatus.WITHDRAWN, withdrawn_at=now, sealed=None, digest=None)
        await BidEvent.create(bid_id=bid.id, kind="withdrawn", version=bid.version,
                              digest=bid.digest, actor=actor[:100], created_at=now,
                              using_db=conn)
