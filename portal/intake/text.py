"""Text features for matching: character bigrams, house numbers, named objects, road names."""

from __future__ import annotations

import re
import unicodedata

_CJK_NUM = str.maketrans("０１２３４５６７８９", "0123456789")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)

# Words that every complaint carries; they say nothing about which problem it is.
BOILERPLATE = (
    "来电人反映", "来电人称", "来电反映", "市民来电反映", "市民反映", "来电人", "市民",
    "反映一下", "有个情况需要处理", "要求尽快核实处理", "要求尽快处理", "希望相关部门",
    "尽快核实处理", "尽快处理", "请有关部门", "管一管", "麻烦", "相关部门", "处理一下",
    "要求", "请", "谢谢", "盼复", "地点", "上海市", "黄浦区", "静安区", "徐汇区",
)

# Named objects: when two texts each name one and they differ, they are different problems.
OBJECTS = (
    "路灯", "井盖", "窨井", "消防栓", "垃圾房", "垃圾桶", "垃圾", "共享单车", "电动车", "货车",
    "私家车", "小广告", "烧烤", "早点摊", "水果摊", "煎饼", "排风机", "空调外机", "广场舞",
    "施工", "装修", "围墙", "树", "绿化带", "草坪", "坑", "积水", "漏水", "水管", "涂鸦",
    "streetlight", "street light", "manhole", "pothole", "garbage", "trash",
)

_ROAD = re.compile(r"([\u4e00-\u9fff]{1,6}?(?:路|街|弄|巷|大道|公路))")
_NUMBER = re.compile(r"(\d{1,5})\s*(?:号|弄|號)")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").translate(_CJK_NUM).lower()
    return text


def strip_boilerplate(text: str) -> str:
    for phrase in BOILERPLATE:
        text = text.replace(phrase, "")
    return text


def bigrams(text: str) -> set[str]:
    core = _NOISE.sub("", strip_boilerplate(normalise(text)))
    return {core[i:i + 2] for i in range(len(core) - 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def house_numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(normalise(text)))


def objects(text: str) -> set[str]:
    t = normalise(text)
    return {o for o in OBJECTS if o in t}


def roads(text: str) -> set[str]:
    return set(_ROAD.findall(normalise(text)))
