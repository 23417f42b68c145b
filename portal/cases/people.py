"""People and their channel identities."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from portal.cases.models import Case, Identity, Person, Report, Subscription
from portal.intake.submission import IDENTITY_KINDS


class IdentityError(Exception):
    pass


async def link_identity(person: Person, key: str) -> Person:
    """Attach identity `key` to `person`, so throttling and "my cases" see one person.

    When the identity already belongs to someone else (they reported before linking), that
    person's reports, subscriptions and contact details move over, the cases they reported
    count them once, and the empty person is removed.
    """
    kind, _sep, rest = key.partition(":")
    if kind not in IDENTITY_KINDS or not rest or len(key) > 200:
        raise IdentityError("An identity looks like tg:<id>, wx:<openid>, web:<email> or tel:<no>.")
    async with in_transaction() as conn:
        existing = await Identity.get_or_none(key=key).using_db(conn)
        if existing is None:
            await Identity.create(key=key, kind=kind, person=person, using_db=conn)
            return person
        if existing.person_id == person.id:
            return person
        other = await Person.get(id=existing.person_id).using_db(conn)
        if (other.email and not person.email) or (other.phone and not person.phone):
            person.email, person.phone = person.email or other.email, person.phone or other.phone
            await person.save(update_fields=["email", "phone"], using_db=conn)
        case_ids = set(await Report.filter(person_id=other.id).using_db(conn)
                       .values_list("case_id", flat=True))
        await Identity.filter(person_id=other.id).using_db(conn).update(person_id=person.id)
        await Report.filter(person_id=other.id).using_db(conn).update(person_id=person.id)
        for sub in await Subscription.filter(person_id=other.id).using_db(conn):
            if await Subscription.filter(case_id=sub.case_id, person_id=person.id) \
                    .using_db(conn).exists():
                await sub.delete(using_db=conn)
            else:
                sub.person_id = person.id
                await sub.save(using_db=conn)
        for case_id in case_ids:
            reporters = await Report.filter(case_id=case_id).using_db(conn) \
                .values_list("person_id", flat=True)
            await Case.filter(id=case_id).using_db(conn).update(
                reporter_count=len(set(reporters)))
        await other.delete(using_db=conn)
    return person


# Reports of a forgotten person keep this in place of the identity they came from.
FORGOTTEN = "forgotten"


def _carries_contact(key: str) -> bool:
    """Identities whose key is itself a contact detail: web:<email>, tel:<number>."""
    kind, _sep, rest = key.partition(":")
    return kind == "tel" or (kind == "web" and "@" in rest)


async def forget_identity(key: str) -> int:
    """/forget: remove a chat identity, the subscriptions through it and the person's contact
    details (with the identities that spell them out); their reports stay, anonymised. Returns
    how many reports were anonymised (0 for an unknown identity)."""
    async with in_transaction() as conn:
        found = await Identity.get_or_none(key=key).using_db(conn)
        if found is None:
            return 0
        person = await Person.get(id=found.person_id).using_db(conn)
        keys = [key] + [k for k in await Identity.filter(person_id=person.id).using_db(conn)
                        .values_list("key", flat=True) if k != key and _carries_contact(k)]
        await Subscription.filter(person_id=person.id, identity__in=keys).using_db(conn).delete()
        anonymised = await Report.filter(person_id=person.id, identity__in=keys) \
            .using_db(conn).update(identity=FORGOTTEN)
        await Identity.filter(key__in=keys).using_db(conn).delete()
        person.email = person.phone = None
        await person.save(update_fields=["email", "phone"], using_db=conn)
    return anonymised
