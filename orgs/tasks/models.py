"""Claimable tasks (a clean-up event, a patrol shift, a follow-up visit) and their claims."""

from tortoise import fields
from tortoise.models import Model


class ClaimTask(Model):
    """A task with a number of places. claimed never exceeds places: claims raise it in one
    guarded UPDATE."""

    id = fields.BigIntField(primary_key=True)
    title = fields.CharField(max_length=120)
    description = fields.TextField(default="")
    service_type = fields.CharField(max_length=24)
    area: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Area", related_name="claim_tasks", on_delete=fields.RESTRICT)
    source_case: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Case", null=True, related_name="claim_tasks", on_delete=fields.SET_NULL)
    places = fields.IntField()
    claimed = fields.IntField(default=0)
    # volunteer, organisation or any
    who = fields.CharField(max_length=12, default="any")
    requires_training = fields.BooleanField(default=False)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    # Claims are taken until then.
    claim_until = fields.DatetimeField()
    # A claim not started by then is released.
    start_by = fields.DatetimeField()
    points = fields.IntField(default=5)
    # open, cancelled or closed
    status = fields.CharField(max_length=10, default="open")
    cancel_reason = fields.TextField(null=True)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "claim_task"
        indexes = (("status", "starts_at"), ("area_id", "status"))


class Claim(Model):
    """A place taken by a volunteer (person) or an organisation. active_key is set while the
    claim holds a place, so one claimant holds at most one place of a task."""

    id = fields.BigIntField(primary_key=True)
    task: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.ClaimTask", related_name="claims", on_delete=fields.CASCADE)
    person: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Person", null=True, related_name="claims", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Organisation", null=True, related_name="claims", on_delete=fields.CASCADE)
    claimed_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="claims", on_delete=fields.CASCADE)
    # p:<person id> or o:<organisation id>
    claimant_key = fields.CharField(max_length=40)
    active_key = fields.CharField(max_length=60, null=True, unique=True)
    # claimed, started, done, released, withdrawn, cancelled
    status = fields.CharField(max_length=10, default="claimed")
    claimed_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    released_at = fields.DatetimeField(null=True)
    release_reason = fields.CharField(max_length=24, null=True)

    class Meta:
        table = "claim"
        indexes = (("status", "task_id"), ("person_id", "status"), ("organisation_id", "status"))
