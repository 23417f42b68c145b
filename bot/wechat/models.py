"""WeChat Official Account state shared by every server process."""

from tortoise import fields
from tortoise.models import Model


class WeChatMessage(Model):
    """Messages and events as received. WeChat retries a message it got no answer to within
    5 seconds, up to three times: the unique key (MsgId, or FromUserName + CreateTime for
    events) makes each one handled once, and `reply` lets a retry get the answer already made."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160, unique=True)
    openid = fields.CharField(max_length=64)
    # pending, done, failed
    status = fields.CharField(max_length=8, default="pending")
    reply = fields.TextField(null=True)
    received_at = fields.DatetimeField(db_index=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wechat_message"


class WeChatContact(Model):
    """What decides how we may write to a follower: the customer-service API only within 48
    hours of their last message, template messages otherwise, nothing once they unfollowed."""

    openid = fields.CharField(max_length=64, primary_key=True)
    subscribed = fields.BooleanField(default=True)
    last_inbound_at = fields.DatetimeField(null=True)
    # Customer-service messages sent since their last message (WeChat allows only a few).
    sent_since_inbound = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wechat_contact"


class WeChatToken(Model):
    """The access token, shared by all processes when Redis is not configured."""

    app_id = fields.CharField(max_length=64, primary_key=True)
    token = fields.TextField()
    expires_at = fields.DatetimeField()
    # A process refreshing the token holds this lease so that the others wait for its result.
    lease_until = fields.DatetimeField(null=True)

    class Meta:
        table = "wechat_token"
