"""Accounts of organisation members and volunteers: creation, sign-in, sessions, and the
one-time codes that link a chat identity to the account's person."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs.accounts.models import Account, AccountSession, LinkCode
from orgs.registry.models import Membership, Organisation
from portal import passwords
from portal.cases.models import Identity, Person
from portal.cases.people import link_identity
from portal.cases.service import utcnow
from portal.i18n import _

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,30}$")
LINK_CODE_LIFETIME = timedelta(minutes=10)
LINK_CODE = re.compile(r"^[0-9]{6}$")


class AccountError(Exception):
    """A refused account step. `message` is an English msgid, formatted with `params`."""

    def __init__(self, message: str, status: int = 400, **params):
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.status = status
        self.params = params

    def translated(self, t) -> str:
        return t(self.message).format(**self.params)


def identity_key(account_id: int) -> str:
    return f"web:account:{account_id}"


def check_new_account(username: str, password: str, display_name: str, phone: str
                      ) -> dict[str, str]:
    """Field → English msgid of what is wrong with a sign-up."""
    errors = {}
    if not USERNAME.match(username):
        errors["username"] = _("A username has 2 to 64 letters, digits, dots, dashes or "
                               "underscores.")
    if len(password) < passwords.MIN_PASSWORD:
        errors["password"] = _("Use a password of at least 10 characters.")
    elif len(password) > passwords.MAX_PASSWORD:
        errors["password"] = _("The password is too long.")
    if not 1 <= len(display_name.strip()) <= 32 or not display_name.isprintable():
        errors["display_name"] = _("Give a name of 1 to 32 characters that others may see.")
    if phone and not PHONE.match(phone):
        errors["phone"] = _("Give a phone number of digits (a leading + and spaces are "
                            "fine), or leave it empty.")
    return errors


async def create_account(username: str, password: str, display_name: str, *,
                         phone: str = "", language: str = "zh-CN") -> Account:
    """A new account with a person of its own. Raises AccountError (field errors joined)."""
    errors = check_new_account(username, password, display_name, phone)
    if errors:
        raise AccountError(next(iter(errors.values())))
    password_hash = passwords.hash_password(password)
    phone = re.sub(r"[ -]", "", phone) or None
    try:
        async with in_transaction() as conn:
            person = await Person.create(language=language, phone=phone, using_db=conn)
            account = await Account.create(
                person=person, username=username, password_hash=password_hash,
                display_name=display_name.strip(), phone=phone, created_at=utcnow(),
                using_db=conn)
            await Identity.create(key=identity_key(account.id), kind="web", person=person,
                                  using_db=conn)
    except IntegrityError:
        raise AccountError(_("The username {username} is taken."), 409,
                           username=username) from None
    return account


async def authenticate(username: str, password: str, *, max_failures: int,
                       lockout: timedelta) -> Account | None:
    return await passwords.authenticate(Account, username, password,
                                        max_failures=max_failures, lockout=lockout)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(account: Account, *, lifetime: timedelta) -> tuple[str, AccountSession]:
    """A new cookie token for `account` (returned once; only its hash is kept)."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    await AccountSession.filter(expires_at__lte=now).delete()
    session = await AccountSession.create(account=account, token_hash=_digest(token),
                                          created_at=now, expires_at=now + lifetime)
    return token, session


async def session_account(token: str | None) -> Account | None:
    if not token or len(token) > 200:
        return None
    session = await AccountSession.get_or_none(
        token_hash=_digest(token), expires_at__gt=utcnow()).prefetch_related("account")
    if session is None or not session.account.active:
        return None
    return session.account


async def end_session(token: str) -> None:
    await AccountSession.filter(token_hash=_digest(token)).delete()


async def membership_of(account: Account) -> Membership | None:
    """The account's active membership, with its organisation."""
    return await Membership.get_or_none(account_id=account.id, status="active"
                                        ).prefetch_related("organisation")


async def add_member(org: Organisation, account: Account, role: str, *, invited: bool = False,
                     conn=None) -> Membership:
    """Make `account` an admin or member of `org`, or invite it (the account accepts on its
    page: nobody is enrolled in an organisation without saying yes). An account belongs to, or
    is invited by, one organisation at a time."""
    if role not in ("admin", "member"):
        raise AccountError(_("A member is an admin or a member."))
    try:
        return await Membership.create(
            account=account, organisation=org, role=role,
            status="invited" if invited else "active", active_key=f"acct:{account.id}",
            created_at=utcnow(), using_db=conn)
    except IntegrityError:
        raise AccountError(_("{name} already belongs to an organisation or has an invitation."),
                           409, name=account.username) from None


async def invitation_of(account: Account) -> Membership | None:
    return await Membership.get_or_none(account_id=account.id, status="invited"
                                        ).prefetch_related("organisation")


async def answer_invitation(account: Account, accept: bool) -> Membership | None:
    """Accept or decline the account's invitation; None when there is none (any more)."""
    invitation = await invitation_of(account)
    if invitation is None:
        return None
    changed = await Membership.filter(id=invitation.id, status="invited").update(
        status="active" if accept else "removed", active_key=invitation.active_key if accept
        else None)
    return invitation if changed else None


async def remove_member(membership: Membership) -> None:
    membership.status, membership.active_key = "removed", None
    await membership.save(update_fields=["status", "active_key"])


async def leave(membership: Membership) -> None:
    """The member leaves. The last administrator stays, so the organisation is never left
    without one."""
    async with in_transaction() as conn:
        if membership.role == "admin" and not await Membership.filter(
                organisation_id=membership.organisation_id, role="admin", status="active",
                id__not=membership.id).using_db(conn).exists():
            raise AccountError(_("You are the last administrator: make another member an "
                                 "administrator first."), 409)
        await Membership.filter(id=membership.id, status="active").using_db(conn).update(
            status="removed", active_key=None)


def _code_hash(secret: bytes, code: str) -> str:
    return hmac.new(secret, b"link:" + code.encode(), hashlib.sha256).hexdigest()


async def new_link_code(account: Account, secret: bytes) -> str:
    """A 6-digit code, valid 10 minutes, that /link in a bot redeems for this account."""
    now = utcnow()
    await LinkCode.filter(expires_at__lte=now).delete()
    await LinkCode.filter(account_id=account.id).delete()
    for _attempt in range(20):
        code = f"{secrets.randbelow(10**6):06d}"
        try:
            await LinkCode.create(account=account, code_hash=_code_hash(secret, code),
                                  expires_at=now + LINK_CODE_LIFETIME)
            return code
        except IntegrityError:  # another account's live code: draw again
            continue
    raise AccountError(_("Could not make a code: try again."), 503)


async def redeem_link_code(identity: str, code: str, secret: bytes) -> Account | None:
    """Join the chat identity to the account whose live code this is; None for a wrong or
    expired code. The code works once."""
    code = code.strip()
    if not LINK_CODE.match(code):
        return None
    async with in_transaction() as conn:
        row = await LinkCode.filter(code_hash=_code_hash(secret, code),
                                    expires_at__gt=utcnow()).using_db(conn).first()
        if row is None:
            return None
        if not await LinkCode.filter(id=row.id).using_db(conn).delete():
            return None
    account = await Account.get(id=row.account_id)
    holder = await Identity.get_or_none(key=identity)
    if holder is not None and holder.person_id != account.person_id and \
            await Account.filter(person_id=holder.person_id).exists():
        # Linking moves everything of the chat's person over and removes that person: never
        # when the chat already belongs to another account.
        raise AccountError(_("This chat is already linked to another account."), 409)
    await link_identity(await Person.get(id=account.person_id), identity)
    return account
