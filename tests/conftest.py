"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, every shared-state test
on memory and on Redis. Without a server the test skips, except under CI=true where it fails."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from tortoise import connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from portal import db
from portal.app import create_app
from portal.intake.throttle import Throttle, storage_for
from portal.seed import ensure_categories, ensure_departments
from portal.settings import Settings

PG_URL = os.environ.get("GRIDLINK_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GRIDLINK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"

# The progress-update fixtures (a fake Bot API, settings that send at once, the worker);
# test modules with a `fake` of their own keep theirs.
pytest_plugins = ("tests.updates",)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(message)


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def database_url(request, tmp_path_factory) -> str:
    """A migrated database on each engine, opened for the whole session."""
    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        # A schema of its own per run, so that concurrent runs on one server do not collide.
        schema = f"gl_test_{os.getpid()}"
        await _pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};")
        url = f"{PG_URL}?schema={schema}"
    else:
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'gridlink.sqlite3'}"
    # Tortoise caches compiled queries per table name, not per engine: start clean on each.
    EXECUTOR_CACHE.clear()
    await db.migrate(url)
    await db.init_db(url)
    yield url
    await db.close_db()
    if request.param == "postgres":
        await _pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE;")


TABLES = ("appeal", "consequence_record", "assessment", "assessment_period", "indicator",
          "indicator_set", "bidding_suspension", "complaint", "case_assignment", "org_document",
          "milestone_photo", "milestone_report", "milestone", "contract", "award", "tie_draw",
          "bid_result", "criterion_score", "low_bid_review", "bid_event", "bid", "tender_evaluator",
          "tender_criterion", "ocds_release", "tender", "org_counter", "claim", "claim_task",
          "points_entry", "discovery", "sweep_cursor", "volunteer", "person_notice", "membership",
          "link_code", "account_session", "account", "org_event", "org_area", "training_record",
          "data_agreement", "organisation", "area",
          "delivery", "survey", "unreachable", "outbox", "rating", "dialogue_state", "telegram_update", "wechat_message", "wechat_contact",
          "wechat_token", "photo", "subscription", "case_event", "case_key", "report", "case_",
          "identity", "person", "address_point", "daily_counter", "staff_session", "staff_user",
          "api_key")


@pytest.fixture
async def clean_db(database_url: str) -> str:
    """An empty database (reference data seeded) for one test."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE;")
    else:
        # Streets are the parents of grids (RESTRICT, checked row by row).
        await conn.execute_script("UPDATE area SET parent_id = NULL;")
        for table in TABLES:
            await conn.execute_script(f"DELETE FROM {table};")
    await ensure_categories()
    await ensure_departments()
    return database_url


@pytest.fixture(params=["memory", "redis"])
def state_url(request) -> str:
    """'' for in-process memory, or a Redis URL."""
    if request.param == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        return REDIS_URL
    return ""


@pytest.fixture
def settings(clean_db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=clean_db, media_dir=tmp_path / "media",
                    throttle_new_reports="5/10 minutes;20/day")


@pytest.fixture
async def throttle(settings: Settings) -> Throttle:
    t = Throttle(storage_for(settings.redis_url), settings.throttle_new_reports,
                 namespace=f"test-{uuid.uuid4().hex}")
    return t


@pytest.fixture
async def app(settings: Settings):
    application = create_app(settings, manage_db=False)
    application.state.throttle.namespace = f"test-{uuid.uuid4().hex}"
    return application


@pytest.fixture
async def client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database_url(request, tmp_path: Path) -> str:
    """An empty database for a subprocess (CLI, live server) to migrate and own."""
    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        schema = f"gl_sub_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        await _pg_execute(f"CREATE SCHEMA {schema};")
        yield f"{PG_URL}?schema={schema}"
        await _pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE;")
    else:
        yield f"sqlite://{tmp_path / 'sub.sqlite3'}"
