"""What a rating sets off: a poor one sends the case back to staff for review, and enough
reporters saying "not fixed" reopen a resolved case.

Every function takes the caller's transaction (`conn`): record_rating writes the rating, the
review flag, the staff-only event and a reopening in one transaction, with the case locked,
so two reporters answering at the same moment are counted one after the other.
"""

from __future__ import annotations

from datetime import datetime

from feedback.models import Rating
from portal.cases.models import Case, CaseEvent, Report, Status
from portal.cases.service import add_event, change_status

# The scores that count as satisfied (满意) in the roll-ups, and those that ask for a review.
SATISFIED_FROM = 4
POOR_UP_TO = 2
# Who reopened a case on the residents' word (the actor of the status event).
RESIDENTS = "residents"

def is_poor(score: int, fixed: bool | None) -> bool:
    return score <= POOR_UP_TO or fixed is False


async def resolved_at(case_id: int, conn=None) -> datetime | None:
    """When the case was last resolved (None: never, by an event)."""
    event = await CaseEvent.filter(case_id=case_id, kind="status", status_to=Status.RESOLVED.value
                                   ).using_db(conn).order_by("-id").first()
    return event.created_at if event else None


async def rated_since(case_id: int, person_id: int, event_id: int | None = None,
                      conn=None) -> bool:
    """Whether the person rated the case after the event `event_id` (the resolution they were
    asked about); any rating at all when no event is given. A rating of an earlier resolution
    does not answer the request about a later one."""
    ratings = Rating.filter(case_id=case_id, person_id=person_id).using_db(conn)
    if event_id is not None:
        event = await CaseEvent.get_or_none(id=event_id).using_db(conn)
        if event is not None:
            ratings = ratings.filter(updated_at__gte=event.created_at)
    return await ratings.exists()


async def not_fixed_reporters(case_id: int, since: datetime | None, conn) -> int:
    """Distinct reporters of the case (merged reports included) who said "not fixed" since
    `since` (the last resolution)."""
    reporters = Report.filter(case_id=case_id).using_db(conn).values_list("person_id", flat=True)
    ratings = Rating.filter(case_id=case_id, fixed=False,
                            person_id__in=list(set(await reporters))).using_db(conn)
    if since is not None:
        ratings = ratings.filter(updated_at__gte=since)
    return await ratings.count()


async def after_rating(case: Case, rating: Rating, conn, *, reopen_after: int,
                       now: datetime) -> bool:
    """Send the case back for review after a poor rating, and reopen it when `reopen_after`
    reporters have said "not fixed" since it was resolved. `case` is locked by the caller.
    True when the case was reopened."""
    reopened = False
    if (rating.fixed is False and case.status == Status.RESOLVED and reopen_after > 0
            and await not_fixed_reporters(case.id, await resolved_at(case.id, conn), conn)
            >= reopen_after):
        # A public status event: every subscriber hears it through the outbox, with a note
        # in their language (portal.cases.public.REOPENED_NOT_FIXED).
        await change_status(case.id, Status.IN_PROGRESS, actor=RESIDENTS, now=now,
                            data={"reopened": "not_fixed"})
        reopened = True
    # After the reopening: a change of status clears the flag, and this one still stands.
    await Case.filter(id=case.id).using_db(conn).update(review_requested_at=now)
    await add_event(case, "review", conn, at=now, actor=RESIDENTS, public=False, data={
        "score": rating.score, "fixed": rating.fixed, "comment": rating.comment,
        "channel": rating.channel, "reopened": reopened})
    return reopened
