"""Wakes the open tracking pages of a case when it has news.

The delivery worker publishes the cases it fanned out; every server process waiting on one of
them reads the case's new events at once instead of at its next poll. With GRIDLINK_REDIS_URL
the news travels through Redis pub/sub to every process (the worker may run in another one);
without it, within the one process. The pages still poll (settings.live_poll_seconds), for
what is not fanned out (a new report, a department) and for a missed message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("gridlink.live")

CHANNEL = "gridlink:live:"
RECONNECT_S = 1.0


class LiveBus:
    def __init__(self, redis_url: str = ""):
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._redis = Redis.from_url(redis_url) if redis_url else None
        self._reader: asyncio.Task | None = None

    async def publish(self, case_ids: Iterable[int]) -> None:
        if self._redis is None:
            self._wake(case_ids)
            return
        try:
            for case_id in set(case_ids):
                await self._redis.publish(f"{CHANNEL}{case_id}", b"1")
        except (RedisError, OSError) as exc:
            log.warning("live updates not published: %s", exc)

    async def wait(self, case_id: int, seconds: float) -> None:
        """Until the case has news or `seconds` pass."""
        if self._redis is not None and self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="live-updates")
        event = asyncio.Event()
        waiters = self._waiters.setdefault(case_id, set())
        waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(case_id, None)

    def _wake(self, case_ids: Iterable[int]) -> None:
        for case_id in case_ids:
            for event in self._waiters.get(case_id, ()):
                event.set()

    async def _read(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{CHANNEL}*")
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        tail = message["channel"].rsplit(b":", 1)[-1]
                        if tail.isdigit():
                            self._wake([int(tail)])
            except (RedisError, OSError) as exc:
                log.warning("live updates: Redis subscription lost (%s); reconnecting", exc)
            await asyncio.sleep(RECONNECT_S)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._redis is not None:
            await self._redis.aclose()
