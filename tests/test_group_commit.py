"""portal.intake.group_commit: SQLite writes that arrive together share one transaction."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from portal import db
from portal.intake.group_commit import GroupCommit


@pytest.fixture
async def client(tmp_path):
    """A fresh SQLite file (tmp_path / "group.sqlite3") with a table t (v, blob)."""
    await db.init_db(f"sqlite://{tmp_path / 'group.sqlite3'}")
    try:
        client = connections.get("default")
        await client.execute_script("CREATE TABLE t (v INTEGER, blob BLOB)")
        yield client
    finally:
        await db.close_db()


def insert(v: int, size: int = 10):
    async def work(conn) -> int:
        await conn.execute_query("INSERT INTO t (v, blob) VALUES (?, zeroblob(?))", [v, size])
        return v
    return work


async def values(client) -> list[int]:
    return [r["v"] for r in await client.execute_query_dict("SELECT v FROM t ORDER BY rowid")]


async def test_each_write_is_undone_alone_and_answered_once_committed(client, tmp_path):
    group = GroupCommit()
    seen: dict[int, int] = {}

    async def write(n: int) -> int:
        async def work(conn) -> int:
            rows = await conn.execute_query_dict("SELECT count(*) AS c FROM t")
            seen[n] = rows[0]["c"]
            await conn.execute_query("INSERT INTO t (v) VALUES (?)", [n])
            if n == 3:
                raise ValueError("refused")
            return n * 10
        return await group.run(work)

    results = await asyncio.gather(*(write(n) for n in range(6)), return_exceptions=True)
    assert results[:3] + results[4:] == [0, 10, 20, 40, 50]
    assert isinstance(results[3], ValueError)
    # In arrival order, each after the writes before it; the refused one left nothing.
    assert seen == {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4}
    # Answered only once committed: another connection sees every accepted write.
    other = sqlite3.connect(tmp_path / "group.sqlite3")
    try:
        assert sorted(v for (v,) in other.execute("SELECT v FROM t")) == [0, 1, 2, 4, 5]
    finally:
        other.close()
    # A lone write later still goes through.
    assert await write(7) == 70


async def test_a_write_inside_the_callers_transaction_is_part_of_it(client):
    group = GroupCommit()
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await asyncio.wait_for(group.run(insert(1)), timeout=10)
            raise RuntimeError("the caller changes its mind")
    assert await values(client) == []
    async with in_transaction():
        await group.run(insert(1))
    assert await values(client) == [1]


async def test_a_batch_whose_commit_fails_fails_every_write_and_leaves_nothing(client):
    await client.execute_script("CREATE TABLE parent (id INTEGER PRIMARY KEY); "
                                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")
    group = GroupCommit()

    async def breaks_the_commit(conn) -> None:
        # Checked only at COMMIT, which then fails and leaves the transaction open.
        await conn.execute_query("PRAGMA defer_foreign_keys = ON")
        await conn.execute_query("INSERT INTO child (parent_id) VALUES (42)")

    async def refused(conn) -> None:
        raise ValueError("refused on its own")

    results = await asyncio.gather(group.run(insert(1)), group.run(breaks_the_commit),
                                   group.run(refused), group.run(insert(2)),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    # A write that failed on its own keeps its reason (a throttled reporter hears so).
    assert isinstance(results[2], ValueError)
    assert "FOREIGN KEY" in str(results[0]) and "FOREIGN KEY" in str(results[3])
    # The connection is usable again, and what failed is not committed with what follows.
    assert await group.run(insert(3)) == 3
    assert await values(client) == [3]
    assert await client.execute_query_dict("SELECT * FROM child") == []


async def test_a_transaction_the_database_undoes_fails_every_write_of_its_batch(client):
    pages = (await client.execute_query_dict("PRAGMA page_count"))[0]["page_count"]
    group = GroupCommit()
    # A full disk: SQLite rolls the whole transaction back, not only the statement.
    await client.execute_query(f"PRAGMA max_page_count = {pages + 20}")
    results = await asyncio.gather(
        group.run(insert(1)), group.run(insert(2)), group.run(insert(3, 1_000_000)),
        group.run(insert(4)), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert all("full" in str(r) for r in results), results
    await client.execute_query("PRAGMA max_page_count = 1073741823")
    assert await group.run(insert(5)) == 5
    assert await values(client) == [5]


async def test_another_process_committing_meanwhile_does_not_undo_a_write(client, tmp_path):
    other = sqlite3.connect(tmp_path / "group.sqlite3", timeout=0.2)  # a second server process
    try:
        group = GroupCommit()
        other_said: list[str] = []

        async def reads_then_writes(conn) -> int:
            await conn.execute_query_dict("SELECT count(*) AS c FROM t")
            try:
                other.execute("INSERT INTO t (v) VALUES (100)")
                other.commit()
                other_said.append("committed")
            except sqlite3.OperationalError as exc:
                other_said.append(str(exc))
            await conn.execute_query("INSERT INTO t (v) VALUES (1)")
            return 1

        # The batch holds the write lock from its start: the other process waits its turn
        # (here it gives up after 0.2 s), and the batch's write stands.
        assert await group.run(reads_then_writes) == 1
        assert other_said == ["database is locked"]
        assert [v for (v,) in other.execute("SELECT v FROM t")] == [1]
    finally:
        other.close()
