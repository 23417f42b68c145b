"""Passwords of every kind of account (staff, members, volunteers): argon2 hashes, and a
sign-in check that pauses an account after repeated failures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import F, Q

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("gridlink-dummy-password")

MIN_PASSWORD = 10
# Argon2 hashes whatever it is given: a bound keeps one request from costing seconds.
MAX_PASSWORD = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(model, username: str, password: str, *, max_failures: int,
                       lockout: timedelta):
    """The active `model` row (a table with username, password_hash, active, failed_logins,
    locked_until) for a right password; None otherwise. Locks it after repeated failures.

    Every refusal costs one argon2 verification, so that neither timing nor the answer tells
    whether the username exists or is locked. Verifying runs in a thread (it takes tens of
    milliseconds), and failures are counted in the database, so that guesses sent at the same
    time are each counted and none of them gets past a lock that another one set.
    """
    now = datetime.now(UTC)
    user = None
    if len(username) <= 64 and len(password) <= MAX_PASSWORD:
        user = await model.get_or_none(username=username, active=True)
    if user is None or (user.locked_until and user.locked_until > now):
        await asyncio.to_thread(_verify, _DUMMY_HASH, password[:MAX_PASSWORD])
        return None
    if not await asyncio.to_thread(_verify, user.password_hash, password):
        await model.filter(id=user.id).update(failed_logins=F("failed_logins") + 1)
        await model.filter(id=user.id, failed_logins__gte=max_failures).update(
            locked_until=now + lockout, failed_logins=0)
        return None
    # Only while no lock was set meanwhile by a concurrent wrong guess.
    unlocked = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    if not await model.filter(unlocked, id=user.id).update(failed_logins=0, locked_until=None):
        return None
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(_hasher.hash, password)
        await user.save(update_fields=["password_hash"])
    return user
