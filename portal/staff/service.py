"""Staff accounts (argon2 password hashes, lockout after repeated failures), sign-in sessions
(opaque bearer tokens, only their SHA-256 stored) and API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal import passwords
from portal.cases.models import Department
from portal.hotline.schemas import LINES as HOTLINE_LINES
from portal.i18n import _
from portal.intake.text import CONTROL_CHARS
from portal.staff.models import ApiKey, Role, StaffSession, StaffUser

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
MIN_PASSWORD = passwords.MIN_PASSWORD
MAX_PASSWORD = passwords.MAX_PASSWORD
# One working shift; the console signs in again after it.
SESSION_LIFETIME = timedelta(hours=12)
API_KEY_KINDS = ("open311", "hotline")
API_KEY_NAME_MAX = 100
# api_key.id is an INT column.
API_KEY_ID_MAX = 2**31 - 1


class StaffError(Exception):
    """A refused account change. `message` is an English msgid, formatted with `params`."""

    def __init__(self, message: str, **params):
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params

    def translated(self, t) -> str:
        return t(self.message).format(**self.params)


class UsernameTaken(StaffError):
    pass


class NoSuchAccount(StaffError):
    pass


class NoSuchApiKey(StaffError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


async def create_user(username: str, password: str, role: Role | str,
                      department_code: str | None = None) -> StaffUser:
    role = Role(role)
    if not USERNAME.match(username):
        raise StaffError(_("A username has 2 to 64 letters, digits, dots, dashes or "
                           "underscores."))
    if len(password) < MIN_PASSWORD:
        raise StaffError(_("Use a password of at least 10 characters."))
    if len(password) > MAX_PASSWORD:
        raise StaffError(_("The password is too long."))
    if await StaffUser.filter(username=username).exists():
        raise UsernameTaken(_("The username {username} is taken."), username=username)
    dept = None
    if role == Role.DEPARTMENT:
        if not department_code:
            raise StaffError(_("A department account needs a department."))
        dept = await Department.get_or_none(code=department_code)
        if dept is None:
            raise StaffError(_("No department with the code {code}."), code=department_code)
    try:
        return await StaffUser.create(username=username, password_hash=passwords.hash_password(password),
                                      role=role, department=dept)
    except IntegrityError:
        # Created by a simultaneous request between the check above and this insert.
        raise UsernameTaken(_("The username {username} is taken."), username=username) from None


async def deactivate_user(username: str, *, by: StaffUser) -> StaffUser:
    """Switch an account off and end its sessions at once."""
    if username == by.username:
        raise StaffError(_("You cannot deactivate your own account."))
    async with in_transaction() as conn:
        user = None
        if USERNAME.match(username):
            user = await StaffUser.get_or_none(username=username).using_db(conn)
        if user is None:
            raise NoSuchAccount(_("No staff account {username}."), username=username)
        user.active = False
        await user.save(update_fields=["active"], using_db=conn)
        await StaffSession.filter(user_id=user.id).using_db(conn).delete()
    return user


async def authenticate(username: str, password: str, *, max_failures: int,
                       lockout: timedelta) -> StaffUser | None:
    return await passwords.authenticate(StaffUser, username, password,
                                        max_failures=max_failures, lockout=lockout)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def start_session(user: StaffUser, *, lifetime: timedelta = SESSION_LIFETIME
                        ) -> tuple[str, StaffSession]:
    """A new bearer token for `user` (returned once; only its hash is kept)."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    await StaffSession.filter(expires_at__lte=now).delete()
    session = await StaffSession.create(user=user, token_hash=_digest(token),
                                        expires_at=now + lifetime)
    return token, session


async def session_user(token: str | None) -> StaffUser | None:
    """The active user a bearer token belongs to, while the session lasts."""
    if not token or len(token) > 200:
        return None
    session = await StaffSession.get_or_none(
        token_hash=_digest(token), expires_at__gt=utcnow()).prefetch_related("user")
    if session is None or not session.user.active:
        return None
    return session.user


async def end_session(token: str) -> None:
    await StaffSession.filter(token_hash=_digest(token)).delete()


async def create_api_key(name: str, kind: str, line: str | None = None
                         ) -> tuple[ApiKey, str]:
    """The new key's record and the key itself: only its hash is kept, so it is shown once."""
    name = " ".join(CONTROL_CHARS.sub("", name or "").split())
    if not name or len(name) > API_KEY_NAME_MAX:
        raise StaffError(_("Name the key's holder in 1 to 100 characters."))
    if kind not in API_KEY_KINDS:
        raise StaffError(_("An API key is for open311 or hotline."))
    if kind == "hotline" and line not in HOTLINE_LINES:
        raise StaffError(_("A hotline key is for line 12345, 12319 or 962121."))
    key = secrets.token_urlsafe(24)
    row = await ApiKey.create(name=name, kind=kind, line=line if kind == "hotline" else None,
                              key_hash=_digest(key))
    return row, key


async def api_keys() -> list[ApiKey]:
    return await ApiKey.all().order_by("-id")


async def api_key(key_id: int) -> ApiKey | None:
    return await ApiKey.get_or_none(id=key_id) if 0 < key_id <= API_KEY_ID_MAX else None


async def deactivate_api_key(key_id: int) -> ApiKey:
    """The key stops working at once in this process and within KEY_TTL_S in the others.
    Deactivating a deactivated key changes nothing."""
    row = await api_key(key_id)
    if row is None:
        raise NoSuchApiKey(_("There is no API key with this number."))
    if row.active:
        row.active = False
        await row.save(update_fields=["active"])
    global _key_generation
    _key_generation += 1
    for cached in [c for c in _key_cache if c[0] == row.key_hash]:
        del _key_cache[cached]
    return row


# Each process trusts a valid key for KEY_TTL_S after looking it up (a client posting many
# reports costs one query per half-minute, not one per report), and remembers an unknown key
# for KEY_NEGATIVE_TTL_S (a client retrying with a wrong key costs no query per retry).
KEY_TTL_S = 30.0
KEY_NEGATIVE_TTL_S = 5.0
KEY_CACHE_SIZE = 1024
_key_cache: dict[tuple[str, str], tuple[float, ApiKey | None]] = {}
# Moved by every deactivation here: a lookup that read the key before it was deactivated does
# not put it back into the cache after.
_key_generation = 0
# The cache's clock (tests move it past KEY_TTL_S).
_clock = time.monotonic


async def check_api_key(key: str | None, kind: str) -> ApiKey | None:
    """The active key of this kind, or None."""
    if not key or len(key) > 200:
        return None
    digest = _digest(key)
    now = _clock()
    cached = _key_cache.get((digest, kind))
    if cached is not None and cached[0] > now:
        return cached[1]
    generation = _key_generation
    row = await ApiKey.get_or_none(key_hash=digest, kind=kind, active=True)
    if generation == _key_generation:
        if len(_key_cache) >= KEY_CACHE_SIZE:
            _key_cache.clear()
        _key_cache[(digest, kind)] = (now + (KEY_TTL_S if row else KEY_NEGATIVE_TTL_S), row)
    return row
