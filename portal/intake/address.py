"""Address keys: road + house number, or two crossing roads, as a reporter or a hotline writes them.

"上海市静安区江宁路1083号" gives {"江宁路#1083"}; "共和新路大宁路交叉口" gives {"共和新路&大宁路"}.
"""

from __future__ import annotations

import re

from portal.intake.text import normalise

_PREFIX = re.compile(r"^(上海市|上海)?([\u4e00-\u9fff]{1,4}区)?")
_ROAD = re.compile(r"([\u4e00-\u9fff]{2,8}?(?:路|街|大道|公路))")
_ROAD_NUMBER = re.compile(r"([\u4e00-\u9fff]{2,8}?(?:路|街|大道|公路))(?:近[\u4e00-\u9fff]{2,8}?(?:路|街))?[（(]?(\d{1,5})(?:弄|号)")
_CROSSING = re.compile(
    r"([\u4e00-\u9fff]{2,8}?(?:路|街|大道|公路))(?:与|和|、|/|近)?([\u4e00-\u9fff]{2,8}?(?:路|街|大道|公路))"
    r"(?:交叉口|路口|口|交界)?"
)
_DISTRICT = re.compile(r"[\u4e00-\u9fff]{1,4}区")


def _clean_road(road: str) -> str:
    road = _DISTRICT.sub("", road)
    for lead in ("上海市", "上海", "在", "的", "从", "到", "靠近", "近", "位于"):
        if road.startswith(lead) and len(road) - len(lead) >= 2:
            road = road[len(lead):]
    return road


def keys(*texts: str | None) -> set[str]:
    found: set[str] = set()
    for raw in texts:
        if not raw:
            continue
        t = _PREFIX.sub("", normalise(raw))
        for road, number in _ROAD_NUMBER.findall(t):
            found.add(f"{_clean_road(road)}#{int(number)}")
        for a, b in _CROSSING.findall(t):
            a, b = _clean_road(a), _clean_road(b)
            if a != b:
                found.add("&".join(sorted((a, b))))
    return found
