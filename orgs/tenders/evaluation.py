"""The evaluation math of a tender (DESIGN §6.1–6.2), pure and in Decimal.

Each weighted part is quantised to 0.01 (ROUND_HALF_UP) from its exact value and the total is
the sum of the quantised parts, so the breakdown shown to bidders adds up exactly. Bids equal
on the ranking keys form a tie group, ordered by sha256(f"{seed}:{bid_id}"): the seed's hash is
public from the opening and the seed from the finalisation, so anyone can redo the draw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
LOWEST_PRICE = "lowest_price"


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Entry:
    """A valid bid: its price and, per criterion id, the scores of the evaluators who scored."""

    bid_id: int
    price: Decimal
    scores: dict[int, list[Decimal]] = field(default_factory=dict)


@dataclass
class Result:
    bid_id: int
    price: Decimal
    price_score: Decimal
    price_part: Decimal
    criteria_parts: dict[int, Decimal]
    # None under lowest price.
    total: Decimal | None
    rank: int = 0
    tie_group: int | None = None
    draw_key: str | None = None


def draw_key(seed: str, bid_id: int) -> str:
    return hashlib.sha256(f"{seed}:{bid_id}".encode()).hexdigest()


def mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def score(entries: list[Entry], *, method: str, price_weight: Decimal | None,
          weights: dict[int, Decimal]) -> list[Result]:
    """Each bid's parts and total, unranked. A criterion nobody scored yet counts 0 (preview)."""
    if not entries:
        return []
    lowest = min(e.price for e in entries)
    results = []
    for e in entries:
        exact = lowest / e.price * HUNDRED
        if method == LOWEST_PRICE:
            results.append(Result(e.bid_id, e.price, q(exact), q(exact), {}, None))
            continue
        parts = {c: q(mean(e.scores[c]) * w) if e.scores.get(c) else Decimal("0.00")
                 for c, w in weights.items()}
        price_part = q(exact * (price_weight or Decimal(0)))
        results.append(Result(e.bid_id, e.price, q(exact), price_part, parts,
                              price_part + sum(parts.values(), Decimal("0.00"))))
    return results


def _key(r: Result, method: str) -> tuple:
    return (r.price,) if method == LOWEST_PRICE else (-r.total, r.price)


def rank(results: list[Result], *, method: str, seed: str | None) -> list[Result]:
    """Results in rank order with rank, tie_group and draw_key set. Total descending then price
    ascending (lowest price: price ascending). Without a seed (the preview) tied bids keep the
    order of their ids and get no draw key."""
    ordered = sorted(results, key=lambda r: (_key(r, method), r.bid_id))
    groups: list[list[Result]] = []
    for r in ordered:
        if groups and _key(groups[-1][0], method) == _key(r, method):
            groups[-1].append(r)
        else:
            groups.append([r])
    out: list[Result] = []
    tie = 0
    for group in groups:
        if len(group) > 1:
            tie += 1
            for r in group:
                r.tie_group = tie
                if seed is not None:
                    r.draw_key = draw_key(seed, r.bid_id)
            if seed is not None:
                group.sort(key=lambda r: r.draw_key)
        out.extend(group)
    for position, r in enumerate(out, start=1):
        r.rank = position
    return out


def evaluate(entries: list[Entry], *, method: str, price_weight: Decimal | None,
             weights: dict[int, Decimal], seed: str | None) -> list[Result]:
    return rank(score(entries, method=method, price_weight=price_weight, weights=weights),
                method=method, seed=seed)


def tie_groups(results: list[Result]) -> dict[int, list[int]]:
    """Tie group → its bid ids in drawn order."""
    groups: dict[int, list[int]] = {}
    for r in results:
        if r.tie_group is not None:
            groups.setdefault(r.tie_group, []).append(r.bid_id)
    return groups
