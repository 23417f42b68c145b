"""portal.sqlite: Tortoise's SQLite client with statements on the loop's thread."""

from __future__ import annotations

import asyncio

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from portal import db
from portal.sqlite import InlineConnection, InlineSqliteClient


def test_sqlite_urls_use_the_inline_backend():
    conn = db.tortoise_config("sqlite://data/x.sqlite3")["connections"]["default"]
    assert conn["engine"] == "portal.sqlite"
    assert conn["credentials"]["file_path"] == "data/x.sqlite3"


async def test_only_what_waits_for_the_disk_leaves_the_loop(tmp_path):
    conn = InlineConnection(str(tmp_path / "x.sqlite3"))
    try:
        assert not conn._waits_for_disk("SELECT 1")
        assert not conn._waits_for_disk("  pragma journal_mode=WAL")
        assert conn._waits_for_disk("INSERT INTO t VALUES (1)")  # commits by itself
        await conn.executescript("CREATE TABLE t (v INTEGER)")
        await conn.execute("BEGIN")
        assert not conn._waits_for_disk("INSERT INTO t VALUES (1)")  # COMMIT will
        await conn.execute_insert("INSERT INTO t VALUES (?)", [1])
        await conn.commit()
        assert await conn.execute_fetchall("SELECT v FROM t") == [(1,)]
    finally:
        await conn.close()


async def test_transactions_commit_roll_back_and_interleave(tmp_path):
    await db.init_db(f"sqlite://{tmp_path / 'tx.sqlite3'}")
    try:
        client = connections.get("default")
        assert isinstance(client, InlineSqliteClient)
        # Pages are read through a memory map (a URL's own mmap_size would win).
        rows = await client.execute_query_dict("PRAGMA mmap_size")
        assert list(rows[0].values())[0] > 0
        # Savepoints' undo logs in memory (group commit).
        rows = await client.execute_query_dict("PRAGMA temp_store")
        assert list(rows[0].values())[0] == 2
        await client.execute_script("CREATE TABLE t (v INTEGER)")
        with pytest.raises(RuntimeError):
            async with in_transaction() as conn:
                await conn.execute_query("INSERT INTO t (v) VALUES (?)", [1])
                raise RuntimeError("undo")

        async def writer(n: int) -> None:
            async with in_transaction() as conn:
                await conn.execute_query("INSERT INTO t (v) VALUES (?)", [n])
                await asyncio.sleep(0)
                await conn.execute_query("INSERT INTO t (v) VALUES (?)", [n + 100])

        async def reader() -> int:
            return len(await client.execute_query_dict("SELECT v FROM t"))

        # Each reader starts while a writer's transaction is open.
        seen = (await asyncio.gather(*(task for n in range(10)
                                       for task in (writer(n), reader()))))[1::2]
        # It sees whole transactions only (two rows each), some before all were done.
        assert all(count % 2 == 0 for count in seen) and min(seen) < 20
        rows = await client.execute_query_dict("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == [*range(10), *range(100, 110)]
        changed, _ = await client.execute_query("UPDATE t SET v = v + 1 WHERE v < 5")
        assert changed == 5
    finally:
        await db.close_db()
