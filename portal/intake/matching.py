"""Does a new report describe the problem of an existing case? A score in [0, 1], or a veto.

Place and category decide; text only confirms or vetoes (DESIGN.md, "What is known about merging").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from portal.cases.categories import BY_KEY, related
from portal.intake import address, geo, text

FINGERPRINT_CHARS = 1000


@dataclass
class Features:
    category: str
    lat: float | None
    lng: float | None
    at: datetime
    body: str
    bigrams: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, *, category: str, lat: float | None, lng: float | None, at: datetime,
           body: str, address_text: str | None = None,
           keys: set[str] | None = None) -> Features:
        return cls(
            category=category, lat=lat, lng=lng, at=at, body=body,
            bigrams=text.bigrams(body), numbers=text.house_numbers(body),
            objects=text.objects(body),
            keys=keys if keys is not None else address.keys(address_text, body),
        )


def fingerprint(body: str) -> str:
    return text.strip_boilerplate(text.normalise(body))[:FINGERPRINT_CHARS]


def case_fields_for_report(report) -> dict:
    """Columns of a new case built from its first report (used by intake and unmerge)."""
    keys = address.keys(report.address, report.text)
    return {
        "summary": report.text[:500],
        "lat": report.lat,
        "lng": report.lng,
        "cell": geo.cell(report.lat, report.lng) if report.lat is not None else None,
        "address": report.address,
        "address_keys": "|".join(sorted(keys))[:500],
        "fingerprint": fingerprint(report.text),
    }


def case_features(case) -> Features:
    return Features.of(
        category=case.category, lat=case.lat, lng=case.lng, at=case.first_reported_at,
        body=case.fingerprint,
        keys={k for k in case.address_keys.split("|") if k},
    )


def score(new: Features, old: Features, *, radius_m: float, window_days: float) -> float:
    """0 when the two cannot be one problem; towards 1 the surer we are."""
    if not related(new.category, old.category):
        return 0.0
    age_days = abs((new.at - old.at).total_seconds()) / 86400
    if age_days > window_days:
        return 0.0
    radius = radius_m * BY_KEY.get(old.category, BY_KEY["other"]).radius_factor
    place = 0.0
    if new.lat is not None and old.lat is not None:
        d = geo.distance_m(new.lat, new.lng, old.lat, old.lng)
        if d > radius:
            return 0.0
        place = 1.0 - 0.5 * (d / radius)
    if new.keys and old.keys:
        if new.keys & old.keys:
            place = max(place, 0.9)
        elif place == 0.0:
            return 0.0
    if place == 0.0:
        return 0.0
    if new.numbers and old.numbers and not (new.numbers & old.numbers):
        return 0.0
    if new.objects and old.objects and not (new.objects & old.objects):
        place *= 0.6
    sim = text.jaccard(new.bigrams, old.bigrams)
    cat = 1.0 if new.category == old.category else 0.85
    return round(min(1.0, place * cat * (0.75 + sim)), 4)
