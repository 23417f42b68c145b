"""Replay citizen reports through submit() and print pairwise merge precision, recall and F1.

    python bench/merge_quality.py [reports.jsonl] [--database-url URL] [--verbose]

Follows ../shared/data/README.md "Replay": reports in `ts` order with `ts` as the clock; a case is
closed (as staff would) once the clock is more than 6 days past its first report.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal import db  # noqa: E402
from portal.cases.models import OPEN_STATUSES, Case, Status  # noqa: E402
from portal.intake.service import submit  # noqa: E402
from portal.intake.submission import Submission  # noqa: E402
from portal.intake.throttle import Throttle, storage_for  # noqa: E402
from portal.settings import Settings  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "reports-dev.jsonl"
CLOSE_AFTER = timedelta(days=6)


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return sorted(rows, key=lambda r: datetime.fromisoformat(r["ts"]))


async def replay(rows: list[dict], database_url: str, settings: Settings) -> dict[str, str]:
    """Returns report id -> final case code."""
    await db.migrate(database_url)
    await db.init_db(database_url)
    # Throttling is not what is measured here.
    throttle = Throttle(storage_for(""), "1000000/day")
    code_of: dict[str, int] = {}
    try:
        for row in rows:
            now = datetime.fromisoformat(row["ts"])
            for case in await Case.filter(status__in=OPEN_STATUSES,
                                          first_reported_at__lt=now - CLOSE_AFTER):
                case.status = Status.CLOSED
                case.closed_at = now
                await case.save()
            receipt = await submit(Submission(
                reporter=row["reporter"], channel=row["channel"], text=row["text"],
                category=row["category"], lat=row["lat"], lng=row["lng"], crs=row["crs"],
                address=row["address"], received_at=now,
            ), throttle=throttle, settings=settings)
            code_of[row["id"]] = receipt.report_id
        # Staff merges move reports between cases: read where each report ended up.
        from portal.cases.models import Report

        final = {r.id: r.case_id for r in await Report.all()}
        return {rid: str(final[rep]) for rid, rep in code_of.items()}
    finally:
        await db.close_db()


def pairs(groups: dict[str, str]) -> set[tuple[str, str]]:
    by: dict[str, list[str]] = defaultdict(list)
    for rid, g in groups.items():
        by[g].append(rid)
    return {tuple(sorted(p)) for members in by.values()
            for p in itertools.combinations(members, 2)}


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
    gold = pairs({r["id"]: r["group"] for r in rows})
    got = pairs(assigned)
    tp = len(gold & got)
    precision = tp / len(got) if got else 1.0
    recall = tp / len(gold) if gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if args.verbose:
        byid = {r["id"]: r for r in rows}
        for a, b in sorted(got - gold):
            print("WRONG MERGE", a, b, byid[a]["group"], byid[b]["group"],
                  byid[a]["text"][:40], "|", byid[b]["text"][:40])
        for a, b in sorted(gold - got):
            print("MISSED", a, b, byid[a]["group"], byid[a]["text"][:40], "|",
                  byid[b]["text"][:40])
    print(f"reports={len(rows)} gold_pairs={len(gold)} merged_pairs={len(got)} true_pairs={tp}")
    print(f"precision={precision:.3f} recall={recall:.3f} f1={f1:.3f}")


if __name__ == "__main__":
    main()
