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

from portal.intake.text import normalise, topics

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
        starts = {start: (road, end) for road, start, end in rs}
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
            mark = _landmark(t, end, starts)
            if mark:
                found.add(f"{road}@{mark}")
    return {k for k in found if "#" in k or "&" in k or "@" in k}


# A landmark named after a road (and its number, or the crossing road): "方浜中路幼儿园旁边",
# "共和新路2174号全家便利店门口", "黄浦区中华路1177号中石化加油站" (an address ends with it).
_PAST = re.compile(r"\s*(?:上|[(]?\s*\d{1,5}\s*(?:号|弄|號)\s*[)]?|路口|交叉口|交界处|口)")
_JOIN = re.compile(r"\s*(?:与|和|、|/|／|及|近|靠近|临近)?\s*")
_LANDMARK = re.compile(
    r"([\u4e00-\u9fff0-9]{2,10}?)(?:旁边|附近|门口|边上|对面|楼下|旁|入口|出口|后面|前面|外面|"
    r"里面|周边|周围|北门|南门|东门|西门|正门|大门|侧门|(\s*$))")
_HOUSE_NUMBER_BEFORE = re.compile(r"\d\s*(?:号|弄|號)\s*[)]?\s*$")
_LANDMARK_LEADS = ("附近", "旁边", "门口", "路口", "交叉口", "的")
# Not a landmark: every street has one.
_GENERIC_MARKS = frozenset({"小区", "路边", "路面", "马路", "人行道", "街边", "这里", "那里", "这边",
                            "楼下", "门面", "商铺", "店铺", "公交站", "路中间", "机动车道"})


def _landmark(t: str, pos: int, starts: dict[int, tuple[str, int]]) -> str | None:
    """The landmark right after a road (past its number, or a crossing road), if any."""
    for _ in range(6):
        m = _PAST.match(t, pos)
        if m and m.end() > pos:
            pos = m.end()
            continue
        j = _JOIN.match(t, pos).end()
        if j in starts:
            pos = starts[j][1]
            continue
        break
    m = _LANDMARK.match(t, pos)
    # At the very end only in an address: "黄浦区中华路1177号中石化加油站".
    if not m or (m.group(2) is not None and not _HOUSE_NUMBER_BEFORE.search(t, 0, pos)):
        return None
    mark = m.group(1)
    for lead in _LANDMARK_LEADS:
        if mark.startswith(lead):
            mark = mark[len(lead):]
    if (len(mark) < 2 or mark in _GENERIC_MARKS or mark.endswith(("路", "街", "大道"))
            or any(ch in _NOT_IN_MARK for ch in mark) or topics(mark)):
        # A landmark names a place; a name of the problem itself ("路灯", "垃圾房") is not one.
        return None
    return mark


# A landmark is a name, not a clause: these characters mean the match ran into the sentence.
_NOT_IN_MARK = frozenset("的了在是有被把让给这那些个都很也就还没不说想请您你我他她它们")


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
