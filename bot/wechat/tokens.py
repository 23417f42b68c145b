"""The account's access token, shared by every server process.

WeChat hands out one access token per account at a time (valid up to 2 hours); each process
fetching its own would keep invalidating the others'. So the token lives in Redis when
GRIDLINK_REDIS_URL is set, else in the `wechat_token` table, and one process refreshes it a few
minutes before it expires: the one that takes the lease. The others keep using the old token
while it is still valid, or wait for the new one (polling, with a deadline). A token WeChat
rejects (40001/42001/40014) is refreshed the same way, unless another process already did.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from bot.wechat.models import WeChatToken
from portal.cases.service import utcnow
from portal.settings import Settings

# Refresh this long before the token expires, so that no call goes out with a dying token.
REFRESH_AHEAD = timedelta(minutes=5)
# Longer than one token fetch can take (it has its HTTP timeout): a process that died holding
# the lease blocks the others no longer than this.
LEASE = timedelta(seconds=30)
WAIT_POLL_S = 0.05
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TokenUnavailable(Exception):
    """No valid token, and the process refreshing it did not finish in time."""


@dataclass(frozen=True)
class Stored:
    token: str
    expires_at: datetime


class TokenStore(Protocol):
    async def load(self, app_id: str) -> Stored | None: ...

    async def lease(self, app_id: str, until: datetime) -> bool:
        """Take the refresh lease unless another process holds it."""
        ...

    async def save(self, app_id: str, token: str, expires_at: datetime) -> None:
        """Store a new token and give the lease back."""
        ...

    async def release(self, app_id: str) -> None: ...

    async def close(self) -> None: ...


class DbTokenStore:
    async def load(self, app_id: str) -> Stored | None:
        row = await WeChatToken.get_or_none(app_id=app_id)
        if row is None or not row.token:
            return None
        return Stored(row.token, row.expires_at)

    async def lease(self, app_id: str, until: datetime) -> bool:
        try:
            await WeChatToken.get_or_create(app_id=app_id,
                                            defaults={"token": "", "expires_at": _EPOCH})
        except IntegrityError:
            pass  # another process created the row at the same moment
        now = utcnow()
        taken = await WeChatToken.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now), app_id=app_id
        ).update(lease_until=until)
        return taken == 1

    async def save(self, app_id: str, token: str, expires_at: datetime) -> None:
        await WeChatToken.filter(app_id=app_id).update(token=token, expires_at=expires_at,
                                                        lease_until=None)

    async def release(self, app_id: str) -> None:
        await WeChatToken.filter(app_id=app_id).update(lease_until=None)

    async def close(self) -> None:
        return None


# KEYS[1]: the lease key; ARGV[1]: its holder. Deletes it only while we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    def __init__(self, url: str, prefix: str = "gridlink:wechat"):
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self.holder = secrets.token_hex(8)
        self._release = self.redis.register_script(_RELEASE)

    def _key(self, app_id: str, what: str) -> str:
        return f"{self.prefix}:{app_id}:{what}"

    async def load(self, app_id: str) -> Stored | None:
        token, expires = await self.redis.hmget(self._key(app_id, "token"), "t", "e")
        if not token:
            return None
        return Stored(token.decode(), datetime.fromtimestamp(float(expires), UTC))

    async def lease(self, app_id: str, until: datetime) -> bool:
        ms = max(1, int((until - utcnow()).total_seconds() * 1000))
        return bool(await self.redis.set(self._key(app_id, "lease"), self.holder, nx=True, px=ms))

    async def save(self, app_id: str, token: str, expires_at: datetime) -> None:
        key = self._key(app_id, "token")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"t": token, "e": expires_at.timestamp()})
            pipe.expireat(key, int(expires_at.timestamp()) + 1)
            await pipe.execute()
        await self.release(app_id)

    async def release(self, app_id: str) -> None:
        await self._release(keys=[self._key(app_id, "lease")], args=[self.holder])

    async def close(self) -> None:
        await self.redis.aclose()


def token_store_for(settings: Settings) -> TokenStore:
    if settings.redis_url:
        return RedisTokenStore(settings.redis_url)
    return DbTokenStore()


# (force_refresh) -> (token, expires_in seconds)
Fetch = Callable[[bool], Awaitable[tuple[str, int]]]


class SharedToken:
    """One process's view of the shared token: `get()` answers a token good for a while."""

    def __init__(self, store: TokenStore, app_id: str, fetch: Fetch, wait_s: float = 15.0):
        self.store, self.app_id, self.fetch, self.wait_s = store, app_id, fetch, wait_s
        # A token an early refresh got back unchanged (WeChat's stable token stays the same
        # while it is valid): not refreshed early again, or every call would ask.
        self._kept: str | None = None

    async def get(self, rejected: str | None = None) -> str:
        """The current token; `rejected` is one WeChat just refused, which is never answered."""
        deadline = time.monotonic() + self.wait_s
        while True:
            now = utcnow()
            stored = await self.store.load(self.app_id)
            usable = stored is not None and stored.token != rejected and stored.expires_at > now
            if usable and (stored.expires_at - now > REFRESH_AHEAD or stored.token == self._kept):
                return stored.token
            if await self.store.lease(self.app_id, now + LEASE):
                return await self._refresh(rejected)
            # Someone else is refreshing: the old token is still good meanwhile.
            if usable:
                return stored.token
            if time.monotonic() >= deadline:
                raise TokenUnavailable(self.app_id)
            await asyncio.sleep(WAIT_POLL_S)

    async def _refresh(self, rejected: str | None) -> str:
        try:
            # Between our load and the lease another process may have finished a refresh.
            stored = await self.store.load(self.app_id)
            if (stored is not None and stored.token != rejected
                    and stored.expires_at - utcnow() > REFRESH_AHEAD):
                await self.store.release(self.app_id)
                return stored.token
            token, expires_in = await self.fetch(False)
            if token == rejected:
                # WeChat still thinks the refused token is valid: only a forced refresh helps.
                token, expires_in = await self.fetch(True)
            elif stored is not None and token == stored.token:
                self._kept = token
        except BaseException:
            await self.store.release(self.app_id)
            raise
        await self.store.save(self.app_id, token, utcnow() + timedelta(seconds=expires_in))
        return token
