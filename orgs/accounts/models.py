"""Accounts of organisation members and volunteers, their sessions and link codes."""

from tortoise import fields
from tortoise.models import Model


class Account(Model):
    """Someone who signs in to the portal (not staff): an organisation's member, a volunteer.
    Tied to one Person, whose identity is web:account:<id>, so reports, follows and notices
    made anywhere by that person meet in one place. The phone is private."""

    id = fields.BigIntField(primary_key=True)
    person: fields.OneToOneRelation = fields.OneToOneField(
        "portal.Person", related_name="account", on_delete=fields.CASCADE)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=200)
    # Shown to others (leaderboard, member lists): a nickname, not necessarily a real name.
    display_name = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=32, null=True)
    active = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "account"


class AccountSession(Model):
    """A signed-in account: only the SHA-256 of the cookie's token is stored."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="sessions", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "account_session"


class LinkCode(Model):
    """A one-time code shown on the account page that a bot conversation redeems (/link 482913)
    to join its chat identity to the account's person. Only an HMAC of the code is kept."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="link_codes", on_delete=fields.CASCADE)
    code_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "link_code"
