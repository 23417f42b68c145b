"""Reference data every installation needs (categories), and a demo data set."""

from __future__ import annotations

import secrets

from portal.cases.categories import CATEGORIES
from portal.cases.models import Category, Department
from portal.staff.models import Role, StaffUser
from portal.staff.service import create_user

DEPARTMENTS = (
    ("chengguan", "城管执法", "urban management"),
    ("shirong", "市容环卫", "city appearance and sanitation"),
    ("fangguan", "房管", "housing administration"),
    ("jiaojing", "交警", "traffic police"),
    ("shizheng", "市政道路", "roads and public works"),
    ("lvhua", "绿化", "parks and greenery"),
    ("shuiwu", "水务", "water authority"),
)


async def ensure_categories() -> None:
    """Missing or changed categories written; nothing is written when they are all in place
    (every worker process checks at start, all at the same moment)."""
    have = {c.key: c for c in await Category.all()}
    for n, c in enumerate(CATEGORIES):
        want = {"name_zh": c.name_zh, "name_en": c.name_en, "hint_zh": c.hint_zh,
                "hint_en": c.hint_en, "sort": n}
        if _differs(have.get(c.key), want):
            await Category.update_or_create(key=c.key, defaults=want)


async def ensure_departments() -> None:
    """Like ensure_categories: written only when missing or changed."""
    have = {d.code: d for d in await Department.all()}
    for code, zh, en in DEPARTMENTS:
        want = {"name_zh": zh, "name_en": en}
        if _differs(have.get(code), want):
            await Department.update_or_create(code=code, defaults=want)


async def ensure_reference_data() -> None:
    await ensure_categories()
    await ensure_departments()


def _differs(row, want: dict) -> bool:
    return row is None or any(getattr(row, k) != v for k, v in want.items())


async def seed_demo() -> str | None:
    """Categories, departments, demo cases; returns the admin password the first time only."""
    from portal.demo import demo_cases

    await ensure_reference_data()
    password = None
    if not await StaffUser.filter(role=Role.ADMIN).exists():
        password = secrets.token_urlsafe(12)
        await create_user("admin", password, Role.ADMIN)
    await demo_cases()
    return password
