"""People, their identities, categories, departments, cases and everything attached to a case."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Status(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    MERGED = "merged"


OPEN_STATUSES = (
    Status.NEW, Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS, Status.RESOLVED,
)
# A case's reporters may rate it once it is resolved, and after it was closed (on every
# channel); a case worked on again waits for its next resolution.
RATEABLE = (Status.RESOLVED, Status.CLOSED)


class Person(Model):
    """Someone who reports or follows cases, with one or more channel identities."""

    id = fields.BigIntField(primary_key=True)
    language = fields.CharField(max_length=8, default="zh-CN")
    # Private: never shown on a public page or API.
    email = fields.CharField(max_length=254, null=True)
    phone = fields.CharField(max_length=32, null=True)
    # Progress updates during the quiet hours too (else held until the morning).
    updates_at_night = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "person"


class Identity(Model):
    """A channel address of a person: tg:<id>, wx:<openid>, web:<email>, hotline:..., tel:..."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=200, unique=True)
    kind = fields.CharField(max_length=16)
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "portal.Person", related_name="identities", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "identity"


class Category(Model):
    key = fields.CharField(max_length=32, primary_key=True)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=64)
    hint_zh = fields.CharField(max_length=200, default="")
    hint_en = fields.CharField(max_length=200, default="")
    sort = fields.IntField(default=0)

    class Meta:
        table = "category"


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name_zh = fields.CharField(max_length=100)
    name_en = fields.CharField(max_length=100)

    class Meta:
        table = "department"


class Case(Model):
    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=20, unique=True)
    category = fields.CharField(max_length=32)
    status = fields.CharEnumField(Status, max_length=16, default=Status.NEW)
    summary = fields.TextField()
    # WGS-84; null while only an address is known.
    lat = fields.FloatField(null=True)
    lng = fields.FloatField(null=True)
    # H3 cell (resolution 8) of the point, for the candidate search.
    cell = fields.BigIntField(null=True)
    address = fields.CharField(max_length=300, null=True)
    # Normalised road/number keys, "|"-joined, for address-only matching.
    address_keys = fields.CharField(max_length=500, default="")
    # Character bigrams and salient tokens of its reports, kept short for matching.
    fingerprint = fields.TextField(default="")
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "portal.Department", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    master: fields.ForeignKeyNullableRelation["Case"] = fields.ForeignKeyField(
        "portal.Case", related_name="merged_cases", null=True, on_delete=fields.SET_NULL
    )
    possible_duplicate_of: fields.ForeignKeyNullableRelation["Case"] = fields.ForeignKeyField(
        "portal.Case", related_name="possible_duplicates", null=True, on_delete=fields.SET_NULL
    )
    recurrence_of: fields.ForeignKeyNullableRelation["Case"] = fields.ForeignKeyField(
        "portal.Case", related_name="recurrences", null=True, on_delete=fields.SET_NULL
    )
    report_count = fields.IntField(default=0)
    reporter_count = fields.IntField(default=0)
    rejected_reason = fields.TextField(null=True)
    # A reporter rated the result poorly or said it is not fixed: staff should look again.
    review_requested_at = fields.DatetimeField(null=True)
    first_reported_at = fields.DatetimeField()
    last_reported_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "case_"
        indexes = (
            # The candidate search: a ring of cells, recent, then a box around the point, read
            # from the index alone; only the few cases inside the box are fetched.
            ("cell", "first_reported_at", "lat", "lng"),
            ("status", "category", "first_reported_at"),
            # The public list (Open311 GET requests.json): newest first within a span of
            # days, read in index order and stopped at the page, not sorted whole.
            ("first_reported_at", "id"),
            # The staff case list: newest first (id desc) within a status, category or
            # department, and the cases flagged as, or merged into, another case.
            ("status", "id"),
            ("category", "id"),
            ("department_id", "id"),
            # A department's queue within a status (its overdue and per-status views).
            ("department_id", "status", "id"),
            ("possible_duplicate_of_id",),
            ("master_id",),
        )


class Report(Model):
    """One submission, exactly as received. A case keeps every report ever merged into it."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "portal.Case", related_name="reports", on_delete=fields.CASCADE
    )
    # The case the report was first filed into; unmerge sends it back there or to a new case.
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "portal.Person", related_name="reports", on_delete=fields.RESTRICT
    )
    identity = fields.CharField(max_length=200)
    channel = fields.CharField(max_length=16)
    language = fields.CharField(max_length=8, default="zh-CN")
    text = fields.TextField()
    category = fields.CharField(max_length=32)
    raw_lat = fields.FloatField(null=True)
    raw_lng = fields.FloatField(null=True)
    crs = fields.CharField(max_length=8, default="wgs84")
    lat = fields.FloatField(null=True)
    lng = fields.FloatField(null=True)
    address = fields.CharField(max_length=300, null=True)
    received_at = fields.DatetimeField()
    # Idempotency key from the channel (hotline ticket, webhook message id...).
    external_ref = fields.CharField(max_length=200, null=True, unique=True)
    # How it joined its case: new, repeat (same reporter), merged (auto), staff.
    join = fields.CharField(max_length=16, default="new")
    score = fields.FloatField(null=True)
    # Extra fields from the channel (Open311 attributes, hotline line...); private.
    extra = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "report"
        # A reporter's recent reports (repeats); a case's reports (merge, counts, case page).
        indexes = (("person_id", "received_at"), ("case_id", "person_id"))


class Photo(Model):
    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "portal.Case", related_name="photos", on_delete=fields.CASCADE
    )
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "portal.Report", related_name="photos", null=True, on_delete=fields.CASCADE
    )
    # Relative to settings.media_dir; the name is the SHA-256 of the stored bytes.
    path = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=32, default="image/jpeg")
    width = fields.IntField()
    height = fields.IntField()
    size = fields.IntField()
    # "report" (evidence) or "fix" (proof of the repair, public).
    kind = fields.CharField(max_length=8, default="report")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "photo"
        indexes = (("case_id",), ("report_id",))


class CaseEvent(Model):
    """Everything that happens to a case. Feedback turns public events into progress updates."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "portal.Case", related_name="events", on_delete=fields.CASCADE
    )
    # created, report_added, status, note, department, merged, unmerged, flagged, photo
    kind = fields.CharField(max_length=16)
    status_from = fields.CharField(max_length=16, null=True)
    status_to = fields.CharField(max_length=16, null=True)
    public_note = fields.TextField(null=True)
    internal_note = fields.TextField(null=True)
    actor = fields.CharField(max_length=100, default="system")
    public = fields.BooleanField(default=True)
    data = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "case_event"
        indexes = (("case_id", "created_at"),)


class Outbox(Model):
    """A public event waiting to be turned into progress updates, written in the transaction
    of the change. Feedback takes each row once (and deletes it) when it fans the event out
    to the case's subscribers."""

    id = fields.BigIntField(primary_key=True)
    event: fields.ForeignKeyRelation[CaseEvent] = fields.ForeignKeyField(
        "portal.CaseEvent", related_name="outbox", on_delete=fields.CASCADE
    )
    case_id = fields.BigIntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "outbox"


class Subscription(Model):
    """Who hears about a case, and through which identity."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "portal.Case", related_name="subscriptions", on_delete=fields.CASCADE
    )
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "portal.Person", related_name="subscriptions", on_delete=fields.CASCADE
    )
    identity = fields.CharField(max_length=200)
    # reporter or follower
    reason = fields.CharField(max_length=16, default="reporter")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "subscription"
        unique_together = (("case", "person"),)


class CaseKey(Model):
    """An address key (road and number, or two crossing roads) a case was reported at."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=120, db_index=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "portal.Case", related_name="keys", on_delete=fields.CASCADE
    )

    class Meta:
        table = "case_key"
        unique_together = (("key", "case"),)
        indexes = (("case_id",),)


class AddressPoint(Model):
    """What reports with both an address and a point taught us: where an address key lies."""

    key = fields.CharField(max_length=120, primary_key=True)
    lat = fields.FloatField()
    lng = fields.FloatField()
    samples = fields.IntField(default=1)

    class Meta:
        table = "address_point"


class DailyCounter(Model):
    """Sequence behind the public case code GL-YYYYMMDD-NNNN (Shanghai date)."""

    day = fields.CharField(max_length=8, primary_key=True)
    value = fields.IntField(default=0)

    class Meta:
        table = "daily_counter"
