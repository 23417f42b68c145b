"""The problem categories, their names and which ones reporters confuse."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CategoryInfo:
    key: str
    name_zh: str
    name_en: str
    hint_zh: str
    hint_en: str
    # Point assets (a lamp, a manhole) are found within a few metres; area problems spread.
    radius_factor: float = 1.0


CATEGORIES: tuple[CategoryInfo, ...] = (
    CategoryInfo("garbage", "垃圾堆放 / 环境卫生", "garbage",
                 "垃圾堆积、垃圾房满溢、乱扔杂物", "Piled-up rubbish, overflowing bins, dumped items"),
    CategoryInfo("illegal_parking", "违章停车", "illegal parking",
                 "占用人行道、消防通道、公交站的车辆", "Cars on pavements, fire lanes or bus stops"),
    CategoryInfo("road_damage", "道路破损", "road damage",
                 "路面坑洞、人行道砖松动", "Potholes, loose paving stones", 0.8),
    CategoryInfo("street_light", "路灯故障", "street light out",
                 "路灯不亮、闪烁、灯杆损坏", "Lamps that are out, flicker or are damaged", 0.8),
    CategoryInfo("noise", "噪声扰民", "noise",
                 "施工、商铺、夜间聚集等噪声", "Noise from works, shops or night gatherings", 1.5),
    CategoryInfo("illegal_construction", "违法搭建", "illegal construction",
                 "违规扩建、私搭乱建", "Unauthorised extensions or structures"),
    CategoryInfo("water_leak", "漏水 / 积水", "water leak or flooding",
                 "水管漏水、路面积水", "Leaking pipes, standing water", 1.2),
    CategoryInfo("greenery", "绿化养护", "greenery",
                 "树木倒伏、杂草丛生、绿地损毁", "Fallen trees, overgrown or damaged green areas"),
    CategoryInfo("street_vendor", "占道经营 / 流动摊贩", "street vendor",
                 "占用道路摆摊经营", "Stalls blocking the street"),
    CategoryInfo("manhole", "井盖缺失或破损", "manhole cover",
                 "井盖缺失、破损、松动", "Missing, broken or loose manhole covers", 0.8),
    CategoryInfo("other", "其他", "other",
                 "以上都不是的问题", "Anything not listed above"),
)

BY_KEY = {c.key: c for c in CATEGORIES}

# Pairs reporters confuse for one problem (data/README.md): a report in one of them may
# belong to a case in the other. "other" is related to everything.
RELATED_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"garbage", "street_vendor"}),
    frozenset({"noise", "illegal_construction"}),
    frozenset({"manhole", "road_damage", "water_leak"}),
)


def related(a: str, b: str) -> bool:
    """True when a report filed under `a` may describe a case filed under `b`."""
    if a == b or a == "other" or b == "other":
        return True
    return any(a in g and b in g for g in RELATED_GROUPS)


def related_to(key: str) -> list[str]:
    return [c.key for c in CATEGORIES if related(key, c.key)]
