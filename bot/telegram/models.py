"""Telegram updates as received: each is processed once, even when Telegram delivers it again."""

from tortoise import fields
from tortoise.models import Model


class TelegramUpdate(Model):
    """The inbox. The unique (bot_id, update_id) turns a redelivery into a no-op, and the payload
    lets a sweep finish updates whose process died before it was done."""

    id = fields.BigIntField(primary_key=True)
    bot_id = fields.BigIntField()
    update_id = fields.BigIntField()
    payload = fields.JSONField()
    # pending, done, failed
    status = fields.CharField(max_length=8, default="pending")
    attempts = fields.IntField(default=0)
    error_ref = fields.CharField(max_length=16, null=True)
    received_at = fields.DatetimeField()
    claimed_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "telegram_update"
        unique_together = (("bot_id", "update_id"),)
        indexes = (("status", "claimed_at"),)
