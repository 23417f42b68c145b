"""Where each person's dialogue state lives between messages: the database by default, Redis
when configured. Saves are compare-and-set on a version number, so two server processes
handling two messages of one person at once (Telegram delivers over parallel connections, an
album is several messages) never overwrite each other: the loser reloads and applies its
message again.

State expires after the draft lifetime the privacy notice promises
(GRIDLINK_DIALOGUE_DRAFT_DAYS): Redis by the key's TTL, the database by `sweep_expired` (run
hourly by each process that saves, and fit for a scheduler).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Protocol

from tortoise.exceptions import IntegrityError

from bot.dialogue.models import DialogueState
from portal.cases.service import utcnow
from portal.settings import Settings


class Conflict(Exception):
    """Someone else saved this person's state since it was loaded."""


class DialogueStore(Protocol):
    async def load(self, identity: str) -> tuple[dict, int]:
        """The state and its version; ({}, 0) for nobody known."""
        ...

    async def save(self, identity: str, state: dict, version: int) -> int:
        """Save if the stored version is still `version`; the new version, or Conflict."""
        ...

    async def forget(self, identity: str) -> None: ...

    async def close(self) -> None: ...


class DbDialogueStore:
    # Expired rows are deleted by the process that saves, at most this often (an indexed
    # delete), so the promised lifetime holds without a scheduler.
    SWEEP_EVERY = timedelta(hours=1)

    def __init__(self, lifetime: timedelta):
        self.lifetime = lifetime
        self._next_sweep = utcnow()

    async def load(self, identity: str) -> tuple[dict, int]:
        row = await DialogueState.get_or_none(identity=identity)
        if row is None:
            return {}, 0
        # Past its lifetime but not swept yet: as good as gone (the version still guards
        # the save).
        if row.expires_at <= utcnow():
            return {}, row.version
        return dict(row.state or {}), row.version

    async def save(self, identity: str, state: dict, version: int) -> int:
        now = utcnow()
        expires = now + self.lifetime
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY
            await sweep_expired(now)
        if version == 0:
            try:
                await DialogueState.create(identity=identity, state=state, version=1,
                                           updated_at=now, expires_at=expires)
            except IntegrityError as exc:
                raise Conflict(identity) from exc
            return 1
        changed = await DialogueState.filter(identity=identity, version=version).update(
            state=state, version=version + 1, updated_at=now, expires_at=expires)
        if not changed:
            raise Conflict(identity)
        return version + 1

    async def forget(self, identity: str) -> None:
        await DialogueState.filter(identity=identity).delete()

    async def close(self) -> None:
        return None


async def sweep_expired(now: datetime | None = None) -> int:
    """Delete the database's dialogue states (unfinished reports) past their lifetime;
    idempotent. The photos of a swept draft stay on disk under their hash
    (a filed report may hold the same picture)."""
    return await DialogueState.filter(expires_at__lte=now or utcnow()).delete()


# KEYS[1]: the state's key. ARGV: expected version, new state JSON, TTL in seconds.
# Answers the new version, or 0 when the stored version differs (a missing key is version 0).
_CAS = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', current + 1, 's', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return current + 1
"""


class RedisDialogueStore:
    def __init__(self, url: str, lifetime: timedelta, prefix: str = "gridlink:dialogue"):
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url)
        self.ttl = max(1, int(lifetime.total_seconds()))
        self.prefix = prefix
        self._cas = self.redis.register_script(_CAS)

    def _key(self, identity: str) -> str:
        return f"{self.prefix}:{identity}"

    async def load(self, identity: str) -> tuple[dict, int]:
        found = await self.redis.hmget(self._key(identity), "v", "s")
        if found[0] is None:
            return {}, 0
        return json.loads(found[1] or b"{}"), int(found[0])

    async def save(self, identity: str, state: dict, version: int) -> int:
        new = await self._cas(keys=[self._key(identity)],
                              args=[version, json.dumps(state, ensure_ascii=False), self.ttl])
        if not new:
            raise Conflict(identity)
        return int(new)

    async def forget(self, identity: str) -> None:
        await self.redis.delete(self._key(identity))

    async def close(self) -> None:
        await self.redis.aclose()


def store_for(settings: Settings) -> DialogueStore:
    lifetime = timedelta(days=settings.dialogue_draft_days)
    if settings.redis_url:
        return RedisDialogueStore(settings.redis_url, lifetime)
    return DbDialogueStore(lifetime)
