"""What orgs adds to the app and the scheduler: its routers and its sweeps."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from orgs.assessment.jobs import compute_due
from orgs.tasks.jobs import release_due
from orgs.tenders.awards import mark_overdue
from orgs.tenders.opening import open_due
from orgs.volunteers.jobs import discoveries


def staff_routers() -> list[APIRouter]:
    """Under /staff: included before the case console, whose routes take any code."""
    from orgs.assessment.staff_pages import router as assessment
    from orgs.casework.staff_pages import router as casework
    from orgs.registry.documents import staff_router as documents
    from orgs.registry.staff_pages import router as registry
    from orgs.tasks.staff_pages import router as tasks
    from orgs.tenders.evaluation_pages import router as evaluation
    from orgs.tenders.staff_pages import router as tenders

    return [casework, registry, documents, evaluation, tenders, tasks, assessment]


def public_routers() -> list[APIRouter]:
    from orgs.accounts.inbox import router as inbox
    from orgs.accounts.pages import router as accounts
    from orgs.assessment.pages import router as assessment
    from orgs.casework.pages import router as casework
    from orgs.registry.documents import router as documents
    from orgs.registry.pages import router as registry
    from orgs.tasks.pages import router as tasks
    from orgs.tenders.award_pages import router as award_pages
    from orgs.tenders.ocds import router as ocds
    from orgs.tenders.pages import router as tenders
    from orgs.volunteers.pages import router as volunteers

    return [accounts, inbox, registry, documents, award_pages, tenders, ocds, tasks, volunteers,
            casework, assessment]


# Sweeps the scheduler runs: (name, every as a timedelta, async run(settings) -> count).
SWEEPS: tuple = (
    ("tenders.open", timedelta(minutes=1), open_due),
    ("tenders.milestones_overdue", timedelta(hours=1), mark_overdue),
    ("tasks.release_due", timedelta(minutes=1), release_due),
    ("volunteers.discoveries", timedelta(minutes=5), discoveries),
    ("assessment.compute_due", timedelta(hours=1), compute_due),
)
