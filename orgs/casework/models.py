"""Cases given to an organisation to work, and complaints recorded about organisations."""

from tortoise import fields
from tortoise.models import Model


class CaseAssignment(Model):
    """A case an organisation works (under a contract, when there is one). One active
    assignment per case: a new one ends the previous."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Case", related_name="org_assignments", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="case_assignments", on_delete=fields.RESTRICT)
    contract: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Contract", null=True, related_name="case_assignments", on_delete=fields.SET_NULL)
    assigned_at = fields.DatetimeField()
    assigned_by = fields.CharField(max_length=100)
    # Set while the assignment is the case's current one.
    active_key = fields.BigIntField(null=True, unique=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "case_assignment"
        indexes = (("organisation_id", "assigned_at"),)


class Complaint(Model):
    """A complaint about an organisation's work, recorded by staff."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="complaints", on_delete=fields.CASCADE)
    case: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Case", null=True, related_name="org_complaints", on_delete=fields.SET_NULL)
    text = fields.TextField()
    recorded_by = fields.CharField(max_length=100)
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "complaint"
        indexes = (("organisation_id", "recorded_at"),)
