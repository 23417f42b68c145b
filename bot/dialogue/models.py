"""Dialogue state per chat identity, shared by every server process and kept across restarts."""

from tortoise import fields
from tortoise.models import Model


class DialogueState(Model):
    """A person's place in the conversation and their unfinished report (a draft). `version`
    makes saves compare-and-set: two processes handling messages of one person at once never
    overwrite each other's changes."""

    identity = fields.CharField(max_length=200, primary_key=True)
    state = fields.JSONField(default=dict)
    version = fields.IntField(default=0)
    updated_at = fields.DatetimeField()
    # Drafts are kept as long as the privacy notice says, then swept.
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "dialogue_state"
