"""Tortoise ORM configuration, start-up and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

MODEL_MODULES = ["portal.cases.models", "portal.staff.models"]


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


def tortoise_config(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": with_pool_defaults(database_url)},
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


async def migrate(database_url: str) -> None:
    """Apply committed migrations; safe to run on every start."""
    try:
        await run_migrations(config=tortoise_config(database_url))
    finally:
        await connections.close_all()


async def close_db() -> None:
    await Tortoise.close_connections()


def dialect() -> str:
    """'postgres' or 'sqlite' for the default connection."""
    return connections.get("default").capabilities.dialect


def _makemigrations_config() -> dict[str, Any]:
    # For `tortoise -c portal.db.TORTOISE_ORM makemigrations` (a scratch SQLite file).
    return tortoise_config("sqlite://data/makemigrations.sqlite3")


TORTOISE_ORM = _makemigrations_config()
