"""Address keys: road + house number, or two crossing roads, as a reporter or a hotline writes them.

"上海市静安区江宁路1083号" gives {"江宁路#1083"}; "共和新路大宁路交叉口" gives {"共和新路&大宁路"};
"南京西路近陕西北路（966号）" gives both {"南京西路#966", "南京西路&陕西北路"}.

Road names are found without a gazetteer: a road ends in 路/街/大道/公路 and its name is the run of
characters before that suffix, cut where a character appears that no road name carries (verbs of
the hotline phrasing, locatives such as 旁边/附近, particles). A wrong road from free text rarely
matters: a key needs a house number right after the road, or a second road right beside it.
"""

from __future__ import annotations

import re

from portal.intake.text import normalise

# Where the writer's place words end and a road name may start: city and district names.
_DISTRICTS = (
    "浦东新区", "黄浦区", "静安区", "徐汇区", "长宁区", "普陀区", "虹口区", "杨浦区", "闵行区",
    "宝山区", "嘉定区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区", "卢湾区", "闸北区",
    "南汇区", "上海市", "上海",
)
_DISTRICT = re.compile("|".join(_DISTRICTS))
_SUFFIX = re.compile(r"大道|公路|路|街")
# Characters that do not occur in (Shanghai) road names but do occur right before a road in
# free text: hotline phrasing, particles, locatives, counters, verbs of movement.
_NOT_IN_NAME = frozenset(
    "的了在是有被把让给这那些个段边旁附近里对来电映称说诉报投您你好我想问题处理请麻烦谢区市号"
    "弄上下过走烂看清不很也就还没与及或从到往向于沿着盏几条根每比盖面"
)
# Leading connectors a name may swallow ("江宁路和昌平路": the second name is 昌平, not 和昌平).
_LEADS = ("靠近", "和", "同", "跟", "近")
_NOT_NAMES = ("门口", "路口", "交叉", "附近", "旁边", "步行")
_MAX_NAME = 6
# After a road: "（966号）", "966号", "1083弄", with an optional "近X路" in between.
_NUMBER_AFTER = re.compile(r"\s*[（(]?\s*(\d{1,5})\s*(?:号|弄|號)")
_CROSS_JOIN = re.compile(r"^\s*(?:与|和|、|/|／|及|近|靠近|临近|交|接)?\s*$")


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def roads(text: str) -> list[tuple[str, int, int]]:
    """Roads in text as (name, start, end), in order. `text` must be normalised."""
    found: list[tuple[str, int, int]] = []
    prev_end = 0
    for m in _SUFFIX.finditer(text):
        i = m.start()
        while (i > prev_end and m.start() - i <= _MAX_NAME + 2 and _is_cjk(text[i - 1])
               and text[i - 1] not in _NOT_IN_NAME and text[i - 1] not in "路街"):
            i -= 1
        if m.start() - i == 1 and i > prev_end and text[i - 1] in "上下":
            i -= 1  # 上中路: a name may start with a character that is otherwise a locative
        name = text[i:m.start()]
        for lead in _LEADS:
            if name.startswith(lead) and len(name) - len(lead) >= 2:
                name, i = name[len(lead):], i + len(lead)
                break
        if not 2 <= len(name) <= _MAX_NAME or any(w in name for w in _NOT_NAMES):
            continue
        found.append((name + m.group(), i, m.end()))
        prev_end = m.end()
    return found


def _clean(raw: str) -> str:
    return _DISTRICT.sub("，", normalise(raw))


def keys(*texts: str | None) -> set[str]:
    found: set[str] = set()
    for raw in texts:
        if not raw:
            continue
        t = _clean(raw)
        rs = roads(t)
        skip_number = False
        for n, (road, _start, end) in enumerate(rs):
            # "南京西路近陕西北路（966号）": the number belongs to the first road.
            tail_from, near = end, False
            nxt = rs[n + 1] if n + 1 < len(rs) else None
            if nxt is not None and _CROSS_JOIN.match(t[end:nxt[1]]):
                if road != nxt[0]:
                    found.add("&".join(sorted((road, nxt[0]))))
                if t[end:nxt[1]].strip() in ("近", "靠近", "临近"):
                    tail_from, near = nxt[2], True
            m = None if skip_number else _NUMBER_AFTER.match(t, tail_from)
            if m:
                found.add(f"{road}#{int(m.group(1))}")
            skip_number = near
    return {k for k in found if "#" in k or "&" in k}


def numbered(keys_: set[str]) -> dict[str, set[str]]:
    """road -> its house numbers, from keys like "江宁路#1083"."""
    out: dict[str, set[str]] = {}
    for k in keys_:
        if "#" in k:
            road, number = k.split("#", 1)
            out.setdefault(road, set()).add(number)
    return out


def numbers_conflict(a: set[str], b: set[str]) -> bool:
    """Both name a house number on one road, and no number agrees: two places on that road."""
    na, nb = numbered(a), numbered(b)
    return any(road in nb and not (nums & nb[road]) for road, nums in na.items())


def crossings(keys_: set[str]) -> set[str]:
    return {k for k in keys_ if "&" in k}
