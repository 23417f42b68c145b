"""Staff accounts for the console and staff API tests: one of each role, one password for all."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher

from portal.cases.models import Department
from portal.staff.models import Role, StaffUser

PASSWORD = "correct horse battery"


@cache
def password_hash() -> str:
    # Argon2 is slow on purpose; one hash serves every account of every test.
    return PasswordHasher().hash(PASSWORD)


async def create_staff() -> None:
    """op (operator), boss (admin), roads (department shizheng), clean (department shirong)."""
    for username, role, dept in (("op", Role.OPERATOR, None), ("boss", Role.ADMIN, None),
                                 ("roads", Role.DEPARTMENT, "shizheng"),
                                 ("clean", Role.DEPARTMENT, "shirong")):
        await StaffUser.create(
            username=username, password_hash=password_hash(), role=role,
            department=await Department.get(code=dept) if dept else None)
