"""Satisfaction ratings: one per person and case, a later one replaces the earlier."""

from __future__ import annotations

import re

from tortoise.exceptions import IntegrityError

from feedback.models import Rating
from portal.cases.models import Case, Person

MAX_COMMENT_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _id(value: Case | Person | int) -> int:
    return value if isinstance(value, int) else value.id


async def record_rating(case: Case | int, person: Person | int, score: int,
                        fixed: bool | None, comment: str | None, channel: str) -> Rating:
    """`score` 1-5; `fixed` False when the person says the problem is not fixed (None: not
    said). Who may rate is the caller's decision (the reporters and followers of the case)."""
    if not 1 <= int(score) <= 5:
        raise ValueError("score must be 1 to 5")
    comment = _CONTROL.sub("", comment or "").strip()[:MAX_COMMENT_CHARS] or None
    values = {"score": int(score), "fixed": fixed, "comment": comment, "channel": channel[:16]}
    case_id, person_id = _id(case), _id(person)
    for _attempt in range(2):
        if await Rating.filter(case_id=case_id, person_id=person_id).update(**values):
            break
        try:
            return await Rating.create(case_id=case_id, person_id=person_id, **values)
        except IntegrityError:
            continue  # rated at the same moment elsewhere: replace that one
    return await Rating.get(case_id=case_id, person_id=person_id)
