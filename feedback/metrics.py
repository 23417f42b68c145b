"""Satisfaction roll-ups (综合管理满意度): the ratings of a period per case, category,
department, and once social organisations work on cases (issue 7) per organisation.

Each roll-up counts the ratings, their mean score, how many were satisfied (4 or 5) and how
many said "not fixed". A rating counts in the period it was last given in (a changed rating
moves to when it changed). One statement per roll-up, grouped in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from feedback.satisfaction import SATISFIED_FROM
from portal.db import run_sql


@dataclass
class Rollup:
    # The case code, category key, department code (None: no department) or organisation
    # name. None for the total.
    key: str | None
    ratings: int
    mean: float | None
    satisfied: int
    not_fixed: int

    @property
    def share_satisfied(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None


# What each grouping groups by (an expression over the rating `r` and its case `c`) and the
# join it needs. A case counts for the organisation given it last (orgs' case_assignment,
# joined by SQL only: feedback does not import orgs). Cases no organisation worked are left
# out of that grouping.
GROUPINGS: dict[str, tuple[str, str]] = {
    "case": ("c.code", ""),
    "category": ("c.category", ""),
    "department": ("d.code", "LEFT JOIN department d ON d.id = c.department_id"),
    "organisation": ("o.name", "JOIN case_assignment ca ON ca.id = (SELECT MAX(ca2.id) FROM "
                               "case_assignment ca2 WHERE ca2.case_id = c.id) "
                               "JOIN organisation o ON o.id = ca.organisation_id"),
}
# Groupings with a row per case can be long: the worst first, this many at most.
MAX_ROWS = 500


async def rollup(group: str | None, *, since: datetime | None = None,
                 until: datetime | None = None, department_id: int | None = None,
                 limit: int = MAX_ROWS) -> list[Rollup]:
    """Ratings given in [since, until) (UTC), of the cases of `department_id` when given,
    grouped by `group` (a key of GROUPINGS), or one total row when `group` is None.
    Cases: lowest mean first; other groupings: most ratings first."""
    key, join = GROUPINGS[group] if group else ("NULL", "")
    where, params = ["1 = 1"], []
    if since is not None:
        where.append("r.updated_at >= ?")
        params.append(since)
    if until is not None:
        where.append("r.updated_at < ?")
        params.append(until)
    if department_id is not None:
        where.append("c.department_id = ?")
        params.append(department_id)
    sql = (f"SELECT {key} AS key, COUNT(*) AS ratings, AVG(r.score) AS mean, "
           f"SUM(CASE WHEN r.score >= {SATISFIED_FROM} THEN 1 ELSE 0 END) AS satisfied, "
           "SUM(CASE WHEN r.fixed IS NOT NULL AND NOT r.fixed THEN 1 ELSE 0 END) AS not_fixed "
           f"FROM rating r JOIN case_ c ON c.id = r.case_id {join} "
           f"WHERE {' AND '.join(where)}")
    if group:
        sql += f" GROUP BY {key}"
    if group == "case":
        sql += " ORDER BY mean, ratings DESC, key LIMIT ?"
        params.append(limit)
    rows = [_rollup(row) for row in await run_sql(connections.get("default"), sql, params)]
    if group is None:
        return rows if rows and rows[0].ratings else [Rollup(None, 0, None, 0, 0)]
    if group != "case":
        rows.sort(key=lambda r: (-r.ratings, r.key is None, r.key or ""))
    return rows[:limit]


def _rollup(row) -> Rollup:
    ratings = int(row["ratings"] or 0)
    return Rollup(key=row["key"], ratings=ratings,
                  mean=float(row["mean"]) if row["mean"] is not None else None,
                  satisfied=int(row["satisfied"] or 0), not_fixed=int(row["not_fixed"] or 0))


async def case_rollup(case_id: int) -> Rollup:
    """Every rating of one case."""
    rows = await run_sql(
        connections.get("default"),
        "SELECT NULL AS key, COUNT(*) AS ratings, AVG(score) AS mean, "
        f"SUM(CASE WHEN score >= {SATISFIED_FROM} THEN 1 ELSE 0 END) AS satisfied, "
        "SUM(CASE WHEN fixed IS NOT NULL AND NOT fixed THEN 1 ELSE 0 END) AS not_fixed "
        "FROM rating WHERE case_id = ?", [case_id])
    return _rollup(rows[0])
