"""Pure matching functions: address keys, problem topics, boilerplate, place and problem vetoes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.intake import address, matching, text
from portal.intake.geo import distance_m

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# A spot on a Shanghai street and points at given distances north of it.
LAT, LNG = 31.2394, 121.4842
M_PER_DEG = 111_195.0


def north(metres: float) -> tuple[float, float]:
    return LAT + metres / M_PER_DEG, LNG


def feats(text_: str, category: str = "garbage", *, at=T0, point=(LAT, LNG),
          address_text: str | None = None) -> matching.Features:
    lat, lng = point if point is not None else (None, None)
    return matching.Features.of(category=category, lat=lat, lng=lng, at=at, body=text_,
                                address_text=address_text)


def score(new: matching.Features, old: matching.Features) -> float:
    return matching.score(new, old, radius_m=100.0, window_days=5.0)


# ---------------------------------------------------------------------------------------------
# Address keys
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("上海市静安区江宁路1083号", {"江宁路#1083"}),
    ("黄浦区南京东路586号罗森便利店", {"南京东路#586", "南京东路@罗森便利店"}),
    ("上海市静安区共和新路大宁路交叉口", {"共和新路&大宁路"}),
    ("静安区愚园路乌鲁木齐北路路口", {"乌鲁木齐北路&愚园路"}),
    ("宜山路与桂林路交叉口早上有人摆摊", {"宜山路&桂林路"}),
    # "近X路" with the number in brackets: the number belongs to the first road.
    ("静安区南京西路近陕西北路（966号）", {"南京西路#966", "南京西路&陕西北路"}),
    ("你好，汶水路靠近万荣路工地晚上还在施工", {"万荣路&汶水路"}),
    # Hotline phrasing and district names in front of the road are not part of its name.
    ("来电人反映康定路西康路路口路灯忽明忽暗，", {"康定路&西康路"}),
    ("来电人称徐汇区宜山路707号早点摊占道经营，", {"宜山路#707"}),
    ("关于陆家浜路757号的问题：垃圾桶全满了", {"陆家浜路#757"}),
    ("市民来电反映：中华路1293号垃圾房附近臭味严重", {"中华路#1293"}),
    ("江宁路和昌平路交叉口", {"昌平路&江宁路"}),
    ("人民大道余庆路路口", {"人民大道&余庆路"}),
    ("成都北路88号", {"成都北路#88"}),
    ("上中路258号", {"上中路#258"}),
    # A number that is not a house number on the road (an exit) is part of a landmark.
    ("福州路地铁站2号口旁边共享单车乱停", {"福州路@地铁站2号口"}),
    # "路" in ordinary words is not a road.
    ("路上有个大坑！这边路灯坏了，马路中间塌了", set()),
    ("田林路上奶茶店附近这一段路灯全部熄灭了", {"田林路@奶茶店"}),
    # Landmarks: after the road, its number or the crossing road; an address ends with one.
    ("黄浦区中华路1177号中石化加油站", {"中华路#1177", "中华路@中石化加油站"}),
    ("来电人反映方浜中路149号幼儿园门口路面有一个大坑",
     {"方浜中路#149", "方浜中路@幼儿园"}),
    ("共和新路大宁路路口幼儿园旁围墙后面在私自建房",
     {"共和新路&大宁路", "共和新路@幼儿园", "大宁路@幼儿园"}),
    # Not landmarks: what every street has, the problem itself, a clause.
    ("南京东路632号小区北门口路面有一个大坑", {"南京东路#632"}),
    ("康定路868号附近垃圾房门口堆满垃圾", {"康定路#868"}),
    ("龙华中路541号门口好几辆车停在人行道上", {"龙华中路#541"}),
    ("北京西路靠近石门二路井盖比路面低了好几公分", {"北京西路&石门二路"}),
    (None, set()),
])
def test_address_keys(raw, expected):
    assert address.keys(raw) == expected


def test_keys_of_address_and_text_together():
    keys = address.keys("静安区康定路906号全家便利店", "来电人反映康定路西康路路口路灯忽明忽暗，")
    assert keys == {"康定路#906", "康定路@全家便利店", "康定路&西康路"}


def test_two_house_numbers_on_one_road_conflict():
    assert address.numbers_conflict({"衡山路#583"}, {"衡山路#497"})
    assert not address.numbers_conflict({"衡山路#583"}, {"衡山路#583", "衡山路&高安路"})
    # Different roads, or a crossing only, say nothing against each other.
    assert not address.numbers_conflict({"衡山路#583"}, {"宜山路#497"})
    assert not address.numbers_conflict({"衡山路#583"}, {"衡山路&高安路"})


# ---------------------------------------------------------------------------------------------
# Text: boilerplate and topics
# ---------------------------------------------------------------------------------------------

def test_hotline_boilerplate_is_stripped():
    core = text.core("市民来电反映：徐汇区宜山路563号邮局门口早点摊占道经营，油污满地，"
                     "从上周开始就这样，要求尽快核实处理。")
    assert core == "宜山路563号邮局门口早点摊占道经营油污满地"
    # A resend's note does not make it a different text.
    a = text.bigrams("路灯一闪一闪的，晃得人眼睛难受。希望尽快解决。")
    b = text.bigrams("路灯一闪一闪的，晃得人眼睛难受。希望尽快解决。（再发一次，刚才好像没发成功）")
    assert a == b
    # A request that names the problem is kept: it says what the problem is.
    assert "路灯" in text.core("请尽快修一下路灯。谢谢！")


@pytest.mark.parametrize(("words", "topic"), [
    ("路灯一闪一闪的，晃得人眼睛难受", "street_light"),
    ("井盖被掀开斜在一边", "manhole"),
    ("路上有个大坑！", "road_damage"),
    ("阀门井冒水", "water_leak"),
    ("半夜工地还在干活，电锯声特别刺耳", "noise"),
    ("店铺在门口搭雨棚扩出来一大块", "illegal_construction"),
    ("有人把绿地挖了种菜", "greenery"),
    ("煎饼摊乱摆", "street_vendor"),
    ("大量共享单车堆放在路边", "illegal_parking"),
    ("这里垃圾好多", "garbage"),
    ("新刷的墙面被人喷了一大片字", "graffiti"),
    ("休息座椅的扶手掉了", "bench"),
    ("路名牌被撞歪了", "sign"),
    ("the street light is out", "street_light"),
])
def test_topics_name_the_problem(words, topic):
    assert topic in text.topics(words)


def test_incidental_words_do_not_name_a_problem():
    # "外卖" is a delivery rider, not a stall; "停车场" is a place, not a parked car;
    # "树坑" is where rubbish lies, not a pothole; "street" holds no tree.
    assert "street_vendor" not in text.topics("前两天晚上有个外卖小哥在这里摔了一跤")
    assert "illegal_parking" not in text.topics("芷江西路停车场入口旁边旧沙发扔在路边")
    assert "road_damage" not in text.topics("树坑里被塞满了垃圾")
    assert "greenery" not in text.topics("water pipe leaking on the street")
    assert "illegal_parking" not in text.topics("路面不停地冒水")


# ---------------------------------------------------------------------------------------------
# Scores and vetoes
# ---------------------------------------------------------------------------------------------

def test_paraphrases_at_one_spot_merge_though_they_share_few_characters():
    old = feats("围墙上被人乱涂乱画。麻烦相关部门来处理一下。", "other")
    new = feats("新刷的墙面被人喷了一大片字。", "other", at=T0 + timedelta(days=1),
                point=north(25))
    assert text.jaccard(old.bigrams, new.bigrams) < 0.15
    assert score(new, old) >= 0.7


def test_a_different_problem_at_the_same_spot_is_vetoed():
    # "other" is related to every category: what the texts name decides.
    bench = feats("街边长椅被拆了一半", "other")
    assert score(feats("井盖破损！", "manhole", point=north(5)), bench) == 0.0
    sign = feats("路名牌的杆子被撞斜了", "other")
    assert score(feats("垃圾房门口堆满垃圾", "garbage", point=north(7)), sign) == 0.0
    # Unrelated categories never merge, whatever the texts say.
    assert score(feats("路灯不亮", "street_light"), feats("路灯不亮", "garbage")) == 0.0


def test_a_neighbouring_category_merges_when_the_text_names_the_problem():
    pothole = feats("路面有一个大坑，电动车骑过去很危险", "road_damage")
    assert score(feats("路上有个大坑！", "manhole", point=north(16)), pothole) >= 0.7
    assert score(feats("大量共享单车堆放在路边", "other", point=north(11)),
                 feats("共享单车堆成山，人都过不去", "illegal_parking")) >= 0.7


def test_neighbouring_categories_whose_texts_name_both_problems_are_only_flagged():
    # A leak around a manhole cover at the spot of a loose cover: one problem or two.
    cover = feats("井盖松动，车一过就咣咣响", "manhole")
    leak = feats("阀门井往外冒水，井盖周围全是水", "water_leak", point=north(10))
    assert 0.45 <= score(leak, cover) < 0.7
    stall = feats("早上有人摆摊卖煎饼，垃圾扔得到处都是", "street_vendor")
    assert 0.45 <= score(feats("这里垃圾好多", point=north(10)), stall) < 0.7


def test_same_words_far_apart_or_long_after_do_not_merge():
    old = feats("这里垃圾好多")
    assert score(feats("这里垃圾好多", point=north(400)), old) == 0.0
    assert score(feats("这里垃圾好多", at=T0 + timedelta(days=6)), old) == 0.0
    # Within the radius the place score falls with the distance.
    assert score(feats("这里垃圾好多", point=north(20)), old) > \
        score(feats("这里垃圾好多", point=north(90)), old) > 0.0


def test_address_only_report_matches_by_road_and_number_and_is_vetoed_by_another_number():
    old = feats("方浜中路140号有车停在公交车站台前面", "illegal_parking")
    same = feats("来电人反映公交站台前经常有私家车违停", "illegal_parking", point=None,
                 address_text="上海市黄浦区方浜中路140号")
    assert score(same, old) >= 0.7
    other = feats("来电人反映公交站台前经常有私家车违停", "illegal_parking", point=None,
                  address_text="上海市黄浦区方浜中路480号")
    assert score(other, old) == 0.0
    # Two points close together but two house numbers on one road: two places.
    assert score(feats("衡山路497号夜里烧烤摊", "street_vendor", point=north(10)),
                 feats("衡山路583号门口烧烤摊", "street_vendor")) == 0.0


def test_a_landmark_places_an_address_only_report():
    old = feats("马路中间塌了个坑，地点：方浜中路幼儿园旁边。", "road_damage")
    new = feats("来电人反映方浜中路149号幼儿园门口路面有一个大坑", "manhole", point=None,
                address_text="上海市黄浦区方浜中路149号")
    assert score(new, old) >= 0.7


def test_a_crossing_alone_places_an_address_only_report():
    old = feats("井盖破损开裂", "manhole", address_text="静安区愚园路与乌鲁木齐北路交叉口")
    new = feats("窨井盖裂开了，上面用木板挡着", "manhole", point=None,
                address_text="乌鲁木齐北路愚园路路口")
    assert score(new, old) >= 0.7


def test_a_point_learned_from_an_address_gets_some_slack():
    old = feats("路灯不亮", "street_light")
    new = feats("路灯不亮", "street_light", point=north(110))
    assert score(new, old) == 0.0
    new.approx = True
    assert score(new, old) > 0.0
    assert distance_m(LAT, LNG, *north(110)) == pytest.approx(110, abs=1)


def test_compatible_cases_are_one_problem_at_one_place():
    a = feats("有货车在这里长期违停", "illegal_parking")
    b = feats("共和新路2174号全家便利店门口大货车违停", "illegal_parking", point=None)
    assert matching.compatible(a, b, radius_m=100.0)
    assert not matching.compatible(a, feats("路灯不亮", "street_light"), radius_m=100.0)
    assert not matching.compatible(a, feats("货车违停", "illegal_parking", point=north(500)),
                                   radius_m=100.0)


def test_a_case_fingerprint_carries_the_problems_its_reports_name():
    one = matching.fingerprint("来电人反映宜山路563号门口早上有人摆摊卖煎饼，垃圾扔得到处都是。")
    two = matching.fingerprint("煎饼摊乱摆。")
    assert one.startswith("〔garbage street_vendor〕")
    assert "来电人" not in one and len(one) <= matching.FINGERPRINT_CHARS
    # Joined as reports join a case (and as staff merges cases): the union is read back.
    assert matching.fingerprint_topics(one + " " + two) == {"garbage", "street_vendor"}
    # A fingerprint written before it carried them is searched instead.
    assert matching.fingerprint_topics("井盖移位了") == {"manhole"}


def test_case_keys_are_bounded_to_whole_keys():
    keys = {f"南京东路#{n}" for n in range(100)}
    joined = matching.join_keys(keys)
    assert len(joined) <= 500
    assert all(k in keys for k in joined.split("|"))
