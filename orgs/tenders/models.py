"""Purchased service tasks on the Open Contracting Data Standard's model: a tender, its sealed
bids, their evaluation, the award, the contract and its milestones, and the OCDS releases
published at each step. Status values are OCDS codes."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class TenderStatus(StrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    UNSUCCESSFUL = "unsuccessful"
    COMPLETE = "complete"


class Tender(Model):
    """A service the government buys. Inside active the phase follows from the times: bidding
    until opened_at, evaluation until finalised_at, then the award."""

    id = fields.BigIntField(primary_key=True)
    # GT-2026-00012
    code = fields.CharField(max_length=20, unique=True)
    title = fields.CharField(max_length=120)
    description = fields.TextField()
    service_type = fields.CharField(max_length=24)
    area: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Area", related_name="tenders", on_delete=fields.RESTRICT)
    # The budget ceiling (最高限价), CNY, tax included.
    budget = fields.DecimalField(max_digits=14, decimal_places=2)
    contract_start = fields.DateField()
    contract_end = fields.DateField()
    # Required when the contract runs longer than a year (three at most).
    long_period_reason = fields.TextField(null=True)
    # tender (招标) or negotiation (竞争性磋商)
    procedure = fields.CharField(max_length=24)
    # lowest_price (最低评标价法) or comprehensive (综合评分法)
    method = fields.CharField(max_length=16)
    # Comprehensive scoring: the price's share, 0.1000–1.0000.
    price_weight = fields.DecimalField(max_digits=5, decimal_places=4, null=True)
    # Award needs a current data-processing agreement.
    handles_resident_data = fields.BooleanField(default=False)
    deadline = fields.DatetimeField()
    status = fields.CharEnumField(TenderStatus, max_length=16, default=TenderStatus.PLANNING)
    status_reason = fields.TextField(null=True)
    published_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)
    finalised_at = fields.DatetimeField(null=True)
    awarded_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    # Every bid write bumps it in a guarded UPDATE, so bids and the opening serialise.
    bid_lock = fields.IntField(default=0)
    # The tie-break seed: its hash is public from the opening, the seed itself (sealed like a
    # bid until then) from the finalisation.
    draw_seed_hash = fields.CharField(max_length=64, null=True)
    draw_seed_sealed = fields.BinaryField(null=True)
    draw_seed = fields.CharField(max_length=32, null=True)
    source_case: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Case", null=True, related_name="tenders", on_delete=fields.SET_NULL)
    retender_of: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Tender", null=True, related_name="retenders", on_delete=fields.SET_NULL)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "tender"
        indexes = (("status", "deadline"), ("status", "opened_at"))


class TenderCriterion(Model):
    """A non-price criterion of comprehensive scoring: the weights and the price weight sum to 1."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="criteria", on_delete=fields.CASCADE)
    position = fields.SmallIntField()
    name = fields.CharField(max_length=60)
    description = fields.TextField(default="")
    weight = fields.DecimalField(max_digits=5, decimal_places=4)

    class Meta:
        table = "tender_criterion"
        unique_together = (("tender", "position"),)


class TenderEvaluator(Model):
    """A staff evaluator (评审专家) assigned to a tender."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="evaluators", on_delete=fields.CASCADE)
    staff_user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.StaffUser", related_name="evaluations", on_delete=fields.CASCADE)

    class Meta:
        table = "tender_evaluator"
        unique_together = (("tender", "staff_user"),)


class BidStatus(StrEnum):
    INVITED = "invited"
    PENDING = "pending"
    VALID = "valid"
    DISQUALIFIED = "disqualified"
    WITHDRAWN = "withdrawn"


class Bid(Model):
    """One organisation's bid on one tender. Until the opening only the sealed ciphertext and
    its digest exist: price, proposal and team are written by the opening sweep."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="bids", on_delete=fields.CASCADE)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="bids", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(BidStatus, max_length=16, default=BidStatus.PENDING)
    # Raised by every submission or replacement.
    version = fields.IntField(default=0)
    submitted_at = fields.DatetimeField(null=True)
    withdrawn_at = fields.DatetimeField(null=True)
    sealed = fields.BinaryField(null=True)
    # SHA-256 of the salted plaintext: the bidder's receipt.
    digest = fields.CharField(max_length=64, null=True)
    opened_at = fields.DatetimeField(null=True)
    price = fields.DecimalField(max_digits=14, decimal_places=2, null=True)
    proposal = fields.TextField(null=True)
    team = fields.JSONField(null=True)
    # over_budget, not_verified, suspended, no_training, abnormally_low, other
    disqualified_reason = fields.CharField(max_length=24, null=True)
    disqualified_note = fields.TextField(null=True)

    class Meta:
        table = "bid"
        unique_together = (("tender", "organisation"),)


class BidEvent(Model):
    """What happened to a bid, without its content: submitted, replaced, withdrawn, opened,
    valid, disqualified."""

    id = fields.BigIntField(primary_key=True)
    bid: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Bid", related_name="events", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)
    version = fields.IntField()
    digest = fields.CharField(max_length=64, null=True)
    actor = fields.CharField(max_length=100)
    created_at = fields.DatetimeField()

    class Meta:
        table = "bid_event"
        indexes = (("bid_id", "id"),)


class LowBidReview(Model):
    """An abnormally low bid (异常低价): the bidder's explanation and the recorded decision.
    Never rejected automatically."""

    id = fields.BigIntField(primary_key=True)
    bid: fields.OneToOneRelation = fields.OneToOneField(
        "portal.Bid", related_name="low_bid_review", on_delete=fields.CASCADE)
    flagged_at = fields.DatetimeField()
    mean_others = fields.DecimalField(max_digits=14, decimal_places=2)
    ratio = fields.DecimalField(max_digits=4, decimal_places=3)
    explanation = fields.TextField(null=True)
    explained_at = fields.DatetimeField(null=True)
    explained_by = fields.CharField(max_length=100, null=True)
    # accepted or rejected
    decision = fields.CharField(max_length=8, null=True)
    decided_by = fields.CharField(max_length=100, null=True)
    decided_at = fields.DatetimeField(null=True)
    reason = fields.TextField(null=True)

    class Meta:
        table = "low_bid_review"


class CriterionScore(Model):
    """One evaluator's score (0–100) of one bid on one criterion."""

    id = fields.BigIntField(primary_key=True)
    bid: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Bid", related_name="scores", on_delete=fields.CASCADE)
    criterion: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.TenderCriterion", related_name="scores", on_delete=fields.CASCADE)
    evaluator: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.StaffUser", related_name="criterion_scores", on_delete=fields.RESTRICT)
    score = fields.DecimalField(max_digits=5, decimal_places=2)
    comment = fields.TextField(null=True)
    entered_at = fields.DatetimeField()

    class Meta:
        table = "criterion_score"
        unique_together = (("bid", "criterion", "evaluator"),)


class BidResult(Model):
    """A valid bid's scores and rank, written once at the finalisation."""

    id = fields.BigIntField(primary_key=True)
    bid: fields.OneToOneRelation = fields.OneToOneField(
        "portal.Bid", related_name="result", on_delete=fields.CASCADE)
    price_score = fields.DecimalField(max_digits=7, decimal_places=2)
    price_part = fields.DecimalField(max_digits=7, decimal_places=2)
    # {criterion id: "34.00"}
    criteria_parts = fields.JSONField(default=dict)
    # None under lowest price.
    total = fields.DecimalField(max_digits=7, decimal_places=2, null=True)
    rank = fields.IntField()
    tie_group = fields.IntField(null=True)
    draw_key = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "bid_result"


class TieDraw(Model):
    """A recorded tie-break: the tied bids, the order the seed gave them, the seed."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="draws", on_delete=fields.CASCADE)
    group = fields.IntField()
    candidates = fields.JSONField()
    order = fields.JSONField()
    seed = fields.CharField(max_length=32)
    drawn_at = fields.DatetimeField()

    class Meta:
        table = "tie_draw"
        unique_together = (("tender", "group"),)


class AwardStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    UNSUCCESSFUL = "unsuccessful"


class Award(Model):
    """The award to the first-ranked bid (中标候选人 while pending). Cancelling one makes a new
    pending award for the next rank."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="awards", on_delete=fields.CASCADE)
    bid: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Bid", related_name="awards", on_delete=fields.RESTRICT)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="awards", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(AwardStatus, max_length=16, default=AwardStatus.PENDING)
    value = fields.DecimalField(max_digits=14, decimal_places=2)
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)
    decided_by = fields.CharField(max_length=100, null=True)
    reason = fields.TextField(null=True)

    class Meta:
        table = "award"
        indexes = (("tender_id", "status"),)


class ContractStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"


class Contract(Model):
    """The contract made with an active award, active once signed."""

    id = fields.BigIntField(primary_key=True)
    award: fields.OneToOneRelation = fields.OneToOneField(
        "portal.Award", related_name="contract", on_delete=fields.RESTRICT)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="contracts", on_delete=fields.RESTRICT)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Organisation", related_name="contracts", on_delete=fields.RESTRICT)
    value = fields.DecimalField(max_digits=14, decimal_places=2)
    period_start = fields.DateField()
    period_end = fields.DateField()
    status = fields.CharEnumField(ContractStatus, max_length=16, default=ContractStatus.PENDING)
    date_signed = fields.DatetimeField(null=True)
    terminated_reason = fields.TextField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "contract"
        indexes = (("organisation_id", "status"),)


class MilestoneStatus(StrEnum):
    SCHEDULED = "scheduled"
    MET = "met"
    NOT_MET = "notMet"
    PARTIALLY_MET = "partiallyMet"


class Milestone(Model):
    """A deliverable of a contract with its due date."""

    id = fields.BigIntField(primary_key=True)
    contract: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Contract", related_name="milestones", on_delete=fields.CASCADE)
    position = fields.SmallIntField()
    title = fields.CharField(max_length=120)
    description = fields.TextField(default="")
    due_date = fields.DateField()
    status = fields.CharEnumField(MilestoneStatus, max_length=16,
                                  default=MilestoneStatus.SCHEDULED)
    date_met = fields.DatetimeField(null=True)
    date_modified = fields.DatetimeField()

    class Meta:
        table = "milestone"
        unique_together = (("contract", "position"),)
        indexes = (("status", "due_date"),)


class MilestoneReport(Model):
    """The organisation's progress report on a milestone, and the operator's decision."""

    id = fields.BigIntField(primary_key=True)
    milestone: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Milestone", related_name="reports", on_delete=fields.CASCADE)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Account", related_name="milestone_reports", on_delete=fields.RESTRICT)
    text = fields.TextField()
    submitted_at = fields.DatetimeField()
    # accepted, partial or rejected
    decision = fields.CharField(max_length=8, null=True)
    decided_by = fields.CharField(max_length=100, null=True)
    decided_at = fields.DatetimeField(null=True)
    reason = fields.TextField(null=True)

    class Meta:
        table = "milestone_report"
        indexes = (("milestone_id", "id"),)


class MilestonePhoto(Model):
    """A photo of a milestone report, stored without EXIF like every photo."""

    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.MilestoneReport", related_name="photos", on_delete=fields.CASCADE)
    path = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=32)
    width = fields.IntField()
    height = fields.IntField()
    size = fields.IntField()

    class Meta:
        table = "milestone_photo"


class TenderRelease(Model):
    """An OCDS release, written once in the transaction of the change it tells."""

    id = fields.BigIntField(primary_key=True)
    tender: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Tender", related_name="releases", on_delete=fields.CASCADE)
    release_id = fields.CharField(max_length=120, unique=True)
    tag = fields.JSONField()
    date = fields.DatetimeField()
    data = fields.JSONField()

    class Meta:
        table = "ocds_release"
        indexes = (("tender_id", "id"),)


class OrgCounter(Model):
    """Sequences behind the orgs codes (GT-2026 → GT-2026-00012)."""

    name = fields.CharField(max_length=16, primary_key=True)
    value = fields.IntField(default=0)

    class Meta:
        table = "org_counter"
