"""The one door from orgs to people: a notice (feedback.models.PersonNotice) per person, in the
transaction of the change it tells. The delivery worker takes it to the person's chat or
mailbox, and the portal shows it in the account's inbox.

Titles and bodies are msgids, rendered here in every language the portal speaks, so that a
notice reads the same whenever it is sent. No notice may carry a bid's content before its
opening, a phone number, or another organisation's scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from feedback.models import PersonNotice
from orgs.registry.models import Membership
from portal.i18n import LANGUAGES, gettext_for


def render(title: str, body: str, link: str, params: dict) -> dict:
    texts = {}
    for lang in LANGUAGES:
        t = gettext_for(lang)
        texts[lang] = {"title": t(title).format(**params), "body": t(body).format(**params),
                       "link": t(link).format(**params) if link else ""}
    return texts


async def to_people(person_ids: Iterable[int], *, topic: str, ref: str, title: str, body: str,
                    url: str, code: str = "", link: str = "", urgent: bool = False, conn=None,
                    **params) -> int:
    """One notice per person; `ref` (unique per person) makes a repeated call harmless, also
    one racing this one. Returns how many were new."""
    people = list(dict.fromkeys(person_ids))
    if not people:
        return 0
    texts = render(title, body, link, params)
    now = datetime.now(UTC)
    ref = ref[:80]
    async with in_transaction() if conn is None else nullcontext(conn) as c:
        mine = PersonNotice.filter(person_id__in=people, ref=ref).using_db(c)
        before = await mine.count()
        await PersonNotice.bulk_create(
            [PersonNotice(person_id=pid, topic=topic, ref=ref, code=code[:40], texts=texts,
                          url=url, urgent=urgent, created_at=now) for pid in people],
            ignore_conflicts=True, using_db=c)
        return await mine.count() - before


async def to_org(org_id: int, **kwargs) -> int:
    """A notice to each active admin of the organisation."""
    conn = kwargs.get("conn")
    query = Membership.filter(organisation_id=org_id, status="active", role="admin")
    if conn is not None:
        query = query.using_db(conn)
    persons = await query.values_list("account__person_id", flat=True)
    return await to_people(persons, **kwargs)

