"""What a person may do with a case from a signed link (e-mail, a WeChat template) or the web
tracking page: rate it, and stop hearing about it."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from feedback.models import Delivery, Rating
from portal.cases.models import Case, Person, Report, Subscription


async def involved(case: Case, person_id: int) -> bool:
    """The person reported the case (a merged report counts) or follows it."""
    return await subscribed(case, person_id) or await reported(case, person_id)


async def reported(case: Case, person_id: int) -> bool:
    return await Report.exists(case_id=case.id, person_id=person_id)


async def rating_of(case: Case, person_id: int) -> Rating | None:
    return await Rating.get_or_none(case_id=case.id, person_id=person_id)


async def subscribed(case: Case, person_id: int) -> bool:
    return await Subscription.exists(case_id=case.id, person_id=person_id)


async def stop_updates(case: Case, person_id: int) -> bool:
    """The person hears nothing more about the case: their subscription goes and the messages
    still waiting for them (a reminder to rate too) are dropped; the reminder sweep makes none
    for someone who no longer follows the case. Their reports and rating stay. False when there
    was nothing to stop (safe to repeat)."""
    async with in_transaction() as conn:
        # Whoever else on this case is reached at the same e-mail address (a reporter who also
        # followed by e-mail is two people to us) stops too: the link stands for the address.
        email = await Person.filter(id=person_id).using_db(conn).values_list("email", flat=True)
        people = [person_id]
        if email:
            people += await Subscription.filter(
                case_id=case.id, person__email=email[0]).using_db(conn) \
                .values_list("person_id", flat=True)
        removed = await Subscription.filter(case_id=case.id, person_id__in=people) \
            .using_db(conn).delete()
        dropped = await Delivery.filter(case_id=case.id, person_id__in=people,
                                        status="pending").using_db(conn).update(
            status="dropped", error="unsubscribed")
    return bool(removed or dropped)
