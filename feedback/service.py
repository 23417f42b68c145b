"""Satisfaction ratings: one per person and case, a later one replaces the earlier. A poor
rating sends the case back to staff, and several "not fixed" reopen it (feedback.satisfaction).
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from feedback import satisfaction
from feedback.models import Rating
from portal.cases.models import Case, Person
from portal.cases.service import utcnow
from portal.db import run_sql
from portal.intake.text import CONTROL_CHARS
from portal.settings import Settings

MAX_COMMENT_CHARS = 1000
# GRIDLINK_REOPEN_AFTER_NOT_FIXED's default, for callers without settings at hand.
REOPEN_AFTER = Settings.model_fields["reopen_after_not_fixed"].default


def _id(value: Case | Person | int) -> int:
    return value if isinstance(value, int) else value.id


async def record_rating(case: Case | int, person: Person | int, score: int,
                        fixed: bool | None, comment: str | None, channel: str, *,
                        reopen_after: int = REOPEN_AFTER,
                        now: datetime | None = None) -> Rating:
    """`score` 1-5; `fixed` False when the person says the problem is not fixed (None: not
    said). Who may rate is the caller's decision (the reporters and followers of the case).

    A rating of 1-2 or "not fixed" flags the case for review (with a staff-only event); when
    `reopen_after` reporters (settings.reopen_after_not_fixed) have said "not fixed" since the
    case was resolved, it goes back to in progress. The same rating again changes nothing."""
    if not 1 <= int(score) <= 5:
        raise ValueError("score must be 1 to 5")
    now = now or utcnow()
    comment = CONTROL_CHARS.sub("", comment or "").strip()[:MAX_COMMENT_CHARS] or None
    values = {"score": int(score), "fixed": fixed, "comment": comment, "channel": channel[:16],
              "updated_at": now}
    case_id, person_id = _id(case), _id(person)
    async with in_transaction() as conn:
        # Locked: ratings of one case are counted one after the other. SQLite has no row
        # locks: a write first makes the transaction the writer, so another process's commit
        # cannot fail it half way ("database is locked" after it read).
        if conn.capabilities.dialect == "sqlite":
            await run_sql(conn, "UPDATE case_ SET id = id WHERE id = ?", [case_id])
        locked = await Case.select_for_update().using_db(conn).get_or_none(id=case_id)
        if locked is None:
            raise ValueError("no such case")
        before = await Rating.get_or_none(case_id=case_id, person_id=person_id).using_db(conn)
        if before is None:
            # Written out: the model would stamp its own clock on create, the rating's time
            # is `now`.
            rows = await run_sql(
                conn, "INSERT INTO rating (case_id, person_id, score, fixed, comment, channel, "
                      "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                [case_id, person_id, values["score"], fixed, comment, values["channel"], now,
                 now])
            rating = Rating._init_from_db(**dict(rows[0]))
        elif (before.score, before.fixed, before.comment) == (values["score"], fixed, comment):
            return before  # pressed twice: nothing new
        else:
            await Rating.filter(id=before.id).using_db(conn).update(**values)
            rating = await Rating.get(id=before.id).using_db(conn)
        if satisfaction.is_poor(rating.score, rating.fixed):
            await satisfaction.after_rating(locked, rating, conn, reopen_after=reopen_after,
                                            now=now)
    return rating
