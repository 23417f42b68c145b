"""Satisfaction ratings of resolved cases."""

from tortoise import fields
from tortoise.models import Model


class Rating(Model):
    """One person's rating of one case (a later rating replaces the earlier one)."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Case", related_name="ratings", on_delete=fields.CASCADE)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="ratings", on_delete=fields.CASCADE)
    score = fields.SmallIntField()  # 1..5
    fixed = fields.BooleanField(null=True)  # the person says the problem is (not) fixed
    comment = fields.TextField(null=True)
    channel = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "rating"
        unique_together = (("case", "person"),)
