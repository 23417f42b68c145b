"""People and their channel identities."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from portal.cases.models import Identity, Person, Report, Subscription


class IdentityError(Exception):
    pass


async def link_identity(person: Person, key: str) -> Person:
    """Attach identity `key` to `person`, so throttling and "my cases" see one person.

    When the identity already belongs to someone else (they reported before linking), that
    person's reports and subscriptions move over and the empty person is removed.
    """
    kind = key.split(":", 1)[0]
    if ":" not in key or not key.split(":", 1)[1]:
        raise IdentityError("An identity looks like tg:<id>, wx:<openid>, web:<email> or tel:<no>.")
    async with in_transaction() as conn:
        existing = await Identity.get_or_none(key=key).using_db(conn)
        if existing is None:
            await Identity.create(key=key, kind=kind, person=person, using_db=conn)
            return person
        if existing.person_id == person.id:
            return person
        other_id = existing.person_id
        await Identity.filter(person_id=other_id).using_db(conn).update(person_id=person.id)
        await Report.filter(person_id=other_id).using_db(conn).update(person_id=person.id)
        for sub in await Subscription.filter(person_id=other_id).using_db(conn):
            if await Subscription.filter(case_id=sub.case_id, person_id=person.id) \
                    .using_db(conn).exists():
                await sub.delete(using_db=conn)
            else:
                sub.person_id = person.id
                await sub.save(using_db=conn)
        await Person.filter(id=other_id).using_db(conn).delete()
    return person
