"""Text features for matching: normalised text without hotline boilerplate, character bigrams,
and the problem a text names (its topics).

Two people describing one problem share few characters, while formulaic complaints about
different places look alike; so the words every complaint carries (greetings, "please fix it
soon", "for a week now") are removed before comparing, and what decides is the problem named:
a lamp, a manhole cover, a pothole, a stall. Topics are a small hand-made lexicon per problem
kind; a text may name several (a stall leaving rubbish behind), or none.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters that have no place in a text a person typed (tab and line breaks,
# CR LF as browsers send them, stay).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_CLAUSE = re.compile(r"[，。！？；：,.!?;:（）()\[\]【】\n]+")

# Words every complaint carries; they say nothing about which problem it is. Whole clauses that
# match one of these are dropped; phrases are removed where they stand.
_BOILERPLATE_CLAUSES = re.compile(
    r"^(?:"
    # greetings and openers
    r"你好|您好|喂|投诉|举报|反映一下|麻烦看一下|我想反映个问题|有个情况需要处理|"
    r"(?:市民|居民|群众|网友|本人|来电人|来电)*(?:来电)?(?:反映|称|投诉|举报|表示)|地点|地址|"
    # how long it has been going on
    r".{0,4}(?:之前|已经|以前)?反映过.{0,6}|.{0,3}从上周开始.{0,4}|持续.{0,6}|已经好几.{0,3}|"
    r"最近几天.{0,4}|昨天就发现了|这种情况.{0,10}|好几天了|"
    # what the caller asks for
    r"(?:请|麻烦|希望|要求|盼|恳请|来电人要求|急).{0,14}|谢谢.{0,2}|盼复|急|"
    r"再发一次|刚才好像没发成功|补充|现在还是这样"
    r")$"
)
_BOILERPLATE_PHRASES = re.compile(
    r"市民来电反映|来电人反映|来电人称|来电反映|市民反映|本人反映|来电人|关于|的问题|"
    r"上海市|上海|浦东新区|黄浦区|静安区|徐汇区|长宁区|普陀区|虹口区|杨浦区|闵行区|宝山区|"
    r"嘉定区|金山区|松江区|青浦区|奉贤区|崇明区"
)

# Problem kinds and the words that name them. Keys are category keys; the kinds under "other"
# have their own names, so that a bench and a road sign at one spot stay two problems.
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "garbage": ("垃圾", "渣土", "建渣", "瓷砖", "碎砖", "杂物", "废弃", "废品", "家具", "沙发", "床垫",
                "烟头", "外卖盒", "塑料袋", "饮料瓶", "满溢", "溢出来", "清运", "脏乱", "臭", "苍蝇",
                "老鼠", "倾倒", "偷倒", "乱扔", "乱丢", "乱倒"),
    "illegal_parking": ("停", "单车", "自行车", "僵尸车", "消防通道", "占用车道"),
    "street_light": ("路灯", "灯杆", "灯柱", "灯泡", "景观灯", "照明", "不亮", "熄灭", "忽明忽暗", "闪烁",
                     "一闪一闪", "漆黑", "白天也亮", "不关"),
    "road_damage": ("坑", "塌", "开裂", "裂缝", "沥青", "砖", "烂路", "凹陷", "翘起", "路面破", "绊倒"),
    "manhole": ("井盖", "窨井", "雨水井", "污水井", "检查井", "井口", "井的盖", "井圈", "下水道", "盖子"),
    "water_leak": ("漏水", "渗水", "冒水", "积水", "溢到", "水管", "爆管", "爆裂", "消防栓", "阀门", "水表",
                   "湿", "青苔", "一滩水", "全是水", "泡软", "自来水", "冒出", "水冒", "流了一地", "内涝",
                   "淹", "喷水"),
    "noise": ("噪", "吵", "喧哗", "扰民", "喇叭", "音乐", "音响", "广场舞", "划拳", "打桩", "电锯", "切割",
              "刺耳", "震天响", "睡不着", "声音", "分贝", "排风机", "鼓风机", "轰鸣", "鸣笛", "太响", "唱歌",
              "ktv"),
    "illegal_construction": ("违建", "违章建", "违法建", "违规建", "搭建", "私搭", "私建", "乱建", "加建",
                             "扩建", "外扩", "扩出", "建房", "盖房", "加盖", "加层", "棚", "拆墙", "破墙",
                             "打通", "开门面", "开店", "改成", "铁皮", "许可"),
    "greenery": ("绿地", "绿化", "草坪", "杂草", "野草", "草", "树", "枝", "修剪", "种菜", "花坛"),
    "street_vendor": ("摊", "小贩", "占道经营", "早餐车", "卖", "烧烤", "早市", "夜市", "流动"),
    "ads": ("小广告", "牛皮癣", "乱贴", "贴满", "张贴", "办证"),
    "graffiti": ("涂鸦", "乱涂", "乱画", "涂画", "喷漆", "喷了"),
    "bench": ("长椅", "座椅", "椅子", "凳"),
    "sign": ("路名牌", "路牌", "指示牌", "标志牌", "标牌"),
    "railing": ("护栏", "栏杆"),
}
# Words that name no problem in these contexts: word -> (characters right before it, what may
# not follow it). 不停地冒水, 停车场 are no parked car; 树坑 no pothole; 碎瓷砖 rubbish; 外卖 no stall.
_EXCEPT: dict[str, tuple[str, tuple[str, ...]]] = {
    "停": ("不", ("车场", "电", "止", "工", "水")),
    "坑": ("树", ()),
    "砖": ("瓷碎", ()),
    "卖": ("甩外", ()),
}
TOPIC_ENGLISH: dict[str, str] = {
    "garbage": r"garbage|trash|rubbish|litter|bins?|dump(?:ed|ing)?",
    "illegal_parking": r"park(?:ed|ing)",
    "street_light": r"street ?lights?|lamps?",
    "road_damage": r"potholes?|crack(?:s|ed)?|paving",
    "manhole": r"manholes?|drain covers?",
    "water_leak": r"leak(?:s|ing|ed)?|flood(?:s|ed|ing)?|burst",
    "noise": r"nois(?:e|y)|loud",
    "illegal_construction": r"illegal (?:structure|construction|extension)s?|sheds?",
    "greenery": r"trees?|grass|branch(?:es)?|hedges?",
    "street_vendor": r"vendors?|stalls?|hawkers?",
    "ads": r"flyers?|posters?",
    "graffiti": r"graffiti",
    "bench": r"bench(?:es)?",
    "sign": r"signs?|signposts?",
    "railing": r"railings?",
}
TOPICS = tuple(TOPIC_WORDS)
# One pass over the text: stop only where a word can start, then try the words starting there.
_BY_FIRST: dict[str, list[tuple[str, str]]] = {}
for _topic, _words in TOPIC_WORDS.items():
    for _word in _words:
        _BY_FIRST.setdefault(_word[0], []).append((_word, _topic))
_FIRST = re.compile("[" + "".join(sorted(_BY_FIRST)) + "]")
_ASCII = re.compile(r"[a-z]")
_ENGLISH = re.compile("|".join(f"(?P<{k}>\\b(?:{v})\\b)" for k, v in TOPIC_ENGLISH.items()))
# Which problem kinds a category covers (for a report whose text names none).
OTHER_KINDS = frozenset({"ads", "graffiti", "bench", "sign", "railing"})
CATEGORY_TOPICS: dict[str, frozenset[str]] = {
    k: frozenset({k}) for k in TOPIC_WORDS if k not in OTHER_KINDS
}
CATEGORY_TOPICS["other"] = OTHER_KINDS


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def strip_boilerplate(text: str) -> str:
    """The clauses of a (normalised) text that describe the problem, joined by commas."""
    kept = []
    for clause in _CLAUSE.split(text):
        clause = clause.strip()
        if not clause or (_BOILERPLATE_CLAUSES.match(clause) and not topics(clause, clean=True)):
            continue  # (a request that names the problem, "请修一下路灯", is kept)
        clause = _BOILERPLATE_PHRASES.sub("", clause)
        if clause:
            kept.append(clause)
    return "，".join(kept)


def core(text: str) -> str:
    """Normalised text without boilerplate and punctuation: what bigrams are taken from."""
    return _NOISE.sub("", strip_boilerplate(normalise(text)))


def bigrams(text: str) -> set[str]:
    c = core(text)
    return {c[i:i + 2] for i in range(len(c) - 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def topics(text: str, *, clean: bool = False) -> frozenset[str]:
    """The problem kinds a text names (category keys, or a kind under "other").

    `clean`: the text is normalised already (a case fingerprint)."""
    t = text if clean else normalise(text)
    found: set[str] = set()
    for m in _FIRST.finditer(t):
        i = m.start()
        for word, topic in _BY_FIRST[t[i]]:
            if topic in found or not t.startswith(word, i):
                continue
            before, after = _EXCEPT.get(word, ("", ()))
            if (i > 0 and t[i - 1] in before) or t.startswith(after, i + len(word)):
                continue
            found.add(topic)
    if _ASCII.search(t):
        found.update(m.lastgroup for m in _ENGLISH.finditer(t))
    return frozenset(found)
