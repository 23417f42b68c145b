"""The `gridlink` command: serve, migrate, worker, scheduler, seed-demo, createuser, apikey,
apikeys, telegram, wechat."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys

import click

from bot.telegram.cli import telegram
from portal import db, logs
from portal.hotline.schemas import LINES
from portal.i18n import _, gettext_for
from portal.settings import get_settings


def _run(coro_factory):
    """Run one async job against the configured database."""

    async def main():
        settings = get_settings()
        await db.init_db(settings.database_url)
        try:
            return await coro_factory()
        finally:
            await db.close_db()

    return asyncio.run(main())


@click.group()
def main() -> None:
    """Gridlink (网格联动): citizen reports for grid-based city management."""
    logs.setup(logging.INFO)


@main.command()
def migrate() -> None:
    """Apply the database migrations."""
    asyncio.run(db.migrate(get_settings().database_url))
    click.echo("Migrations applied.")


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Apply migrations and run the web server."""
    import uvicorn

    settings = get_settings()
    asyncio.run(db.migrate(settings.database_url))
    uvicorn.run("portal.main:app", host=host or settings.host, port=port or settings.port,
                workers=workers, proxy_headers=True)


@main.command()
def worker() -> None:
    """Deliver progress updates (run as many as wanted on PostgreSQL, with Redis for the pace;
    set GRIDLINK_WORKER_IN_SERVER=false for the servers then)."""
    import gc
    import signal

    from portal.delivery import build_worker

    async def run() -> None:
        settings = get_settings()
        await db.init_db(settings.database_url)
        from feedback.live import LiveBus

        # Without Redis the tracking pages of the servers find the news at their next poll.
        live = LiveBus(settings.redis_url) if settings.redis_url else None
        worker = build_worker(settings, live)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        worker.start()
        # What start-up built lives as long as the process: out of the collector's full
        # passes, which otherwise pause the sending for 65-200 ms (bench/fanout.py).
        gc.freeze()
        try:
            await stop.wait()
        finally:
            await worker.close()
            if live is not None:
                await live.close()
            await db.close_db()

    asyncio.run(db.migrate(get_settings().database_url))
    asyncio.run(run())


@main.command()
@click.option("--once", is_flag=True, help="Run every sweep once and exit (e.g. from cron).")
def scheduler(once: bool) -> None:
    """Run the scheduled sweeps (satisfaction reminders...): one such process per deployment,
    with GRIDLINK_WORKER_IN_SERVER=false for the servers."""
    import signal

    from portal.scheduler import Scheduler, run_all_once

    async def run() -> None:
        settings = get_settings()
        await db.init_db(settings.database_url)
        try:
            if once:
                for name, done in (await run_all_once(settings)).items():
                    click.echo(f"{name}: {done}")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            sweeps = Scheduler(settings)
            sweeps.start()
            try:
                await stop.wait()
            finally:
                await sweeps.close()
        finally:
            await db.close_db()

    asyncio.run(db.migrate(get_settings().database_url))
    asyncio.run(run())


@main.command("seed-demo")
def seed_demo() -> None:
    """Categories, departments, an admin account (password printed once), demo cases, and
    one street with three grids for organisations, tenders and volunteers."""
    from orgs.registry.service import ensure_demo_areas
    from portal.seed import seed_demo as demo

    async def run():
        password = await demo()
        await ensure_demo_areas()
        return password

    asyncio.run(db.migrate(get_settings().database_url))
    password = _run(run)
    if password:
        click.echo(f"Admin account: admin / {password}  (shown once; keep it safe)")
    else:
        click.echo("Demo data is in place; the admin account already existed.")


@main.command()
@click.argument("username")
@click.option("--role", type=click.Choice(["operator", "department", "admin", "evaluator"]), required=True)
@click.option("--department", default=None, help="Department code, for department accounts.")
@click.option("--password", default=None, help="Asked for when not given.")
def createuser(username: str, role: str, department: str | None, password: str | None) -> None:
    """Create a staff account."""
    from portal.seed import ensure_departments
    from portal.staff.service import StaffError, create_user

    if password is None:
        password = getpass.getpass("Password: ")

    async def job():
        await ensure_departments()
        return await create_user(username, password, role, department)

    try:
        user = _run(job)
    except StaffError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"Created {user.role.value} account {user.username}.")


@main.command()
@click.argument("name")
@click.option("--kind", type=click.Choice(["open311", "hotline"]), required=True)
@click.option("--line", type=click.Choice(LINES), default=None)
def apikey(name: str, kind: str, line: str | None) -> None:
    """Create an API key for an Open311 client or a hotline system (printed once)."""
    from portal.staff.service import StaffError, create_api_key

    try:
        _, key = _run(lambda: create_api_key(name, kind, line))
    except StaffError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(key)


@main.group(invoke_without_command=True)
@click.pass_context
def apikeys(ctx: click.Context) -> None:
    """List the API keys (never the keys themselves); `apikeys deactivate ID` stops one."""
    if ctx.invoked_subcommand is not None:
        return
    from portal.staff.service import api_keys

    rows = _run(api_keys)
    if not rows:
        click.echo("No API keys yet: `gridlink apikey NAME --kind open311` creates one.")
    for k in rows:
        line = f" line {k.line}" if k.line else ""
        state = "active" if k.active else "deactivated"
        click.echo(f"{k.id:>5}  {k.kind}{line}  {state}  {k.created_at:%Y-%m-%d %H:%M} UTC  "
                   f"{k.name}")


@apikeys.command("deactivate")
@click.argument("key_id", type=click.IntRange(1, 2**31 - 1))
def deactivate_apikey(key_id: int) -> None:
    """Refuse the key from now on (running servers within 30 seconds)."""
    from portal.staff.service import NoSuchApiKey, deactivate_api_key

    try:
        row = _run(lambda: deactivate_api_key(key_id))
    except NoSuchApiKey as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"API key {row.id} ({row.name}) is deactivated; running servers refuse it "
               "within 30 seconds.")


main.add_command(telegram)


@main.group()
def wechat() -> None:
    """The WeChat Official Account."""


# The custom menu: click keys the message server knows (bot/wechat), names of at most four
# Chinese characters (WeChat's limit for the first level is 16 bytes).
WECHAT_MENU = (("REPORT", _("Report it")), ("MY", _("My cases")), ("HELP", _("Help")))


@wechat.command()
def menu() -> None:
    """Install the account's custom menu (report a problem, my cases, help)."""
    from bot.wechat.client import WeChatApi, WeChatApiError
    from bot.wechat.tokens import token_store_for

    settings = get_settings()
    if not (settings.wechat_app_id and settings.wechat_app_secret):
        click.echo("GRIDLINK_WECHAT_APP_ID and GRIDLINK_WECHAT_APP_SECRET are not set.", err=True)
        sys.exit(1)
    zh = gettext_for("zh-CN")
    buttons = [{"type": "click", "name": zh(name), "key": key} for key, name in WECHAT_MENU]

    async def job():
        api = WeChatApi(settings, token_store_for(settings))
        try:
            await api.create_menu({"button": buttons})
        finally:
            await api.close()

    asyncio.run(db.migrate(settings.database_url))
    try:
        _run(job)
    except WeChatApiError as exc:
        click.echo(f"WeChat refused: {exc}", err=True)
        sys.exit(1)
    click.echo("Menu installed: " + " | ".join(f"{b['name']} ({b['key']})" for b in buttons))


if __name__ == "__main__":
    main()
