"""Periodic assessment of contracted organisations on versioned indicators, its consequences,
suspension from bidding (淘汰) and appeals."""

from tortoise import fields
from tortoise.models import Model


class IndicatorSet(Model):
    """A versioned set of indicators with its grade bands, consequences and elimination rule.
    Immutable once active: a change is a new version."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=60)
    version = fields.IntField()
    # draft, active or retired (one active at a time)
    status = fields.CharField(max_length=8, default="draft")
    # [{"grade": "优", "min": "90"}, ...] highest first
    bands = fields.JSONField()
    # What an indicator without data counts: rescale, full or zero
    missing = fields.CharField(max_length=8, default="rescale")
    # {"优": [{"kind": "commendation"}, {"kind": "fee_bonus_pct", "value": "5"}], ...}
    consequences = fields.JSONField(default=dict)
    # {"grade": "差", "consecutive": 2, "suspend_days": 180}
    elimination = fields.JSONField(default=dict)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField()
    activated_at = fields.DatetimeField(null=True)
    activated_by = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "indicator_set"
        unique_together = (("name", "version"),)


class Indicator(Model):
    """One indicator of a set: its key (how it is measured), weight in points and parameters."""

    id = fields.BigIntField(primary_key=True)
    set: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.IndicatorSet", related_name="indicators", on_delete=fields.CASCADE)
    position = fields.SmallIntField()
    key = fields.CharField(max_length=32)
    weight = fields.DecimalField(max_digits=5, decimal_places=2)
    params = fields.JSONField(default=dict)

    class Meta:
        table = "indicator"
        unique_together = (("set", "position"),)


class Period(Model):
    """An assessment period (a Shanghai calendar month by default) and the set it used."""

    id = fields.BigIntField(primary_key=True)
    starts_on = fields.DateField()
    ends_on = fields.DateField()
    indicator_set: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.IndicatorSet", related_name="periods", on_delete=fields.RESTRICT)
    # computed or published
    status = fields.CharField(max_length=10, default="computed")
    computed_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)
    published_by = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "assessment_period"
        unique_together = (("starts_on", "ends_on"),)


class Assessment(Model):
    """One organisation's score and grade for a period, with how it was computed."""

    id = fields.BigIntField(primary_key=True)
    period: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Period", related_name="assessments", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="assessments", on_delete=fields.CASCADE)
    score = fields.DecimalField(max_digits=5, decimal_places=2)
    grade = fields.CharField(max_length=4)
    breakdown = fields.JSONField()
    # Only from an overturned appeal: the original stays.
    corrected_score = fields.DecimalField(max_digits=5, decimal_places=2, null=True)
    corrected_grade = fields.CharField(max_length=4, null=True)
    correction_reason = fields.TextField(null=True)
    computed_at = fields.DatetimeField()

    class Meta:
        table = "assessment"
        unique_together = (("period", "organisation"),)


class ConsequenceRecord(Model):
    """A reward or penalty a grade calls for: proposed at publishing, then applied or waived."""

    id = fields.BigIntField(primary_key=True)
    assessment: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Assessment", related_name="consequences", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=32)
    value = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    # proposed, applied or waived
    status = fields.CharField(max_length=10, default="proposed")
    decided_by = fields.CharField(max_length=100, null=True)
    decided_at = fields.DatetimeField(null=True)
    note = fields.TextField(null=True)

    class Meta:
        table = "consequence_record"


class BiddingSuspension(Model):
    """Elimination (淘汰): the organisation may not bid or claim from starts_at to ends_at."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="suspensions", on_delete=fields.CASCADE)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    reason = fields.TextField()
    # The ids of the assessments that triggered it.
    assessments = fields.JSONField(default=list)
    # What triggered it, so that publishing again does not suspend twice.
    trigger = fields.CharField(max_length=64)
    # active, overturned or lifted
    status = fields.CharField(max_length=10, default="active")

    class Meta:
        table = "bidding_suspension"
        unique_together = (("organisation", "trigger"),)
        indexes = (("organisation_id", "status", "ends_at"),)


class Appeal(Model):
    """An organisation's appeal against an assessment or a suspension, and the decision."""

    id = fields.BigIntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="appeals", on_delete=fields.CASCADE)
    assessment: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Assessment", null=True, related_name="appeals", on_delete=fields.CASCADE)
    suspension: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.BiddingSuspension", null=True, related_name="appeals", on_delete=fields.CASCADE)
    text = fields.TextField()
    submitted_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="appeals", on_delete=fields.RESTRICT)
    submitted_at = fields.DatetimeField()
    # upheld or overturned
    decision = fields.CharField(max_length=12, null=True)
    decided_by = fields.CharField(max_length=100, null=True)
    decided_at = fields.DatetimeField(null=True)
    reason = fields.TextField(null=True)
    # Set while the appeal waits: one open appeal per subject.
    active_key = fields.CharField(max_length=40, null=True, unique=True)

    class Meta:
        table = "appeal"
        indexes = (("decision", "submitted_at"),)
