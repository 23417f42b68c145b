"""Replay citizen reports through submit() and print pairwise merge precision, recall and F1.

    python bench/merge_quality.py [reports.jsonl] [--database-url URL] [--verbose]

Follows ../shared/data/README.md "Replay": reports in `ts` order with `ts` as the clock; a case is
closed (as staff would) once the clock is more than 6 days past its first report.

`replay_open_db()` and `quality()` are also used by tests/test_merge_quality.py on a database
the test suite has already opened.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal import db  # noqa: E402
from portal.cases.models import OPEN_STATUSES, Case, Report, Status  # noqa: E402
from portal.intake.service import submit  # noqa: E402
from portal.intake.submission import Submission  # noqa: E402
from portal.settings import Settings  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "reports-dev.jsonl"
CLOSE_AFTER = timedelta(days=6)


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return sorted(rows, key=lambda r: datetime.fromisoformat(r["ts"]))


async def replay_open_db(rows: list[dict], settings: Settings) -> dict[str, str]:
    """Feed the rows to submit() on the database Tortoise has open; report id -> final case id."""
    report_of: dict[str, int] = {}
    for row in rows:
        # Stored and compared in UTC (SQLite compares times as text).
        now = datetime.fromisoformat(row["ts"]).astimezone(UTC)
        for case in await Case.filter(status__in=OPEN_STATUSES,
                                      first_reported_at__lt=now - CLOSE_AFTER):
            case.status = Status.CLOSED
            case.closed_at = now
            await case.save()
        # Throttling is not what is measured here.
        receipt = await submit(Submission(
            reporter=row["reporter"], channel=row["channel"], text=row["text"],
            category=row["category"], lat=row["lat"], lng=row["lng"], crs=row["crs"],
            address=row["address"], received_at=now,
        ), throttle=None, settings=settings)
        report_of[row["id"]] = receipt.report_id
    # Merges move reports between cases: read where each report ended up.
    final = {r.id: r.case_id for r in await Report.filter(id__in=list(report_of.values()))}
    return {rid: str(final[rep]) for rid, rep in report_of.items()}


async def replay(rows: list[dict], database_url: str, settings: Settings) -> dict[str, str]:
    """Migrate and open `database_url`, replay, close. Returns report id -> final case id."""
    await db.migrate(database_url)
    await db.init_db(database_url)
    try:
        return await replay_open_db(rows, settings)
    finally:
        await db.close_db()


def pairs(groups: dict[str, str]) -> set[tuple[str, str]]:
    by: dict[str, list[str]] = defaultdict(list)
    for rid, g in groups.items():
        by[g].append(rid)
    return {tuple(sorted(p)) for members in by.values()
            for p in itertools.combinations(members, 2)}


@dataclass
class Quality:
    gold: set[tuple[str, str]]
    got: set[tuple[str, str]]

    @property
    def true_pairs(self) -> int:
        return len(self.gold & self.got)

    @property
    def precision(self) -> float:
        return self.true_pairs / len(self.got) if self.got else 1.0

    @property
    def recall(self) -> float:
        return self.true_pairs / len(self.gold) if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        return f"precision={self.precision:.3f} recall={self.recall:.3f} f1={self.f1:.3f}"


def quality(rows: list[dict], assigned: dict[str, str]) -> Quality:
    return Quality(gold=pairs({r["id"]: r["group"] for r in rows}), got=pairs(assigned))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    rows = load(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite://{tmp}/merge.sqlite3"
        assigned = asyncio.run(replay(rows, url, Settings(database_url=url)))
    q = quality(rows, assigned)
    if args.verbose:
        byid = {r["id"]: r for r in rows}
        for a, b in sorted(q.got - q.gold):
            print("WRONG MERGE", a, b, byid[a]["group"], byid[b]["group"],
                  byid[a]["text"][:40], "|", byid[b]["text"][:40])
        for a, b in sorted(q.gold - q.got):
            print("MISSED", a, b, byid[a]["group"], byid[a]["text"][:40], "|",
                  byid[b]["text"][:40])
    print(f"reports={len(rows)} gold_pairs={len(q.gold)} merged_pairs={len(q.got)} "
          f"true_pairs={q.true_pairs}")
    print(q.line())


if __name__ == "__main__":
    main()
