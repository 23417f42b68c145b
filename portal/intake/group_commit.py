"""Reports that arrive together, written in one SQLite transaction: one commit for all of them.

SQLite has one writer, and each commit waits for a flush of the log to disk while the
connection stays held. The intake's transactions are short (a dozen statements) next to that
commit and its thread hand-over, so under load most of an intake write was commit. Here the
intake's writes queue; whoever finds the queue idle runs it: every write waiting at that
moment goes into one transaction, each in a savepoint of its own (a failing write, a throttled
reporter say, undoes only itself), then one COMMIT. Writes that arrive meanwhile make the next
batch. Nobody is answered before the commit that holds their write: a batch that fails to
commit, or whose transaction SQLite undoes by itself (a full disk, an I/O error), fails every
write in it, except that a write refused on its own keeps its reason. A lone write is
committed at once, as before. The connection is held for the whole batch, but the event loop
is not: other requests get a turn between writes.

Writes run one after another in the same transaction, so a write sees the writes before it
in its batch: two reports of one problem in one batch still make one case.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.transactions import in_transaction

# A batch holds the connection while it runs; this bounds how long others wait for it.
MAX_BATCH = 32

Work = Callable[[Any], Awaitable[Any]]


class GroupCommit:
    def __init__(self, max_batch: int = MAX_BATCH):
        self.max_batch = max_batch
        self._waiting: deque[tuple[Work, asyncio.Future]] = deque()
        self._task: asyncio.Task | None = None

    async def run(self, work: Work) -> Any:
        """`await work(conn)` inside a transaction shared with other writes; its result once
        that transaction is committed."""
        if isinstance(connections.get("default"), TransactionalDBClient):
            # Called inside a transaction of the caller's own: the write is part of it (and
            # a batch must not be, nor wait for the connection that transaction holds).
            async with in_transaction() as conn:
                return await work(conn)
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            # Another event loop (a restarted server, the next test): the old one's writes
            # went with it.
            self._waiting.clear()
            self._task = None
        future = loop.create_future()
        self._waiting.append((work, future))
        if self._task is None or self._task.done():
            # Its own task, so that a caller that goes away (a client hung up) does not
            # take the batch with it; kept, as the loop holds tasks only weakly.
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = [self._waiting.popleft()
                         for _ in range(min(self.max_batch, len(self._waiting)))]
                await self._write(batch)
        finally:
            # Only when the loop itself is stopping (shutdown): nobody waits for ever.
            while self._waiting:
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(RuntimeError("the server is stopping"))

    async def _write(self, batch: list[tuple[Work, asyncio.Future]]) -> None:
        outcome: dict[asyncio.Future, tuple[bool, Any]] = {}
        try:
            async with in_transaction() as conn:
                if len(batch) == 1:
                    # Alone, the transaction is its own: no savepoint, whose undo pages cost
                    # SQLite a write each.
                    work, future = batch[0]
                    outcome[future] = (True, await work(conn))
                else:
                    for work, future in batch:
                        try:
                            async with in_transaction() as savepoint:
                                value = await work(savepoint)
                        except Exception as exc:  # handed to its caller, not to the batch
                            outcome[future] = (False, exc)
                        else:
                            outcome[future] = (True, value)
                        if not _open(conn):
                            # A full disk, an I/O error: SQLite rolled the whole transaction
                            # back, the writes before this one with it (and the savepoint's
                            # own undo then failed on top of the first error).
                            ok, failed = outcome.pop(future)
                            cause = None if ok else failed.__context__ or failed
                            raise TransactionLost(
                                f"the database undid the transaction: {cause}") from cause
                        # Other requests get a turn between writes (the connection stays held).
                        await asyncio.sleep(0)
        except BaseException as exc:
            # The commit or the transaction failed, or a lone write did: nothing of the batch
            # is written. A write that failed on its own keeps its own reason.
            failure = exc if isinstance(exc, Exception) else RuntimeError(
                "the write was interrupted")
            for _, future in batch:
                ok, value = outcome.get(future, (True, None))
                _settle(future, False, failure if ok or value is exc else value)
            if not isinstance(exc, Exception):
                raise
            return
        for future, (ok, value) in outcome.items():
            _settle(future, ok, value)


class TransactionLost(Exception):
    """SQLite ended a batch's transaction by itself: none of its writes is kept."""


def _open(conn) -> bool:
    # The driver's own view: SQLite may have rolled back without Tortoise knowing.
    return conn._connection.in_transaction


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():  # its caller was cancelled
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
