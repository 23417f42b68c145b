"""The inbox of Telegram updates: each (bot, update_id) is claimed once, whichever process and
however often Telegram delivers it, and finishes as done or failed. A row left pending by a
process that died is claimed again by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from bot.telegram.models import TelegramUpdate

# A pending row this old belongs to a process that died (a handler takes seconds at most).
STALE_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 3
KEEP_DONE = timedelta(days=7)


def _now() -> datetime:
    return datetime.now(UTC)


async def claim(bot_id: int, update_id: int, payload: dict) -> int | None:
    """The new row's id, or None when the update was received before."""
    now = _now()
    try:
        row = await TelegramUpdate.create(bot_id=bot_id, update_id=update_id, payload=payload,
                                          status="pending", attempts=1, received_at=now,
                                          claimed_at=now)
    except IntegrityError:
        return None
    return row.id


async def mark_done(row_id: int, note: str | None = None) -> None:
    await TelegramUpdate.filter(id=row_id, status="pending").update(
        status="done", error_ref=note, finished_at=_now())


async def mark_failed(row_id: int, ref: str) -> None:
    await TelegramUpdate.filter(id=row_id, status="pending").update(
        status="failed", error_ref=ref, finished_at=_now())


async def reclaim_stale(bot_id: int) -> list[tuple[int, dict]]:
    """Pending rows of dead processes, claimed again (one process wins each row); rows that
    failed that often are given up as failed."""
    now = _now()
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
                                       finished_at__lt=_now() - KEEP_DONE).delete()
