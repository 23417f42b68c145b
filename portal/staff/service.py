"""Staff accounts (argon2 password hashes, lockout after repeated failures) and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from portal.cases.models import Department
from portal.staff.models import ApiKey, Role, StaffUser

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("gridlink-dummy-password")


class StaffError(Exception):
    pass


async def create_user(username: str, password: str, role: Role | str,
                      department_code: str | None = None) -> StaffUser:
    role = Role(role)
    if len(password) < 10:
        raise StaffError("Use a password of at least 10 characters.")
    if await StaffUser.filter(username=username).exists():
        raise StaffError(f"The username {username} is taken.")
    dept = None
    if role == Role.DEPARTMENT:
        if not department_code:
            raise StaffError("A department account needs a department.")
        dept = await Department.get_or_none(code=department_code)
        if dept is None:
            raise StaffError(f"No department with the code {department_code}.")
    return await StaffUser.create(username=username, password_hash=_hasher.hash(password),
                                  role=role, department=dept)


async def authenticate(username: str, password: str, *, max_failures: int,
                       lockout: timedelta) -> StaffUser | None:
    """The user for a right password; None otherwise. Locks the account after repeated failures."""
    user = await StaffUser.get_or_none(username=username, active=True)
    now = datetime.now(UTC)
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    if user.locked_until and user.locked_until > now:
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
        await user.save(update_fields=["failed_logins", "locked_until"])
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    await user.save(update_fields=["failed_logins", "locked_until", "password_hash"])
    return user


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(name: str, kind: str, line: str | None = None) -> str:
    """Returns the new key; only its hash is kept, so it is shown once."""
    if kind not in ("open311", "hotline"):
        raise StaffError("An API key is for open311 or hotline.")
    if kind == "hotline" and line not in ("12345", "12319", "962121"):
        raise StaffError("A hotline key is for line 12345, 12319 or 962121.")
    key = secrets.token_urlsafe(24)
    await ApiKey.create(name=name, kind=kind, line=line, key_hash=_digest(key))
    return key


async def check_api_key(key: str | None, kind: str) -> ApiKey | None:
    if not key or len(key) > 200:
        return None
    return await ApiKey.get_or_none(key_hash=_digest(key), kind=kind, active=True)
