"""What orgs adds to the app and the scheduler: its routers and its sweeps."""

from __future__ import annotations

from fastapi import APIRouter


def staff_routers() -> list[APIRouter]:
    """Under /staff: included before the case console, whose routes take any code."""
    from orgs.registry.staff_pages import router as registry

    return [registry]


def public_routers() -> list[APIRouter]:
    from orgs.accounts.pages import router as accounts
    from orgs.registry.pages import router as registry

    return [accounts, registry]


# Sweeps the scheduler runs: (name, every as a timedelta, async run(settings) -> count).
SWEEPS: tuple = ()
