"""The inbox of Telegram updates: each (bot, update_id) is claimed once, whichever process and
however often Telegram delivers it, and finishes as done or failed. A row left pending by a
process that died is claimed again by the sweep."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from tortoise import connections

from bot.telegram.models import TelegramUpdate
from portal.cases.service import utcnow
from portal.db import run_sql

# A pending row this old belongs to a process that died (a handler takes seconds at most).
STALE_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 3
KEEP_DONE = timedelta(days=7)
# Claims in one statement at most (SQLite allows 32,766 parameters; Telegram sends 40 at once).
MAX_BATCH = 200


async def claim(bot_id: int, update_id: int, payload: dict) -> int | None:
    """The new row's id, or None when the update was received before."""
    return (await claim_many(bot_id, [(update_id, payload)])).get(update_id)


async def claim_many(bot_id: int, updates: list[tuple[int, dict]]) -> dict[int, int]:
    """One statement (one commit) for updates that arrived together: {update_id: new row id}
    for those not received before. Written out: the ORM has no INSERT … ON CONFLICT DO
    NOTHING RETURNING, and an IntegrityError per redelivery would abort a batch."""
    now = utcnow()
    conn = connections.get("default")
    rows = [(bot_id, update_id, json.dumps(payload, ensure_ascii=False), "pending", 1, now, now)
            for update_id, payload in updates]
    sql = ("INSERT INTO telegram_update (bot_id, update_id, payload, status, attempts, "
           "received_at, claimed_at) VALUES "
           + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
           + " ON CONFLICT (bot_id, update_id) DO NOTHING RETURNING id, update_id")
    # The intake's runner of written-out statements (`?` marks on both databases).
    got = await run_sql(conn, sql, [value for row in rows for value in row])
    return {row["update_id"]: row["id"] for row in got}


class Claims:
    """Claims that arrive while one is being written wait for the next statement together, so
    that a burst of updates costs a few commits, not one each (SQLite has a single writer;
    PostgreSQL's pool is shared with the handlers)."""

    def __init__(self, bot_id: int):
        self.bot_id = bot_id
        self.waiting: list[tuple[int, dict, asyncio.Future]] = []
        self.writer: asyncio.Task | None = None

    async def claim(self, update_id: int, payload: dict) -> int | None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((update_id, payload, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            first: dict[int, dict] = {}
            for update_id, payload, _f in batch:
                first.setdefault(update_id, payload)
            try:
                ids = await claim_many(self.bot_id, list(first.items()))
            except Exception as exc:
                for _u, _p, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for update_id, _p, future in batch:
                # The same update twice in one batch: the first one is the claim.
                if not future.done():
                    future.set_result(ids.pop(update_id, None))


async def mark_done(row_id: int, note: str | None = None) -> None:
    await TelegramUpdate.filter(id=row_id, status="pending").update(
        status="done", error_ref=note, finished_at=utcnow())


async def mark_failed(row_id: int, ref: str) -> None:
    await TelegramUpdate.filter(id=row_id, status="pending").update(
        status="failed", error_ref=ref, finished_at=utcnow())


async def reclaim_stale(bot_id: int) -> list[tuple[int, dict]]:
    """Pending rows of dead processes, claimed again (one process wins each row); rows that
    failed that often are given up as failed."""
    now = utcnow()
    old = now - STALE_AFTER
    await TelegramUpdate.filter(bot_id=bot_id, status="pending", claimed_at__lt=old,
                                attempts__gte=MAX_ATTEMPTS).update(
        status="failed", error_ref="gave-up", finished_at=now)
    again = []
    for row in await TelegramUpdate.filter(bot_id=bot_id, status="pending", claimed_at__lt=old):
        won = await TelegramUpdate.filter(id=row.id, status="pending",
                                          attempts=row.attempts).update(
            attempts=row.attempts + 1, claimed_at=now)
        if won:
            again.append((row.id, row.payload))
    return again


async def prune(bot_id: int) -> int:
    """Forget finished updates after a week (Telegram redelivers for a day at most)."""
    return await TelegramUpdate.filter(bot_id=bot_id, status="done",
                                       finished_at__lt=utcnow() - KEEP_DONE).delete()
