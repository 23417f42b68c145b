"""The rating form (feedback/_rating_form.html) as the tracking page (portal.cases.pages) and a
rating link's page (feedback/routes.py) both show it. Here, not in feedback: portal's domain
does not import feedback, and feedback may import portal."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.cases.models import Case, Identity, Report

# The form's score for "not fixed yet".
NOT_FIXED = "0"


def score_value(rating) -> str:
    """The score a rating (feedback.models.Rating, or None) shows as in the form."""
    if rating is None:
        return ""
    return NOT_FIXED if rating.fixed is False else str(rating.score)


@dataclass
class RatingForm:
    action: str
    score: str = ""
    comment: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    done: bool = False
    before: bool = False
    hidden: bool = False

    @classmethod
    def filled(cls, action: str, previous, **more) -> RatingForm:
        """The form showing the person's rating so far (`previous`, or None)."""
        return cls(action=action, score=score_value(previous),
                   comment=(previous.comment or "") if previous else "",
                   before=previous is not None, **more)


async def reporter_id(identity: str | None, case: Case) -> int | None:
    """The person `identity` (a browser's, portal.cases.pages.web_reporter) reported `case`
    as; None when it did not report it."""
    if identity is None:
        return None
    person_id = await Identity.get_or_none(key=identity).values_list("person_id", flat=True)
    if person_id is None or not await Report.exists(case_id=case.id, person_id=person_id):
        return None
    return person_id
