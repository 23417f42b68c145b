"""Tortoise's SQLite backend, with statements run on the event loop's own thread.

Tortoise reaches SQLite through aiosqlite, which hands every statement to a thread of its own
and waits for the answer: two thread switches and a hand-over of the GIL per statement. For the
short, indexed statements of the intake that costs several times what SQLite itself does (the
intake's ~15 statements took twice the time and CPU that way). Here a statement runs where it
is awaited; only what waits for the disk goes to a thread, so that the loop keeps serving:
a COMMIT, and a write outside a transaction (which commits by itself).

The connection is used by one task at a time, as before: Tortoise's client holds its lock
around every statement and every transaction. Select this backend with the engine
"portal.sqlite" (portal.db does so for every sqlite:// URL).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from typing import Any

from tortoise.backends.sqlite.client import SqliteClient

# Statements that never wait for the disk when no transaction is open.
_NO_DISK_WAIT = ("SELECT", "PRAGMA", "BEGIN", "EXPLAIN")


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The part of aiosqlite.Connection that Tortoise's SQLite client uses."""

    def __init__(self, path: str, **kwargs: Any):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                     **kwargs)

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def _waits_for_disk(self, sql: str) -> bool:
        return not self._conn.in_transaction and not sql.lstrip()[:7].upper().startswith(
            _NO_DISK_WAIT)

    async def _run(self, sql: str, fn, *args):
        if self._waits_for_disk(sql):
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _Cursor:
        if sql == "BEGIN":
            # Tortoise's transactions write: take the write lock at once. A deferred BEGIN reads
            # first, and once another process (a second server worker, `gridlink worker`)
            # commits, every write of the transaction fails with "database is locked". Waiting
            # for that lock here blocks no longer than the first write would have.
            sql = "BEGIN IMMEDIATE"
        return _Cursor(await self._run(sql, self._conn.execute, sql, parameters or ()))

    def _insert(self, sql: str, parameters: Iterable[Any]) -> Any:
        cursor = self._conn.execute(sql, parameters)
        cursor.execute("SELECT last_insert_rowid()")
        return cursor.fetchone()

    async def execute_insert(self, sql: str, parameters: Iterable[Any]) -> Any:
        return await self._run(sql, self._insert, sql, parameters)

    def _fetchall(self, sql: str, parameters: Iterable[Any]) -> list[Any]:
        return self._conn.execute(sql, parameters).fetchall()

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None
                               ) -> list[Any]:
        return await self._run(sql, self._fetchall, sql, parameters or ())

    async def executemany(self, sql: str, values: Iterable[Iterable[Any]]) -> None:
        await self._run(sql, self._conn.executemany, sql, values)

    async def executescript(self, script: str) -> None:
        await asyncio.to_thread(self._conn.executescript, script)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            try:
                await asyncio.to_thread(self._conn.commit)
            except sqlite3.Error:
                # SQLite keeps the transaction open after some failed commits (a deferred
                # foreign key, a full disk): Tortoise's next BEGIN would commit it after all.
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()


# Pages read through a memory map rather than a read() into SQLite's small page cache each: a
# candidate search touches a few dozen pages of a file that holds a million cases, and the
# copies cost about a quarter of its time. Address space only; SQLite caps it at 2 GB.
MMAP_BYTES = 2**31


# Savepoint undo logs in memory: the intake writes reports that arrive together in one
# transaction, each in a savepoint (portal/intake/group_commit.py), and SQLite spills each
# savepoint's pages to a temporary file past 64 KiB, one write per page. The app's queries are
# bounded, so temporary sorts held in memory stay small.
TEMP_STORE_MEMORY = 2


class InlineSqliteClient(SqliteClient):
    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self.pragmas.setdefault("mmap_size", MMAP_BYTES)
        self.pragmas.setdefault("temp_store", TEMP_STORE_MEMORY)

    async def create_connection(self, with_db: bool) -> None:
        if not self._connection:
            self._connection = InlineConnection(self.filename)  # type: ignore[assignment]
            self._connection._conn.row_factory = sqlite3.Row
            for pragma, val in self.pragmas.items():
                cursor = await self._connection.execute(f"PRAGMA {pragma}={val}")
                await cursor.close()
            await self._post_connect()


client_class = InlineSqliteClient
