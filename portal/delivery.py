"""The delivery worker with a sender for every channel that is set up: Telegram (a bot
token), WeChat (app id and secret), e-mail (an SMTP server). Used by `gridlink serve` (the
one-process default) and `gridlink worker`."""

from __future__ import annotations

from feedback.live import LiveBus
from feedback.worker import Worker
from portal.settings import Settings
from portal.web.keys import secret_key


def build_worker(settings: Settings, live: LiveBus | None = None) -> Worker:
    """`live`: the process's bus that wakes tracking pages (the server's own, or one on Redis
    for a worker process)."""
    worker = Worker(settings, secret_key(settings), live)
    if settings.telegram_bot_token:
        from bot.telegram.notify import TelegramSender

        worker.register(TelegramSender.build(settings))
    if settings.wechat_app_id and settings.wechat_app_secret:
        from bot.wechat.notify import WeChatSender

        worker.register(WeChatSender.build(settings))
    if settings.smtp_url:
        from feedback.email import EmailSender

        worker.register(EmailSender(settings))
    return worker
