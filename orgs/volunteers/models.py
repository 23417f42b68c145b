"""Volunteers, the problems they discover and the points they earn."""

from tortoise import fields
from tortoise.models import Model


class Volunteer(Model):
    """A person registered as a volunteer (志愿者), with the grid they mostly work in."""

    id = fields.BigIntField(primary_key=True)
    person: fields.OneToOneRelation = fields.OneToOneField(
        "portal.Person", related_name="volunteer", on_delete=fields.CASCADE)
    # Public on the leaderboard.
    display_name = fields.CharField(max_length=32)
    home_area: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Area", related_name="volunteers", on_delete=fields.RESTRICT)
    # active or left
    status = fields.CharField(max_length=8, default="active")
    # web, telegram or wechat
    registered_via = fields.CharField(max_length=16)
    consent_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "volunteer"
        indexes = (("home_area_id", "status"),)


class Discovery(Model):
    """A report that counts as a discovery for a volunteer or an organisation."""

    id = fields.BigIntField(primary_key=True)
    report_id = fields.BigIntField(unique=True)
    case_id = fields.BigIntField(db_index=True)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="discoveries", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Organisation", null=True, related_name="discoveries", on_delete=fields.CASCADE)
    # The report opened its case (a repeat or a merged report earns nothing).
    opened_case = fields.BooleanField()
    # pending, confirmed or rejected
    status = fields.CharField(max_length=10, default="pending")
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "discovery"
        indexes = (("status", "id"), ("organisation_id", "id"))


class PointsEntry(Model):
    """An append-only ledger of points: (kind, ref) makes every award happen once."""

    id = fields.BigIntField(primary_key=True)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="points", on_delete=fields.CASCADE)
    # discovery, task or adjust
    kind = fields.CharField(max_length=12)
    ref = fields.CharField(max_length=64)
    points = fields.IntField()
    area: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Area", null=True, related_name="points", on_delete=fields.SET_NULL)
    note = fields.TextField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_entry"
        unique_together = (("kind", "ref"),)
        indexes = (("area_id", "created_at"),)


class SweepCursor(Model):
    """How far a sweep has read (the last report id scanned by the discoveries sweep)."""

    name = fields.CharField(max_length=32, primary_key=True)
    value = fields.BigIntField(default=0)

    class Meta:
        table = "sweep_cursor"
