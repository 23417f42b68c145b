"""What orgs adds to the app and the scheduler: its routers and its sweeps."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from orgs.tasks.jobs import release_due
from orgs.tenders.awards import mark_overdue
from orgs.tenders.opening import open_due
from orgs.volunteers.jobs import discoveries


def staff_routers() -> list[APIRouter]:
    """Under /staff: included before the case console, whose routes take any code."""
    from orgs.registry.staff_pages import router as registry
    from orgs.tasks.staff_pages import router as tasks
    from orgs.tenders.evaluation_pages import router as evaluation
    from orgs.tenders.staff_pages import router as tenders

    return [registry, evaluation, tenders, tasks]


def public_routers() -> list[APIRouter]:
    from orgs.accounts.inbox import router as inbox
    from orgs.accounts.pages import router as accounts
    from orgs.registry.pages import router as registry
    from orgs.tasks.pages import router as tasks
    from orgs.tenders.award_pages import router as award_pages
    from orgs.tenders.ocds import router as ocds
    from orgs.tenders.pages import router as tenders
    from orgs.volunteers.pages import router as volunteers

    return [accounts, inbox, registry, award_pages, tenders, ocds, tasks, volunteers]


# Sweeps the scheduler runs: (name, every as a timedelta, async run(settings) -> count).
SWEEPS: tuple = (
    ("tenders.open", timedelta(minutes=1), open_due),
    ("tenders.milestones_overdue", timedelta(hours=1), mark_overdue),
    ("tasks.release_due", timedelta(minutes=1), release_due),
    ("volunteers.discoveries", timedelta(minutes=5), discoveries),
)
