"""`gridlink telegram poll` (development: getUpdates instead of a webhook) and
`gridlink telegram set-webhook URL`."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from portal import db
from portal.i18n import _, gettext_for
from portal.settings import Settings, get_settings

log = logging.getLogger("gridlink.telegram")


def _need_token(settings: Settings) -> None:
    if not settings.telegram_bot_token:
        click.echo("GRIDLINK_TELEGRAM_BOT_TOKEN is not set.", err=True)
        sys.exit(1)


@click.group()
def telegram() -> None:
    """The Telegram bot."""


@telegram.command()
def poll() -> None:
    """Fetch updates with getUpdates (no webhook needed); stop with Ctrl-C."""
    from aiogram.exceptions import TelegramAPIError

    settings = get_settings()
    _need_token(settings)
    try:
        asyncio.run(_poll(settings))
    except KeyboardInterrupt:
        pass
    except TelegramAPIError as exc:
        click.echo(f"Telegram refused: {exc.message}", err=True)
        sys.exit(1)


async def _poll(settings: Settings) -> None:
    from bot.telegram.channel import TelegramChannel
    from bot.telegram.setup import ALLOWED_UPDATES
    from portal.intake.throttle import Throttle, storage_for

    await db.migrate(settings.database_url)
    await db.init_db(settings.database_url)
    throttle = Throttle(storage_for(settings.redis_url), settings.throttle_new_reports)
    channel = TelegramChannel.build(settings, throttle)
    try:
        # One getUpdates consumer per token, and none while a webhook is set.
        await channel.bot.delete_webhook()
        me = await channel.bot.me()
        click.echo(f"Polling as @{me.username}; Ctrl-C stops.")
        channel.start(webhook=False)
        offset = None
        while True:
            updates = await channel.bot.get_updates(offset=offset, timeout=25,
                                                    allowed_updates=ALLOWED_UPDATES)
            for update in updates:
                # The webhook's own path: the inbox makes a re-fetched update a no-op.
                await channel.ingest(update.model_dump(mode="json", exclude_none=True,
                                                       by_alias=True))
                offset = update.update_id + 1
    finally:
        await channel.close()
        await db.close_db()


@telegram.command("set-webhook")
@click.argument("url")
def set_webhook(url: str) -> None:
    """Tell Telegram to deliver updates to URL (…/bot/telegram/webhook), with the secret."""
    from aiogram.exceptions import TelegramAPIError

    settings = get_settings()
    _need_token(settings)
    if not settings.telegram_webhook_secret:
        click.echo("GRIDLINK_TELEGRAM_WEBHOOK_SECRET is not set: the webhook would refuse "
                   "every update.", err=True)
        sys.exit(1)
    try:
        info = asyncio.run(_set_webhook(settings, url))
    except TelegramAPIError as exc:
        click.echo(f"Telegram refused: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"Webhook: {info.url} (pending updates: {info.pending_update_count})")
    if info.last_error_message:
        click.echo(f"Telegram's last delivery error: {info.last_error_message}")


# The command menu Telegram shows next to the message field.
MENU = (("start", _("Start, privacy notice")), ("my", _("My cases")),
        ("case", _("Look up a case by its number")), ("cancel", _("Drop the report I am writing")),
        ("lang", _("Language: 中文 or English")), ("night", _("Updates at night or not")),
        ("forget", _("Remove my chat ID and contact details")),
        ("volunteer", _("Become a volunteer")), ("link", _("Link this chat to my account")),
        ("help", _("What the bot can do")))


async def _set_webhook(settings: Settings, url: str):
    from aiogram.types import BotCommand

    from bot.telegram.setup import ALLOWED_UPDATES, build_bot

    async with build_bot(settings) as bot:
        await bot.set_webhook(url=url, secret_token=settings.telegram_webhook_secret,
                              allowed_updates=ALLOWED_UPDATES, max_connections=40)
        # Chinese by default, English for people whose Telegram is in English.
        for language, code in (("zh-CN", None), ("en", "en")):
            t = gettext_for(language)
            await bot.set_my_commands([BotCommand(command=c, description=t(d)) for c, d in MENU],
                                      language_code=code)
        return await bot.get_webhook_info()
