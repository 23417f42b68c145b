"""The hourly sweep that computes the period of the Shanghai month just ended, once."""

from __future__ import annotations

from datetime import UTC, datetime

from orgs.assessment import service
from orgs.assessment.models import Period
from orgs.registry.service import OrgError
from portal.settings import Settings


async def compute_due(settings: Settings, *, now: datetime | None = None) -> int:
    """1 when it computed the period of the month just ended, 0 when that period exists: the
    operator recomputes from then on."""
    now = now or datetime.now(UTC)
    starts_on, ends_on = service.previous_month(now)
    if await Period.filter(starts_on=starts_on, ends_on=ends_on).exists():
        return 0
    try:
        await service.compute(starts_on, ends_on, now=now)
    except OrgError:
        # Published meanwhile by an operator who computed it first.
        return 0
    return 1
