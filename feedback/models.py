"""Progress updates on their way to people, who cannot be reached where, and ratings."""

from tortoise import fields
from tortoise.models import Model


class Delivery(Model):
    """One message to one person on one channel about one case: the events it tells (several
    changes made while it waited become one message), or a reminder to rate. A notice (kind
    notice) is about no case: first and last event are the PersonNotice's id.

    Unique per person, channel, first event and kind, so an event never becomes two messages
    to the same person on the same channel.
    """

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "portal.Case", null=True, related_name="deliveries", on_delete=fields.CASCADE)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="deliveries", on_delete=fields.CASCADE)
    # telegram, wechat or email
    channel = fields.CharField(max_length=16)
    # The channel's address: a chat identity (tg:123, wx:openid) or an e-mail address. Private.
    address = fields.CharField(max_length=254)
    language = fields.CharField(max_length=8, default="zh-CN")
    # update (events), reminder (a second request to rate) or notice
    kind = fields.CharField(max_length=16, default="update")
    first_event_id = fields.BigIntField()
    last_event_id = fields.BigIntField()
    # Every event id the message tells, oldest first.
    event_ids = fields.JSONField(default=list)
    urgent = fields.BooleanField(default=False)
    # pending, sending, sent, failed (for good), dropped (the person cannot be reached)
    status = fields.CharField(max_length=12, default="pending")
    attempts = fields.SmallIntField(default=0)
    due_at = fields.DatetimeField()
    # A sender that claimed it holds it until then; after that another may take it.
    lease_until = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    error = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "delivery"
        unique_together = (("person", "channel", "first_event_id", "kind"),)
        indexes = (
            # What a sender takes next: its channel's due messages.
            ("channel", "status", "due_at"),
            # A message still waiting that a new change of the case joins, and the ones a
            # fan-out just wrote.
            ("case_id", "person_id", "channel", "status"),
            ("case_id", "first_event_id"),
            # An address that refused us: its waiting messages.
            ("address", "status"),
        )


class Unreachable(Model):
    """An address that refused our messages for good (blocked the bot, unfollowed, bounced):
    not tried again until the person comes back (writes to the bot again)."""

    address = fields.CharField(max_length=254, primary_key=True)
    channel = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=200)
    since = fields.DatetimeField()

    class Meta:
        table = "unreachable"


class Survey(Model):
    """A reporter asked to rate a resolved case: when, and whether the one reminder went."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Case", related_name="surveys", on_delete=fields.CASCADE)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="surveys", on_delete=fields.CASCADE)
    # The "resolved" event the request came with.
    event_id = fields.BigIntField()
    asked_at = fields.DatetimeField()
    reminded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "survey"
        unique_together = (("case", "person", "event_id"),)
        indexes = (("reminded_at", "asked_at"),)


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


class PersonNotice(Model):
    """A message to a person that is about no case (a tender's result, a released claim): the
    outbox the delivery worker fans out to the person's channel, and the portal's inbox.
    Texts are rendered in every language when written, and ref makes writing it twice harmless."""

    id = fields.BigIntField(primary_key=True)
    person: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "portal.Person", related_name="notices", on_delete=fields.CASCADE)
    # tender.result, claim.released...
    topic = fields.CharField(max_length=32)
    ref = fields.CharField(max_length=80)
    # What it is about (a tender code), shown in the WeChat template's code field.
    code = fields.CharField(max_length=40, default="")
    # {"zh-CN": {"title", "body", "link"}, "en": {...}}
    texts = fields.JSONField()
    url = fields.CharField(max_length=300)
    urgent = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    # None while waiting for the fan-out.
    fanned_out_at = fields.DatetimeField(null=True)
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "person_notice"
        unique_together = (("person", "ref"),)
        indexes = (("fanned_out_at", "id"), ("person_id", "id"))
