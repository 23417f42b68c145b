"""The task sweep: release claims not started in time, close tasks that have ended."""

from __future__ import annotations

from orgs.tasks import service
from portal.settings import Settings


async def release_due(settings: Settings) -> int:
    return await service.release_due() + await service.close_due()
