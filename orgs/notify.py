"""The one door from orgs to people: a notice (feedback.models.PersonNotice) per person, in the
transaction of the change it tells. The delivery worker takes it to the person's chat or
mailbox, and the portal shows it in the account's inbox.

Titles and bodies are msgids, rendered here in every language the portal speaks, so that a
notice reads the same whenever it is sent. No notice may carry a bid's content before its
opening, a phone number, or another organisation's scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from feedback.models import PersonNotice
from orgs.registry.models import Membership
from portal.i18n import gettext_for

LANGUAGES = ("zh-CN", "en")


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
    """One notice per person; `ref` (unique per person) makes a repeated call harmless.
    Returns how many were new."""
    texts = render(title, body, link, params)
    now = datetime.now(UTC)
    made = 0
    async with in_transaction() if conn is None else _same(conn) as c:
        for person_id in dict.fromkeys(person_ids):
            if await PersonNotice.filter(person_id=person_id, ref=ref).using_db(c).exists():
                continue
            await PersonNotice.create(person_id=person_id, topic=topic, ref=ref[:80], code=code,
                                      texts=texts, url=url, urgent=urgent, created_at=now,
                                      using_db=c)
            made += 1
    return made


async def to_org(org_id: int, **kwargs) -> int:
    """A notice to each active admin of the organisation."""
    conn = kwargs.get("conn")
    query = Membership.filter(organisation_id=org_id, status="active", role="admin")
    if conn is not None:
        query = query.using_db(conn)
    persons = await query.values_list("account__person_id", flat=True)
    return await to_people(persons, **kwargs)


class _same:
    """The caller's transaction, as a context manager."""

    def __init__(self, conn):
        self.conn = conn

    async def __aenter__(self):
        return self.conn

    async def __aexit__(self, *exc):
        return False
