"""The staff console's queue at volume: first and deep pages for the common filters.

    .venv/bin/python bench/console.py [--database-url URL] [--open 100000] [--closed 50000]
        [--repeat 15] [--explain] [--keep] [--reuse]

1. Migrates a fresh database and fills it with bench/intake.py's generated city (its `fill`):
   `--open` open cases and `--closed` closed, rejected and merged ones, with their reports.
   Then gives the cases being worked on a department and flags about 2% of the open cases as
   possible duplicates of an older one (the intake's generator leaves both empty).
2. For each filter (as an operator, and as a department account for its own queue) times the
   queue's query for the first page and for a deep page (keyset cursor 90% of the way down the
   filter's cases) — `casework.queue`, the call the page makes — and the whole page as the
   browser gets it (the FastAPI app in process, session cookie, template rendering). Prints the
   median and the slowest of `--repeat` runs in milliseconds. `--explain` prints the database's
   plan of each first-page query.

Figures only: nothing is asserted. Without --database-url a SQLite file in a temporary
directory is used; a PostgreSQL URL names a dedicated database that is dropped and created
(e.g. postgres://postgres@127.0.0.1:5432/gridlink_console_bench), and dropped again at the end
unless --keep is given. --reuse times a database an earlier --keep run filled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from intake import drop_database, fill, is_postgres, prepare_database  # noqa: E402

from portal import db  # noqa: E402
from portal.cases.models import OPEN_STATUSES, Case, Department, Status  # noqa: E402
from portal.staff import casework, schemas  # noqa: E402
from portal.staff.models import Role, StaffUser  # noqa: E402

PAGE = 50
# name -> (query string of the console, CaseFilter fields, overdue)
FILTERS = {
    "open (default)": ("", {"status": list(OPEN_STATUSES)}, False),
    "status=new": ("?status=new", {"status": [Status.NEW]}, False),
    "category=garbage": ("?category=garbage",
                         {"status": list(OPEN_STATUSES), "category": ["garbage"]}, False),
    "department=shizheng": ("?department=shizheng",
                            {"status": list(OPEN_STATUSES), "department": "shizheng"}, False),
    "possible duplicates": ("?duplicates=1",
                            {"status": list(OPEN_STATUSES), "possible_duplicate": True}, False),
    "overdue": ("?overdue=1", {"status": list(OPEN_STATUSES)}, True),
    "overdue+category=noise": ("?overdue=1&category=noise",
                               {"status": list(OPEN_STATUSES), "category": ["noise"]}, True),
    "every status": ("?status=all", {}, False),
}


def case_filter(fields: dict, before_id: int | None = None) -> schemas.CaseFilter:
    return schemas.CaseFilter(**fields, before_id=before_id, limit=PAGE)


async def enrich(url: str) -> None:
    """Departments for the cases being worked on, and some possible-duplicate flags."""
    from tortoise import connections

    await db.init_db(url)
    try:
        conn = connections.get("default")
        ids = [d.id for d in await Department.all().order_by("id")]
        n = len(ids)
        # The department by case id: deterministic and spread over every department.
        cases = " ".join(f"WHEN {i} THEN {dept}" for i, dept in enumerate(ids))
        await conn.execute_script(
            f"UPDATE case_ SET department_id = CASE id % {n} {cases} END "
            "WHERE status IN ('dispatched', 'in_progress', 'resolved');"
            "UPDATE case_ SET possible_duplicate_of_id = id - 7 WHERE id % 50 = 3 AND id > 7 "
            "AND status IN ('new', 'accepted', 'dispatched', 'in_progress', 'resolved');")
        if is_postgres(url):
            await conn.execute_script("ANALYZE case_;")
        else:
            await conn.execute_script("ANALYZE;")
    finally:
        await db.close_db()


def timed(runs: list[float]) -> str:
    return f"{statistics.median(runs):7.2f} ms (max {max(runs):6.2f})"


async def measure(url: str, repeat: int, explain: bool, workdir: Path) -> None:
    import httpx

    from portal.app import create_app
    from portal.settings import Settings
    from portal.staff import service as staff

    await db.init_db(url)
    try:
        password = "bench-password-1"
        operator = await StaffUser.get_or_none(username="bench.op") or \
            await staff.create_user("bench.op", password, Role.OPERATOR)
        department = await StaffUser.get_or_none(username="bench.roads") or \
            await staff.create_user("bench.roads", password, Role.DEPARTMENT, "shizheng")
        total = await Case.all().count()
        open_ = await Case.filter(status__in=list(OPEN_STATUSES)).count()
        print(f"{total:,} cases, {open_:,} open; pages of {PAGE}; median and max of {repeat} runs")
        settings = Settings(database_url=url, media_dir=workdir / "media")
        app = create_app(settings, manage_db=False)
        tokens = {}
        for user in (operator, department):
            tokens[user.username], _ = await staff.start_session(user)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for who, user in (("operator", operator), ("department", department)):
                print(f"\nas {who}:")
                print(f"  {'filter':<26} {'matching':>9}  {'first page query':>28}  "
                      f"{'deep page query':>28}  {'first page HTML':>28}  "
                      f"{'deep page HTML':>28}")
                for name, (query, fields, overdue) in FILTERS.items():
                    if who == "department" and "department" in fields:
                        continue
                    await one_filter(client, tokens[user.username], user, name, query, fields,
                                     overdue, settings, repeat, explain)
    finally:
        await db.close_db()


async def one_filter(client, token: str, user: StaffUser, name: str, query: str, fields: dict,
                     overdue: bool, settings, repeat: int, explain: bool) -> None:
    days = settings.overdue_days if overdue else None
    now = datetime.now(UTC)
    # How many cases match, and the cursor 90% of the way down (untimed).
    matching = await casework.queue_query(user, case_filter(fields), overdue_days=days, now=now)
    ids = await matching.limit(10**9).values_list("id", flat=True)
    deep = ids[int(len(ids) * 0.9)] if len(ids) > PAGE else None
    runs: dict[str, list[float]] = {"first": [], "deep": [], "first_html": [], "deep_html": []}
    cookies = {"gl_staff": token, "gl_lang": "zh-CN"}
    for _ in range(repeat):
        for key, cursor in (("first", None), ("deep", deep)):
            if key == "deep" and cursor is None:
                continue
            t0 = time.perf_counter()
            await casework.queue(user, case_filter(fields, cursor), overdue_days=days, now=now)
            runs[key].append((time.perf_counter() - t0) * 1000)
            sep = "&" if query else "?"
            path = "/staff" + query + (f"{sep}before={cursor}" if cursor else "")
            t0 = time.perf_counter()
            res = await client.get(path, cookies=cookies)
            runs[key + "_html"].append((time.perf_counter() - t0) * 1000)
            assert res.status_code == 200, (path, res.status_code)
    row = [f"  {name:<26} {len(ids):>9,}", timed(runs["first"]),
           timed(runs["deep"]) if runs["deep"] else f"{'-':>28}", timed(runs["first_html"]),
           timed(runs["deep_html"]) if runs["deep_html"] else f"{'-':>28}"]
    print("  ".join(row), flush=True)
    if explain:
        qs = await casework.queue_query(user, case_filter(fields), overdue_days=days, now=now)
        print("    " + "\n    ".join(await _plan(qs)))


async def _plan(qs) -> list[str]:
    """The database's plan of a query, one line a step (what EXPLAIN prints)."""
    from tortoise import connections

    conn = connections.get("default")
    sql = qs.sql(params_inline=True)
    if conn.capabilities.dialect == "postgres":
        return [r["QUERY PLAN"] for r in await conn.execute_query_dict("EXPLAIN " + sql)]
    return [r["detail"] for r in await conn.execute_query_dict("EXPLAIN QUERY PLAN " + sql)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--closed", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--fill-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="time a database an earlier --keep run filled")
    args = parser.parse_args()
    tmpdir = Path(tempfile.mkdtemp(prefix="gridlink-console-bench-"))
    url = args.database_url or f"sqlite://{tmpdir}/bench.sqlite3"
    engine = "postgres" if is_postgres(url) else "sqlite"
    print(f"Gridlink console bench: {engine}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        if not args.reuse:
            t0 = time.perf_counter()
            asyncio.run(prepare_database(url))
            asyncio.run(fill(url, args.open + args.closed, args.open, args.seed,
                             args.fill_workers))
            asyncio.run(enrich(url))
            print(f"fill: {time.perf_counter() - t0:.1f} s")
        asyncio.run(measure(url, args.repeat, args.explain, tmpdir))
    finally:
        if not args.keep and not args.reuse:
            if engine == "postgres":
                asyncio.run(drop_database(url))
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif engine == "sqlite" and args.database_url is None:
            print(f"kept: --database-url {url}")


if __name__ == "__main__":
    main()
