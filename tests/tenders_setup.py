"""Tenders, bids and the clock for the tender tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from orgs.registry.models import Organisation
from orgs.tenders import bids, service
from orgs.tenders.models import Tender
from tests import orgs_setup


def draft(area_id: int, **changes) -> service.Draft:
    start = date.today() + timedelta(days=30)
    values = dict(title="南京东路公共区域保洁", description="每日两次保洁。", service_type="cleaning",
                  area_id=area_id, budget=Decimal("300000.00"), contract_start=start,
                  contract_end=start + timedelta(days=364), procedure="tender",
                  method="lowest_price", deadline=datetime.now(UTC) + timedelta(days=1))
    values.update(changes)
    return service.Draft(**values)


async def published(settings, **changes) -> Tender:
    area = await orgs_setup.area()
    tender = await service.create(draft(area.id, **changes), actor="staff:op")
    return await service.publish(tender, settings, actor="staff:op")


async def bid(settings, tender: Tender, org: Organisation, price: str, *,
              proposal: str = "每日保洁方案", team: list[dict] | None = None) -> bids.Receipt:
    return await bids.submit(settings, tender, org, actor="test", price=price,
                             proposal=proposal, team=team or [])


async def close(tender: Tender) -> Tender:
    """The deadline moved into the past, as if it had passed (bids need it ahead)."""
    await Tender.filter(id=tender.id).update(deadline=datetime.now(UTC) - timedelta(minutes=1))
    return await Tender.get(id=tender.id)
