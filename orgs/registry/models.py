"""Organisations that provide services, the areas they serve, their training and agreements."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Area(Model):
    """A street (街道/镇) or a grid (网格) inside a street."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=64)
    # street or grid
    kind = fields.CharField(max_length=8)
    parent: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Area", null=True, related_name="children", on_delete=fields.RESTRICT)

    class Meta:
        table = "area"

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


class OrgStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class Organisation(Model):
    """A registered organisation. The contact phone and e-mail are private: others see them
    masked."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # Normalised: NFKC, upper case, no spaces.
    uscc = fields.CharField(max_length=18, unique=True)
    # The check character was right. A pilot code that fails it needs an admin's override.
    uscc_valid = fields.BooleanField()
    uscc_override_by = fields.CharField(max_length=64, null=True)
    uscc_override_at = fields.DatetimeField(null=True)
    uscc_override_reason = fields.TextField(null=True)
    address = fields.CharField(max_length=200)
    contact_name = fields.CharField(max_length=50)
    contact_phone = fields.CharField(max_length=32)
    contact_email = fields.CharField(max_length=254, null=True)
    # Keys of orgs.service_types.SERVICE_TYPES
    service_types = fields.JSONField(default=list)
    status = fields.CharEnumField(OrgStatus, max_length=12, default=OrgStatus.PENDING)
    status_reason = fields.TextField(null=True)
    verified_at = fields.DatetimeField(null=True)
    verified_by = fields.CharField(max_length=64, null=True)
    # The account that registered it and became its first admin (none for older rows).
    registered_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Account", null=True, related_name="registered_orgs", on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "organisation"
        indexes = (("status", "id"),)


class OrgArea(Model):
    """An area an organisation serves."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="areas", on_delete=fields.CASCADE)
    area: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Area", related_name="organisations", on_delete=fields.RESTRICT)

    class Meta:
        table = "org_area"
        unique_together = (("organisation", "area"),)


class OrgEvent(Model):
    """The audit trail of an organisation: registered, verified, rejected, suspended,
    reinstated, resubmitted, uscc_override, training_recorded, dpa_recorded."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="events", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=24)
    status_from = fields.CharField(max_length=12, null=True)
    status_to = fields.CharField(max_length=12, null=True)
    reason = fields.TextField(null=True)
    # "staff:<username>" or "public" (the registration form)
    actor = fields.CharField(max_length=100)
    data = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "org_event"
        indexes = (("organisation_id", "id"),)


class TrainingRecord(Model):
    """A pre-job training certificate (岗前培训) for one service type, held by an organisation
    or by a person (exactly one of the two)."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Organisation", null=True, related_name="training", on_delete=fields.CASCADE)
    person: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Person", null=True, related_name="training", on_delete=fields.CASCADE)
    service_type = fields.CharField(max_length=24)
    certificate_no = fields.CharField(max_length=64)
    issued_by = fields.CharField(max_length=100)
    issued_at = fields.DateField()
    # Valid through this day (Asia/Shanghai), included.
    valid_until = fields.DateField()
    recorded_by = fields.CharField(max_length=64)
    recorded_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "training_record"
        indexes = (("organisation_id", "service_type", "valid_until"),
                   ("person_id", "service_type", "valid_until"))


class DataAgreement(Model):
    """A data-processing agreement (数据处理协议): what residents' data an organisation may
    handle, for what purpose, for how long, and what happens to it at the end."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="agreements", on_delete=fields.CASCADE)
    purpose = fields.TextField()
    # Keys of orgs.registry.service.DATA_TYPES
    data_types = fields.JSONField(default=list)
    starts_on = fields.DateField()
    ends_on = fields.DateField()
    # return or delete
    end_action = fields.CharField(max_length=8)
    recorded_by = fields.CharField(max_length=64)
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "data_agreement"
        indexes = (("organisation_id", "ends_on"),)


class Membership(Model):
    """An account's place in an organisation: admin (submits bids, manages members) or member.
    An account belongs to one organisation at a time (active_key is set while the membership
    is active, cleared when it ends)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="memberships", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="memberships", on_delete=fields.CASCADE)
    # admin or member
    role = fields.CharField(max_length=8)
    # active or removed
    status = fields.CharField(max_length=8, default="active")
    active_key = fields.CharField(max_length=40, null=True, unique=True)
    # The member's reports from linked chats count for the organisation (web reports ask).
    reports_for_org = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "membership"
        indexes = (("organisation_id", "status"),)


class OrgDocument(Model):
    """A document of an organisation (登记证书, 章程...): kept on disk, shown to staff only."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="documents", on_delete=fields.CASCADE)
    # certificate, charter, agreement or other
    kind = fields.CharField(max_length=24)
    filename = fields.CharField(max_length=120)
    path = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=64)
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64)
    uploaded_by = fields.CharField(max_length=100)
    uploaded_at = fields.DatetimeField()

    class Meta:
        table = "org_document"
        indexes = (("organisation_id", "id"),)
