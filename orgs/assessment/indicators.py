"""The arithmetic of an assessment, pure and in Decimal (orgs/DESIGN.md §8, D7).

Each indicator's part is its weight times its value (0–1), quantised to 0.01 half-up from the
exact product; the score is built from those quantised parts, so that the breakdown an
organisation sees adds up to its score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# Values (0–1) are shown with four places.
PLACES = Decimal("0.0001")
MISSING_MODES = ("rescale", "full", "zero")


def q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Measured:
    """One indicator measured for one organisation: value None when it has no data (n/a)."""

    key: str
    weight: Decimal
    value: Decimal | None
    data: dict = field(default_factory=dict)


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


def complaints_value(count: int, per_complaint: Decimal) -> Decimal:
    return max(Decimal(0), Decimal(1) - per_complaint * count)


@dataclass
class Scored:
    score: Decimal
    rows: list[dict]
    # Set when rescaled: the sum of the parts before scaling to 100.
    rescaled_from: Decimal | None = None


def score(measured: list[Measured], missing: str) -> Scored | None:
    """The score and its rows, or None when no indicator has data (not assessable)."""
    if missing not in MISSING_MODES:
        raise ValueError(missing)
    if all(m.value is None for m in measured):
        return None
    rows, total, available = [], Decimal(0), Decimal(0)
    for m in measured:
        if m.value is not None:
            part = q(m.weight * m.value)
            available += m.weight
        else:
            part = m.weight if missing == "full" else Decimal(0)
            if missing == "full":
                available += m.weight
        total += part
        rows.append({"key": m.key, "weight": str(m.weight),
                     "value": None if m.value is None else str(m.value.quantize(PLACES, ROUND_HALF_UP)),
                     "part": str(q(part)), "na": m.value is None, "data": m.data})
    if missing == "rescale" and available != HUNDRED and available:
        return Scored(q(total * HUNDRED / available), rows, q(total))
    return Scored(q(total), rows)


def grade(value: Decimal, bands: list[dict]) -> str:
    """The first band (highest minimum first) whose minimum the score reaches."""
    for band in sorted(bands, key=lambda b: Decimal(b["min"]), reverse=True):
        if value >= Decimal(band["min"]):
            return band["grade"]
    return bands[-1]["grade"]


def check_bands(bands: list[dict]) -> bool:
    """Grades distinct and non-empty, minimums between 0 and 100 and distinct, one at 0."""
    try:
        mins = [Decimal(b["min"]) for b in bands]
    except (KeyError, TypeError, ArithmeticError):
        return False
    grades = [b.get("grade") for b in bands]
    return (bool(bands) and all(isinstance(g, str) and 0 < len(g) <= 4 for g in grades)
            and len(set(grades)) == len(grades) and len(set(mins)) == len(mins)
            and all(m.is_finite() and 0 <= m <= HUNDRED for m in mins) and min(mins) == 0)
