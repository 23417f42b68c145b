"""Database settings the server relies on: the PostgreSQL pool and SQLite's checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3

from tortoise import connections

from portal import db


def test_postgres_urls_get_a_pool_big_enough_for_concurrent_reports():
    url = db.with_pool_defaults("postgres://u@h:5432/d?schema=s")
    assert "maxsize=20" in url and "minsize=1" in url and "schema=s" in url
    assert "maxsize=3&minsize=1" in db.with_pool_defaults("postgres://u@h:5432/d?maxsize=3")
    assert db.with_pool_defaults("sqlite://data/x.sqlite3") == "sqlite://data/x.sqlite3"


def test_postgres_pool_releases_connections_without_a_reset_query():
    conn = db.tortoise_config("postgres://u@h:5432/d?schema=s")["connections"]["default"]
    assert conn["engine"] == "tortoise.backends.asyncpg"
    assert conn["credentials"]["reset"] is db._keep_session
    assert conn["credentials"]["schema"] == "s" and conn["credentials"]["maxsize"] == "20"


def test_sqlite_urls_leave_checkpoints_to_the_checkpointer():
    assert db.with_sqlite_defaults("sqlite://data/x.sqlite3") == (
        "sqlite://data/x.sqlite3?wal_autocheckpoint=0")
    assert db.with_sqlite_defaults("sqlite://x.db?wal_autocheckpoint=100").endswith("=100")
    assert db.with_sqlite_defaults("sqlite://:memory:") == "sqlite://:memory:"
    assert db.sqlite_file("sqlite:///tmp/a.db?x=1") == "/tmp/a.db"


async def test_the_checkpointer_runs_beside_the_database_and_stops_with_it(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(db.Checkpointer, "INTERVAL_S", 0.01)
    path = tmp_path / "ck.sqlite3"
    await db.init_db(f"sqlite://{path}")
    try:
        conn = connections.get("default")
        rows = await conn.execute_query_dict("PRAGMA wal_autocheckpoint")
        assert list(rows[0].values()) == [0]
        await conn.execute_script("CREATE TABLE t (v TEXT)")
        for n in range(50):
            await conn.execute_query("INSERT INTO t (v) VALUES (?)", [str(n)])
        checkpointer = db._checkpointers[0]
        for _ in range(1000):
            if checkpointer.rounds >= 2:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.rounds >= 2
    finally:
        await db.close_db()
    assert not checkpointer._thread.is_alive() and not db._checkpointers
    # Everything written is in the file.
    probe = sqlite3.connect(path)
    assert probe.execute("SELECT COUNT(*) FROM t").fetchone() == (50,)
    probe.close()
