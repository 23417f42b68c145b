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
TOPICS: dict[str, str] = {
    "garbage": r"垃圾|渣土|建渣|瓷砖|碎砖|杂物|废弃|废品|家具|沙发|床垫|烟头|外卖盒|塑料袋|饮料瓶|"
               r"满溢|溢出来|清运|脏乱|臭|苍蝇|老鼠|倾倒|偷倒|乱扔|乱丢|乱倒|"
               r"\b(?:garbage|trash|rubbish|litter|bins?|dump(?:ed|ing)?)\b",
    "illegal_parking": r"(?<!不)停(?!车场|电|止|工|水)|单车|自行车|僵尸车|消防通道|占用车道|"
                       r"\bpark(?:ed|ing)\b",
    "street_light": r"路灯|灯杆|灯柱|灯泡|景观灯|照明|不亮|熄灭|忽明忽暗|闪烁|一闪一闪|漆黑|白天也亮|"
                    r"不关|\bstreet ?lights?\b|\blamps?\b",
    "road_damage": r"(?<!树)坑|塌|开裂|裂缝|沥青|(?<!瓷|碎)砖|烂路|凹陷|翘起|路面破|绊倒|"
                   r"\bpotholes?\b|\bcrack(?:s|ed)?\b|\bpaving\b",
    "manhole": r"井盖|窨井|雨水井|污水井|检查井|井口|井的盖|井圈|下水道|盖子|"
               r"\bmanholes?\b|\bdrain covers?\b",
    "water_leak": r"漏水|渗水|冒水|积水|溢到|水管|爆管|爆裂|消防栓|阀门|水表|湿|青苔|一滩水|全是水|"
                  r"泡软|自来水|冒出|水冒|流了一地|内涝|淹|喷水|"
                  r"\bleak(?:s|ing|ed)?\b|\bflood(?:s|ed|ing)?\b|\bburst\b",
    "noise": r"噪|吵|喧哗|扰民|喇叭|音乐|音响|广场舞|划拳|打桩|电锯|切割|刺耳|震天响|睡不着|声音|"
             r"分贝|排风机|鼓风机|轰鸣|鸣笛|太响|唱歌|ktv|\bnois(?:e|y)\b|\bloud\b",
    "illegal_construction": r"违建|违章建|违法建|违规建|搭建|私搭|私建|乱建|加建|扩建|外扩|扩出|建房|"
                            r"盖房|加盖|加层|棚|拆墙|破墙|打通|开门面|开店|改成|铁皮|许可|"
                            r"\billegal (?:structure|construction|extension)s?\b|\bsheds?\b",
    "greenery": r"绿地|绿化|草坪|杂草|野草|草|树|枝|修剪|种菜|花坛|"
                r"\btrees?\b|\bgrass\b|\bbranch(?:es)?\b|\bhedges?\b",
    "street_vendor": r"摊|小贩|占道经营|早餐车|(?<![甩外])卖|烧烤|早市|夜市|流动|"
                     r"\bvendors?\b|\bstalls?\b|\bhawkers?\b",
    "ads": r"小广告|牛皮癣|乱贴|贴满|张贴|办证|\bflyers?\b|\bposters?\b",
    "graffiti": r"涂鸦|乱涂|乱画|涂画|喷漆|喷了|\bgraffiti\b",
    "bench": r"长椅|座椅|椅子|凳|\bbench(?:es)?\b",
    "sign": r"路名牌|路牌|指示牌|标志牌|标牌|\bsigns?\b|\bsignposts?\b",
    "railing": r"护栏|栏杆|\brailings?\b",
}
_TOPIC_RE = re.compile("|".join(f"(?P<{k}>{v})" for k, v in TOPICS.items()))
# Which problem kinds a category covers (for a report whose text names none).
CATEGORY_TOPICS: dict[str, frozenset[str]] = {
    k: frozenset({k}) for k in TOPICS if k not in ("ads", "graffiti", "bench", "sign", "railing")
}
CATEGORY_TOPICS["other"] = frozenset({"ads", "graffiti", "bench", "sign", "railing"})


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def strip_boilerplate(text: str) -> str:
    """The clauses of a (normalised) text that describe the problem, joined by commas."""
    kept = []
    for clause in _CLAUSE.split(text):
        clause = clause.strip()
        if not clause or (_BOILERPLATE_CLAUSES.match(clause) and not _TOPIC_RE.search(clause)):
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


def containment(a: set[str], b: set[str]) -> float:
    """Share of the smaller set found in the larger: a short text inside a long one scores high."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def topics(text: str) -> frozenset[str]:
    """The problem kinds a text names (category keys, or a kind under "other")."""
    return frozenset(m.lastgroup for m in _TOPIC_RE.finditer(normalise(text)))
