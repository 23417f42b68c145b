"""Does a new report describe the problem of an existing case? A score in [0, 1], or a veto.

Place and category decide; text only confirms or vetoes (DESIGN.md, "What is known about merging").

- Place: the distance between the two points when both have one (a point learned from an address
  counts as approximate), else the address keys they share: the same road and house number is as
  good as a point, two crossing roads or a landmark on the road a little less. Two different
  house numbers on one road veto.
- Problem: the categories must be related (categories.related), and the problems the texts name
  (text.topics) must not differ; a text that names none stands for its category's problems.
  Across two categories, one text must name the other's problem and not its own (the reporter
  picked the neighbouring category); when that is unclear the score stays in the flag band.
  "other" is related to every category, so for it the named problem is what decides.
- Character similarity does not count here: formulaic complaints about different places look
  alike, paraphrases of one problem do not. It only tells a reporter's resend (service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from portal.cases.categories import BY_KEY, related
from portal.intake import address, geo, text

FINGERPRINT_CHARS = 1000
# Points closer than this share of the radius are as good as the same spot.
SAME_SPOT_SHARE = 0.4
# Place evidence from address keys alone.
PLACE_SAME_NUMBER = 0.95
PLACE_SAME_CROSSING = 0.85
# A point learned from an address may sit this much further off than a measured one.
APPROX_SLACK_M = 60.0
# Factor when the categories differ but are related (a reporter picked the neighbouring one).
RELATED_CATEGORY = 0.9
# Factor when neither text names the problem and the categories differ.
UNNAMED_PROBLEM = 0.65


@dataclass
class Features:
    category: str
    lat: float | None
    lng: float | None
    at: datetime
    body: str
    keys: set[str] = field(default_factory=set)
    # The point was learned from the address, not measured.
    approx: bool = False
    _topics: frozenset[str] | None = field(default=None, repr=False)
    _bigrams: set[str] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, *, category: str, lat: float | None, lng: float | None, at: datetime,
           body: str, address_text: str | None = None,
           keys: set[str] | None = None) -> Features:
        return cls(
            category=category, lat=lat, lng=lng, at=at, body=body,
            keys=keys if keys is not None else address.keys(address_text, body),
        )

    # Text features are computed on first use: many candidates are decided by place alone.
    @property
    def topics(self) -> frozenset[str]:
        if self._topics is None:
            self._topics = text.topics(self.body)
        return self._topics

    @property
    def bigrams(self) -> set[str]:
        """Character bigrams without boilerplate (a reporter's resend looks like the first)."""
        if self._bigrams is None:
            self._bigrams = text.bigrams(self.body)
        return self._bigrams

    @property
    def problems(self) -> frozenset[str]:
        return self.topics or text.CATEGORY_TOPICS.get(self.category, frozenset())


# A fingerprint starts with the problems its text names, so that a candidate case's problems
# are read back, not searched for again: "〔garbage street_vendor〕早点摊占道经营，垃圾扔得到处都是".
_NAMED = re.compile(r"〔([a-z_ ]*)〕")


def fingerprint(body: str) -> str:
    named = " ".join(sorted(text.topics(body)))
    return f"〔{named}〕{text.strip_boilerplate(text.normalise(body))}"[:FINGERPRINT_CHARS]


def fingerprint_topics(fp: str) -> frozenset[str]:
    """The problems named in a case fingerprint (its reports' fingerprints joined)."""
    tags = _NAMED.findall(fp)
    if not tags:  # written before fingerprints carried them
        return text.topics(fp, clean=True)
    return frozenset(t for tag in tags for t in tag.split())


def join_keys(keys: set[str]) -> str:
    """Keys as stored on a case: "|"-joined, bounded by the column; whole keys only."""
    out, size = [], 0
    for k in sorted(keys, key=lambda k: ("&" in k, k)):
        if size + len(k) + 1 > 500:
            break
        out.append(k)
        size += len(k) + 1
    return "|".join(sorted(out))


def case_fields_for_report(report) -> dict:
    """Columns of a new case built from its first report (used by intake and unmerge)."""
    keys = address.keys(report.address, report.text)
    return {
        "summary": report.text[:500],
        "lat": report.lat,
        "lng": report.lng,
        "cell": geo.cell(report.lat, report.lng) if report.lat is not None else None,
        "address": report.address,
        "address_keys": join_keys(keys),
        "fingerprint": fingerprint(report.text),
    }


def case_features(case) -> Features:
    return Features(
        category=case.category, lat=case.lat, lng=case.lng, at=case.first_reported_at,
        body=case.fingerprint, keys={k for k in case.address_keys.split("|") if k},
        _topics=fingerprint_topics(case.fingerprint),
    )


def radius_for(category: str, radius_m: float) -> float:
    return radius_m * BY_KEY.get(category, BY_KEY["other"]).radius_factor


def place_score(new: Features, old: Features, radius: float) -> float:
    """0 when the two are not at one place (or we cannot tell); towards 1 the surer."""
    if address.numbers_conflict(new.keys, old.keys):
        return 0.0
    shared = new.keys & old.keys
    keyed = 0.0
    if any("#" in k for k in shared):
        keyed = PLACE_SAME_NUMBER
    elif shared:
        keyed = PLACE_SAME_CROSSING
    if new.lat is None or old.lat is None:
        return keyed
    d = geo.distance_m(new.lat, new.lng, old.lat, old.lng)
    approx = new.approx or old.approx
    reach = radius + (APPROX_SLACK_M if approx else 0.0)
    if d > reach:
        # A learned point may be off; the same address said in words still counts.
        return keyed if approx else 0.0
    near = reach * SAME_SPOT_SHARE
    pointed = 1.0 if d <= near else 1.0 - 0.4 * (d - near) / (reach - near)
    if approx:
        pointed = min(pointed, PLACE_SAME_CROSSING)
    return max(pointed, keyed)


def problem_score(new: Features, old: Features) -> float:
    """1 when the texts name one problem; 0 when they name different ones; in between when
    the categories differ and the texts do not say which one is right."""
    if new.topics and old.topics and not (new.topics & old.topics):
        return 0.0
    if new.category == old.category:
        if new.problems & old.problems:
            return 1.0
        return UNNAMED_PROBLEM if new.category != "other" else 0.0
    own_new = text.CATEGORY_TOPICS.get(new.category, frozenset())
    own_old = text.CATEGORY_TOPICS.get(old.category, frozenset())
    # A reporter picked the neighbouring category: the text names the other one's problem and
    # not the one of the category it was filed under.
    if (new.topics & own_old and not new.topics & own_new) or \
            (old.topics & own_new and not old.topics & own_old):
        return 1.0
    # "other" is related to everything: only a named problem joins it to a category.
    if new.category == "other" or old.category == "other":
        return 0.0
    # Both problems named, or neither: maybe one problem, maybe two at one spot.
    return UNNAMED_PROBLEM


def score(new: Features, old: Features, *, radius_m: float, window_days: float) -> float:
    """0 when the two cannot be one problem; towards 1 the surer we are."""
    if not related(new.category, old.category):
        return 0.0
    age_days = abs((new.at - old.at).total_seconds()) / 86400
    if age_days > window_days:
        return 0.0
    place = place_score(new, old, radius_for(old.category, radius_m))
    if place == 0.0:
        return 0.0
    problem = problem_score(new, old)
    if problem == 0.0:
        return 0.0
    cat = 1.0 if new.category == old.category else RELATED_CATEGORY
    return round(place * problem * cat, 4)


def compatible(a: Features, b: Features, *, radius_m: float) -> bool:
    """Nothing says two cases are different problems: related categories, overlapping named
    problems, no two house numbers on one road, points (if both have one) within reach.
    Used before joining two cases that one report matches equally well."""
    if not related(a.category, b.category) or problem_score(a, b) == 0.0:
        return False
    if address.numbers_conflict(a.keys, b.keys):
        return False
    if a.lat is not None and b.lat is not None:
        reach = max(radius_for(a.category, radius_m), radius_for(b.category, radius_m))
        if a.approx or b.approx:
            reach += APPROX_SLACK_M
        return geo.distance_m(a.lat, a.lng, b.lat, b.lng) <= reach
    return True
