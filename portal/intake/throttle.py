"""Per-person throttling of new reports, shared by all worker processes through Redis.

The `limits` library keeps the moving windows: in process memory by default, in Redis when
GRIDLINK_REDIS_URL is set.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


def storage_for(redis_url: str) -> Storage:
    if redis_url:
        return RedisStorage(redis_url.replace("redis://", "async+redis://", 1)
                            if redis_url.startswith("redis://") else redis_url)
    return MemoryStorage()


class Throttle:
    def __init__(self, storage: Storage, limits: str, namespace: str = "gridlink:new-report"):
        self.storage = storage
        self.items: list[RateLimitItem] = parse_many(limits)
        self.namespace = namespace
        self.limiter = MovingWindowRateLimiter(storage)

    async def hit(self, person_id: int) -> float | None:
        """Count one new report. None when allowed, else seconds until the person may send."""
        key = str(person_id)
        for item in self.items:
            if not await self.limiter.test(item, self.namespace, key):
                return await self._retry_after(item, key)
        for item in self.items:
            if not await self.limiter.hit(item, self.namespace, key):
                return await self._retry_after(item, key)
        return None

    async def _retry_after(self, item: RateLimitItem, key: str) -> float:
        stats = await self.limiter.get_window_stats(item, self.namespace, key)
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def reset(self) -> None:
        await self.storage.reset()
