"""Tortoise ORM configuration, start-up and migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.migrations.api import migrate as run_migrations

from portal.seed import ensure_reference_data

MODEL_MODULES = ["portal.cases.models", "portal.staff.models", "bot.dialogue.models",
                 "bot.telegram.models", "bot.wechat.models", "feedback.models",
                 "orgs.accounts.models", "orgs.registry.models", "orgs.tenders.models",
                 "orgs.tasks.models", "orgs.volunteers.models", "orgs.casework.models",
                 "orgs.assessment.models"]

log = logging.getLogger("gridlink.db")


# Every request in flight holds a pool connection for its transaction; with Tortoise's default
# of at most 5, concurrent reports queue for a connection. A URL's own minsize/maxsize win.
PG_POOL = {"minsize": "1", "maxsize": "20"}


def with_pool_defaults(database_url: str) -> str:
    if not database_url.startswith(("postgres://", "asyncpg://")):
        return database_url
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("maxsize", PG_POOL["maxsize"])
    query.setdefault("minsize", str(min(int(PG_POOL["minsize"]), int(query["maxsize"]))))
    return urlunsplit(parts._replace(query=urlencode(query)))


def sqlite_file(database_url: str) -> str | None:
    """The file of a SQLite URL; None for other engines and in-memory databases."""
    if not database_url.startswith("sqlite://"):
        return None
    path = urlsplit(database_url.removeprefix("sqlite://")).path
    return None if path in ("", ":memory:") else path


def with_sqlite_defaults(database_url: str) -> str:
    """No checkpoint by the committing connection: `Checkpointer` does it (a URL's own
    wal_autocheckpoint wins)."""
    if sqlite_file(database_url) is None:
        return database_url
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("wal_autocheckpoint", "0")
    return urlunsplit(parts._replace(query=urlencode(query)))


class Checkpointer:
    """Copies a SQLite database's write-ahead log back into the file, from a thread and a
    connection of its own, once a second.

    Left to SQLite, the commit that grows the log past 1000 pages does it, and waits for it:
    with a million cases that commit takes ten times longer than the others. A passive
    checkpoint blocks neither readers nor the writer.
    """

    INTERVAL_S = 1.0

    def __init__(self, path: str):
        self.path = path
        self._stop = threading.Event()
        self.rounds = 0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            while not self._stop.wait(self.INTERVAL_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.rounds += 1
                except sqlite3.Error as exc:  # busy or locked: the next round will do
                    log.debug("checkpoint skipped: %s", exc)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("SQLite checkpoint failed: %s", exc)
        finally:
            conn.close()


_checkpointers: list[Checkpointer] = []


async def _keep_session(connection) -> None:
    """Pool reset: nothing to undo. asyncpg's default runs a reset query (advisory unlock, close
    cursors, unlisten, reset settings) on every release, one more round trip per query; this
    code takes transaction-scoped locks only and sets nothing on the session. An unfinished
    transaction is still rolled back by asyncpg itself."""


def _connection(database_url: str) -> str | dict[str, Any]:
    url = with_sqlite_defaults(with_pool_defaults(database_url))
    if database_url.startswith("sqlite://"):
        config = expand_db_url(url)
        # Statements on the loop's thread, not one thread hop each (portal/sqlite.py).
        config["engine"] = "portal.sqlite"
        return config
    if not database_url.startswith(("postgres://", "asyncpg://")):
        return url
    config = expand_db_url(url)
    config["credentials"]["reset"] = _keep_session
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    path = sqlite_file(database_url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            "portal": {
                "models": MODEL_MODULES,
                "migrations": "portal.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str) -> None:
    # uvicorn runs the lifespan in another task than the requests: without the global
    # fallback, requests would find no Tortoise context.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    path = sqlite_file(database_url)
    if path is not None:
        checkpointer = Checkpointer(path)
        checkpointer.start()
        _checkpointers.append(checkpointer)


async def migrate(database_url: str) -> None:
    """Apply committed migrations and put the reference data in (categories, departments);
    safe to run on every start. `gridlink serve` runs it once before the workers start, so that
    they find everything in place and only read it: workers seeding a new SQLite file at the
    same moment failed with "database is locked"."""
    config = tortoise_config(database_url)
    try:
        await run_migrations(config=config)
    finally:
        await connections.close_all()
    await Tortoise.init(config=config)
    try:
        await ensure_reference_data()
    finally:
        await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()
    while _checkpointers:
        await asyncio.to_thread(_checkpointers.pop().stop)


def dialect() -> str:
    """'postgres' or 'sqlite' for the default connection."""
    return connections.get("default").capabilities.dialect


async def run_sql(conn, sql: str, params: list) -> list:
    """A statement on the hot path, written out and handed straight to the driver: Tortoise
    builds every ORM query anew and wraps every raw one in a few layers, which together cost
    several times what the database does for these short statements. `?` marks the
    parameters; the rows (sqlite3.Row or asyncpg.Record) are read by column name."""
    pg = conn.capabilities.dialect == "postgres"
    try:
        async with conn.acquire_connection() as raw:
            if pg:
                return await raw.fetch(numbered(sql), *params)
            return await raw.execute_fetchall(sql, params)
    except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise IntegrityError(exc) from exc
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` marks as PostgreSQL's $1, $2..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _makemigrations_config() -> dict[str, Any]:
    # For `tortoise -c portal.db.TORTOISE_ORM makemigrations` (a scratch SQLite file).
    return tortoise_config("sqlite://data/makemigrations.sqlite3")


TORTOISE_ORM = _makemigrations_config()

