"""Staff accounts and API keys of trusted clients."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    OPERATOR = "operator"
    DEPARTMENT = "department"
    ADMIN = "admin"
    # 评审专家: scores the bids of the tenders it is assigned to, nothing else.
    EVALUATOR = "evaluator"


class StaffUser(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=16)
    department: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Department", related_name="staff", null=True, on_delete=fields.SET_NULL
    )
    active = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff_user"


class ApiKey(Model):
    """A key for an Open311 client or a hotline system (only its SHA-256 is stored)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # open311 or hotline
    kind = fields.CharField(max_length=16)
    # For hotline keys: the line it may post for (12345, 12319, 962121).
    line = fields.CharField(max_length=16, null=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_key"


class StaffSession(Model):
    """A signed-in staff member: only the SHA-256 of the bearer token is stored."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[StaffUser] = fields.ForeignKeyField(
        "portal.StaffUser", related_name="sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "staff_session"
