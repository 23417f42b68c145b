"""Per-person throttling of new reports, shared by all worker processes through Redis.

The limits are moving windows in `limits` notation ("5/10 minutes;20/day"). With
GRIDLINK_REDIS_URL set, the `limits` library keeps them in Redis for every worker process; in
the one-process default they live in process memory (`LocalWindows`).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


class LocalWindows:
    """Moving windows in process memory: per key, the times of its recent hits, oldest first.

    (limits' own async memory storage sweeps every key through a thread hop in a background
    task that never rests; with a day's worth of reporters that costs more than the intake.)
    """

    SWEEP_EVERY_S = 60.0

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = {}
        self._horizon = 0.0
        self._next_sweep = 0.0

    def hit(self, key: str, items: list[RateLimitItem], now: float) -> float | None:
        """Count one hit when every window allows it; else seconds until one would."""
        times = self.hits.get(key, [])
        for item in items:
            window = item.get_expiry()
            in_window = len(times) - bisect_left(times, now - window)
            if in_window >= item.amount:
                # The hit that has to leave the window before another one fits.
                oldest = times[len(times) - item.amount]
                return oldest + window - now
        horizon = max(item.get_expiry() for item in items)
        self._horizon = max(self._horizon, horizon)
        times = times[bisect_left(times, now - horizon):]
        times.append(now)
        self.hits[key] = times
        if now >= self._next_sweep:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget people whose last hit left every window (a pass over the keys, once a minute)."""
        self._next_sweep = now + self.SWEEP_EVERY_S
        stale = now - self._horizon
        for key in [k for k, t in self.hits.items() if not t or t[-1] < stale]:
            del self.hits[key]

    async def reset(self) -> None:
        self.hits.clear()


def storage_for(redis_url: str) -> Storage | LocalWindows:
    if redis_url:
        return RedisStorage(redis_url.replace("redis://", "async+redis://", 1)
                            if redis_url.startswith("redis://") else redis_url)
    return LocalWindows()


class Throttle:
    """`whole_seconds`: waits are told to people, in whole seconds (at least one); without it
    they are exact, for pacing machines (progress updates to a platform)."""

    def __init__(self, storage: Storage | LocalWindows, limits: str,
                 namespace: str = "gridlink:new-report", *, whole_seconds: bool = True):
        self.storage = storage
        self.whole_seconds = whole_seconds
        self.items: list[RateLimitItem] = parse_many(limits)
        self.namespace = namespace
        self.limiter = (None if isinstance(storage, LocalWindows)
                        else MovingWindowRateLimiter(storage))

    async def hit(self, key: int | str) -> float | None:
        """Count one hit (a new report of a person...). None when allowed, else seconds until
        one would be."""
        key = str(key)
        if self.limiter is None:
            return self._wait(self.storage.hit(f"{self.namespace}/{key}", self.items,
                                               time.time()))
        for item in self.items:
            if not await self.limiter.test(item, self.namespace, key):
                return await self._retry_after(item, key)
        for item in self.items:
            if not await self.limiter.hit(item, self.namespace, key):
                return await self._retry_after(item, key)
        return None

    async def _retry_after(self, item: RateLimitItem, key: str) -> float:
        stats = await self.limiter.get_window_stats(item, self.namespace, key)
        return self._wait(stats.reset_time - time.time())

    def _wait(self, seconds: float | None) -> float | None:
        if seconds is None:
            return None
        return max(1.0, math.ceil(seconds)) if self.whole_seconds else max(0.0, seconds)

    async def reset(self) -> None:
        await self.storage.reset()
