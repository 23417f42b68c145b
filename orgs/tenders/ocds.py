"""OCDS releases (1.1, with the bid extension), written once in the transaction of each change,
and the public release package.

A release is a snapshot of what is public at that moment: no Bid row is read while the tender
is not opened, and after the opening only the bid statistics are published (§5.4).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orgs import web
from orgs.tenders.models import Bid, BidStatus, Tender, TenderCriterion, TenderRelease
from portal.cases.service import SHANGHAI
from portal.settings import Settings

BID_EXTENSION = ("https://raw.githubusercontent.com/open-contracting-extensions/"
                 "ocds_bid_extension/v1.1.5/extension.json")
BUYER = "gridlink-buyer"
PAGE_SIZE = 100
METHODS = {"tender": ("open", "公开招标"), "negotiation": ("open", "竞争性磋商")}
CRITERIA = {"lowest_price": "priceOnly", "comprehensive": "ratedCriteria"}

router = APIRouter(prefix="/api/v1/orgs/ocds", tags=["ocds"])


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(day, end: bool = False) -> str:
    return datetime.combine(day, time(23, 59, 59) if end else time(0), SHANGHAI).isoformat()


def ocid(settings: Settings, tender: Tender) -> str:
    return f"{settings.ocid_prefix}-{tender.code}"


async def _tender_part(conn, tender: Tender) -> dict:
    method, details = METHODS.get(tender.procedure, ("open", tender.procedure))
    part = {
        "id": tender.code, "title": tender.title, "description": tender.description,
        "status": tender.status.value if hasattr(tender.status, "value") else tender.status,
        "value": {"amount": float(tender.budget), "currency": "CNY"},
        "procurementMethod": method, "procurementMethodDetails": details,
        "mainProcurementCategory": "services",
        "awardCriteria": CRITERIA.get(tender.method, tender.method),
        "tenderPeriod": {"startDate": stamp(tender.published_at or tender.created_at),
                         "endDate": stamp(tender.deadline)},
        "contractPeriod": {"startDate": _local(tender.contract_start),
                           "endDate": _local(tender.contract_end, end=True)},
    }
    if tender.method == "comprehensive":
        criteria = await TenderCriterion.filter(tender_id=tender.id).using_db(conn) \
            .order_by("position")
        shares = [f"价格 {tender.price_weight * 100:.2f}%"] + [
            f"{c.name} {c.weight * 100:.2f}%" for c in criteria]
        part["awardCriteriaDetails"] = "综合评分法：" + "，".join(shares)
    return part


async def _statistics(conn, tender: Tender) -> list[dict]:
    # Only ever called after the opening (the caller checks opened_at).
    statuses = await Bid.filter(tender_id=tender.id).using_db(conn).values_list(
        "status", flat=True)
    submitted = [s for s in statuses if s != BidStatus.WITHDRAWN]
    return [{"id": "1", "measure": "bids", "value": len(submitted)},
            {"id": "2", "measure": "validBids",
             "value": sum(1 for s in submitted if s == BidStatus.VALID)}]


async def release(conn, settings: Settings, tender: Tender, tag: str,
                  now: datetime) -> TenderRelease:
    """The release of `tag` for the tender as it stands in `conn`'s transaction."""
    n = await TenderRelease.filter(tender_id=tender.id).using_db(conn).count() + 1
    the_ocid = ocid(settings, tender)
    data = {
        "ocid": the_ocid, "id": f"{the_ocid}-{n:04d}-{tag}", "date": stamp(now), "tag": [tag],
        "initiationType": "tender", "language": "zh",
        "parties": [{"id": BUYER, "name": settings.ocds_publisher_name,
                     "roles": ["buyer", "procuringEntity"]}],
        "buyer": {"id": BUYER, "name": settings.ocds_publisher_name},
        "tender": await _tender_part(conn, tender),
    }
    if tender.retender_of_id:
        earlier = await Tender.get(id=tender.retender_of_id).using_db(conn)
        data["relatedProcesses"] = [{"id": "1", "relationship": ["unsuccessfulProcess"],
                                     "scheme": "ocid", "identifier": ocid(settings, earlier),
                                     "title": earlier.title}]
    if tender.opened_at is not None and tag == "tenderUpdate":
        data["bids"] = {"statistics": await _statistics(conn, tender)}
    return await TenderRelease.create(tender_id=tender.id, release_id=data["id"], tag=[tag],
                                      date=now, data=data, using_db=conn)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


@router.get("/releases.json")
async def releases(request: Request, tender: str = "", page: str = "1"):
    """A release package: every release, or one tender's, 100 a page, oldest first."""
    settings = request.app.state.settings
    number = web.number(page, 100000)
    if number is None:
        return _error(400, "page must be a positive number")
    query = TenderRelease.all()
    if tender:
        found = await Tender.get_or_none(code=tender[:20])
        if found is None:
            return _error(404, "There is no such tender.")
        query = query.filter(tender_id=found.id)
    rows = await query.order_by("id").offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    return JSONResponse({
        "uri": str(request.url), "version": "1.1", "extensions": [BID_EXTENSION],
        "publishedDate": stamp(rows[-1].date if rows else datetime.now(UTC)),
        "publisher": {"name": settings.ocds_publisher_name},
        "releases": [r.data for r in rows]})
