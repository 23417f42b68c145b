"""Intake at volume: submit() latency over a million historical cases, and Open311 throughput.

    .venv/bin/python bench/intake.py [--database-url URL] [--cases 1000000] [--open 100000]
        [--submits 2000] [--requests 3000] [--concurrency 16] [--skip-http] [--keep] [--reuse]

1. Migrates a fresh database (the real migrations) and fills it with raw bulk SQL (executemany
   on SQLite, COPY on PostgreSQL; plain indexes built after the load): generated historical
   cases over the past two years (the open ones recent) spread over Shanghai, with their
   reports, reporters and identities, subscriptions, "created" events, address keys, learned
   address points and the daily code counters. Prints the fill time.
2. Times `submit()` one call at a time on a realistic mix (new problems at random places,
   reports near recent open cases, a reporter repeating themselves, address-only reports,
   WeChat points in GCJ-02; a third of the reporters reported before), with the product's
   default throttle, and prints p50/p90/p99/max.
3. Starts a real uvicorn server (bench/intake_app.py: the product app plus one bare route that
   inserts one row into a bench table) on the same database and drives it with N concurrent
   keep-alive HTTP connections: first the bare insert, then `POST /open311/v2/requests.json`,
   each Open311 request from its own reporter. Prints requests per second and the ratio.

Goals (issue): p99 of submit() <= 10 ms at 1,000,000 cases (100,000 open) on SQLite and on
PostgreSQL; Open311 POST throughput >= 60% of the bare insert.

Without --database-url a fresh SQLite file in a temporary directory is used. A PostgreSQL URL
names a dedicated database (e.g. postgres://postgres@127.0.0.1:5432/gridlink_bench) that this
script drops and creates, and drops again at the end unless --keep is given. --reuse times
against a database filled and kept by an earlier run (it then holds that run's submissions
too). --profile-server FILE samples the server with py-spy (collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal import db  # noqa: E402
from portal.cases.categories import CATEGORIES, related_to  # noqa: E402
from portal.intake import address, geo, matching  # noqa: E402
from portal.intake.submission import Submission, Throttled  # noqa: E402

CENTRE = (31.2304, 121.4737)  # People's Square
LAT_RANGE = (30.9, 31.5)
LNG_RANGE = (121.1, 121.9)
M_PER_DEG_LAT = 111_320.0
CHUNK = 20_000

# --------------------------------------------------------------------------------------------
# What the generated city looks like
# --------------------------------------------------------------------------------------------

ROAD_STEMS = (
    "南京", "北京", "四川", "河南", "江宁", "昌平", "淮海", "延安", "长乐", "复兴", "建国", "肇嘉浜",
    "衡山", "天平", "漕溪", "中山", "曹杨", "武宁", "长寿", "万航渡", "愚园", "华山", "陕西", "茂名",
    "瑞金", "重庆", "西藏", "浙江", "福建", "山东", "山西", "广西", "云南", "贵州", "湖北", "江西",
    "宁波", "天津", "九江", "汉口", "福州", "广东", "新闸", "武定", "康定", "余姚", "昌化", "西康",
    "泰兴", "大统", "共和新", "大宁", "平型关", "广中", "临平", "四平", "控江", "长阳", "杨树浦",
    "周家嘴", "黄兴", "国权", "邯郸", "政通", "淞沪", "国定", "殷行", "民星", "浦东", "张杨", "世纪",
    "东方", "源深", "崂山", "峨山", "锦绣", "杨高", "龙阳", "芳华", "金科", "祖冲之", "张江", "碧波",
    "高科", "川沙", "华夏", "沪南", "上南", "浦三", "成山", "济阳", "德州", "云莲", "凌兆", "南码头",
    "龙华", "宛平", "桂林", "虹漕", "田林", "钦州", "柳州", "宜山", "虹桥", "古北", "仙霞", "水城",
    "娄山关", "哈密", "剑河", "天山", "长宁", "凯旋", "定西", "番禺", "江苏", "镇宁", "安化", "宣化",
    "金沙江", "真北", "祁连山", "铜川", "大渡河", "交通", "石泉", "真如", "曹安", "沪太", "场中",
    "共康", "呼玛", "通河", "泗塘", "长江", "牡丹江", "友谊", "宝杨", "同济", "淞滨", "漠河", "莘庄",
    "七莘", "春申", "都市", "沪闵", "虹梅", "吴中", "合川", "银都", "古美", "平吉", "莲花", "航华",
)
ROAD_SUFFIXES = ("路", "东路", "西路", "南路", "北路", "中路", "支路", "街")
DISTRICTS = ("黄浦区", "静安区", "徐汇区", "长宁区", "普陀区", "虹口区", "杨浦区", "浦东新区",
             "闵行区", "宝山区")

# Per category: texts that name the place ({loc}) and texts that do not.
TEXTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "garbage": (
        ("{loc}门口垃圾堆了{n}天，没人清运，味道很大。", "{loc}的垃圾房满溢，垃圾桶周围都是垃圾。",
         "来电人反映{loc}附近有人乱扔装修垃圾，要求尽快核实处理。"),
        ("小区门口垃圾好几天没人收了，苍蝇很多。", "这里垃圾好多", "垃圾桶满了没人倒，臭得不行。"),
    ),
    "illegal_parking": (
        ("{loc}有车长期占用人行道，行人只能走机动车道。", "{loc}消防通道被私家车堵住了{n}天。",
         "来电人反映{loc}公交站台前经常有车违停，要求尽快处理。"),
        ("人行道上停满了车，推婴儿车过不去。", "消防通道又被堵了", "路口违停严重，公交车没法靠站。"),
    ),
    "road_damage": (
        ("{loc}路面有个大坑，下雨天看不见很危险。", "{loc}人行道砖松动，踩上去会溅水。",
         "来电人反映{loc}附近路面塌陷，要求尽快核实处理。"),
        ("路上有个坑，电动车摔了好几次。", "人行道砖翘起来了，老人容易绊倒。", "马路破了个大洞"),
    ),
    "street_light": (
        ("{loc}的路灯不亮已经{n}天了，晚上很黑。", "{loc}门口路灯一直闪，晚上很晃眼。",
         "来电人反映{loc}附近一排路灯都不亮，要求尽快处理。"),
        ("路灯坏了，晚上走路看不见。", "小区外面的路灯不亮", "路灯杆被车撞歪了，有倒下的危险。"),
    ),
    "noise": (
        ("{loc}工地夜里施工到凌晨，吵得睡不着。", "{loc}的饭店排风机噪声很大，整晚响。",
         "来电人反映{loc}附近广场舞音响声音太大，要求相关部门管一管。"),
        ("晚上施工太吵了，已经连续{n}天。", "楼下烧烤店半夜还很吵", "广场舞声音太大，孩子没法写作业。"),
    ),
    "illegal_construction": (
        ("{loc}一楼住户私自扩建，把绿化带围起来了。", "{loc}楼顶有人在搭违章建筑。",
         "来电人反映{loc}有商铺违规搭建雨棚，要求尽快核实处理。"),
        ("邻居在楼顶加盖了一层房子。", "有人私搭乱建，占了公共通道。", "一楼院子围墙越砌越高"),
    ),
    "water_leak": (
        ("{loc}路边水管爆了，水一直往外冒。", "{loc}门口积水很深，下水道堵了。",
         "来电人反映{loc}附近消防栓漏水，地上一滩水，要求尽快处理。"),
        ("路上积水好几天了，车开过溅得到处都是。", "水管漏水，地面一直湿的。", "下雨后积水排不掉"),
    ),
    "greenery": (
        ("{loc}的行道树被风刮倒了，压在人行道上。", "{loc}绿化带杂草丛生，很久没人修剪。",
         "来电人反映{loc}附近树枝挡住了红绿灯，要求尽快处理。"),
        ("树枝快碰到电线了，很危险。", "草坪被人踩秃了", "绿化带里都是垃圾和杂草。"),
    ),
    "street_vendor": (
        ("{loc}每天晚上都有烧烤摊占道经营，油烟很大。", "{loc}人行道上水果摊越摆越多。",
         "来电人反映{loc}附近有早点摊占用人行道，要求相关部门管一管。"),
        ("路边摊把人行道全占了。", "晚上流动摊贩很多，收摊后满地垃圾。", "煎饼摊占道经营"),
    ),
    "manhole": (
        ("{loc}路中间井盖松动，车一过就咣咣响。", "{loc}人行道上的窨井盖不见了，很危险。",
         "来电人反映{loc}附近井盖破损，要求尽快核实处理。"),
        ("井盖缺了一块，晚上容易踩空。", "路上井盖响了好几天", "窨井盖翘起来了，自行车差点摔倒。"),
    ),
    "other": (
        ("{loc}的共享单车乱停，把路都堵了。", "{loc}墙上贴满了小广告。",
         "来电人反映{loc}附近有情况需要处理，要求尽快核实。"),
        ("共享单车堆成山了", "电线杆上都是小广告。", "有个情况需要处理，麻烦来看一下。"),
    ),
}
CATEGORY_KEYS = [c.key for c in CATEGORIES]
CATEGORY_WEIGHTS = [14, 13, 9, 9, 10, 5, 8, 6, 9, 7, 10]
CHANNEL_OF_KIND = {"wx": "wechat", "tg": "telegram", "web": "web", "hotline": "hotline"}
KINDS, KIND_WEIGHTS = ("wx", "tg", "web", "hotline"), (40, 25, 15, 20)
OPEN_STATUS_WEIGHTS = (("new", 10), ("accepted", 20), ("dispatched", 25), ("in_progress", 30),
                       ("resolved", 15))
FRESH_STATUS_WEIGHTS = (("new", 60), ("accepted", 30), ("dispatched", 10))

CASE_COLS = ("id", "code", "category", "status", "summary", "lat", "lng", "cell", "address",
             "address_keys", "fingerprint", "report_count", "reporter_count", "rejected_reason",
             "first_reported_at", "last_reported_at", "closed_at", "created_at", "updated_at",
             "department_id", "master_id", "possible_duplicate_of_id", "recurrence_of_id")
REPORT_COLS = ("id", "identity", "channel", "language", "text", "category", "raw_lat",
               "raw_lng", "crs", "lat", "lng", "address", "received_at", "external_ref", "join",
               "score", "extra", "created_at", "case_id", "person_id")
PERSON_COLS = ("id", "language", "email", "phone", "created_at", "updates_at_night")
IDENTITY_COLS = ("id", "key", "kind", "created_at", "person_id")
SUBSCRIPTION_COLS = ("id", "identity", "reason", "created_at", "case_id", "person_id")
EVENT_COLS = ("id", "kind", "status_from", "status_to", "public_note", "internal_note", "actor",
              "public", "data", "created_at", "case_id")
CASE_KEY_COLS = ("id", "key", "case_id")
ADDRESS_POINT_COLS = ("key", "lat", "lng", "samples")
DAILY_COUNTER_COLS = ("day", "value")

DATETIME_COLS = {"first_reported_at", "last_reported_at", "closed_at", "created_at",
                 "updated_at", "received_at"}
# What each generated row holds, per table.
COLUMNS = {
    "person": PERSON_COLS, "identity": IDENTITY_COLS, "case_": CASE_COLS,
    # The database numbers these.
    "report": REPORT_COLS[1:], "subscription": SUBSCRIPTION_COLS[1:],
    "case_event": EVENT_COLS[1:], "case_key": CASE_KEY_COLS[1:],
    "address_point": ADDRESS_POINT_COLS, "daily_counter": DAILY_COUNTER_COLS,
}


def weighted(rng: random.Random, pairs) -> str:
    keys, weights = zip(*pairs, strict=True)
    return rng.choices(keys, weights)[0]


@dataclass
class Road:
    name: str
    lat: float
    lng: float
    dlat: float  # degrees per house number along the road
    dlng: float

    def point(self, number: int) -> tuple[float, float]:
        return self.lat + self.dlat * number, self.lng + self.dlng * number


def city_point(rng: random.Random) -> tuple[float, float]:
    """A point in Shanghai, denser in the centre."""
    while True:
        if rng.random() < 0.65:
            lat, lng = rng.gauss(CENTRE[0], 0.06), rng.gauss(CENTRE[1], 0.07)
        else:
            lat, lng = rng.uniform(*LAT_RANGE), rng.uniform(*LNG_RANGE)
        if LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LNG_RANGE[0] <= lng <= LNG_RANGE[1]:
            return lat, lng


def make_roads(rng: random.Random) -> list[Road]:
    roads = []
    for stem in ROAD_STEMS:
        for suffix in ROAD_SUFFIXES:
            lat, lng = city_point(rng)
            bearing = rng.uniform(0, math.pi)
            step = rng.uniform(3.0, 6.0)  # metres per house number
            roads.append(Road(stem + suffix, lat, lng,
                              step * math.cos(bearing) / M_PER_DEG_LAT,
                              step * math.sin(bearing) / (M_PER_DEG_LAT * math.cos(
                                  math.radians(lat)))))
    return roads


def house_number(rng: random.Random) -> int:
    return min(1999, 1 + int(rng.expovariate(1 / 250)))


def jitter(rng: random.Random, lat: float, lng: float, metres: float) -> tuple[float, float]:
    return (lat + rng.gauss(0, metres) / M_PER_DEG_LAT,
            lng + rng.gauss(0, metres) / (M_PER_DEG_LAT * math.cos(math.radians(lat))))


def describe(rng: random.Random, category: str, loc: str | None) -> str:
    with_loc, without = TEXTS[category]
    if loc and rng.random() < 0.7:
        body = rng.choice(with_loc)
    else:
        body = rng.choice(without)
    return body.format(loc=loc or "", n=rng.randint(2, 9))


# --------------------------------------------------------------------------------------------
# Generating the history (in worker processes, one chunk of cases at a time)
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    """What the timed part needs to know about the generated history."""

    now: datetime
    roads: list[Road]
    persons: int
    identity_keys: list[str]  # index = person id - 1
    # Open cases of the last few days with a point: (lat, lng, category, road index, number).
    recent_open: list[tuple[float, float, str, int, int]] = field(default_factory=list)
    # Address keys with a learned point: (road index, number).
    known_addresses: list[tuple[int, int]] = field(default_factory=list)
    cases: int = 0
    open_cases: int = 0


def make_identity(rng: random.Random, pid: int) -> tuple[str, str]:
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    if kind == "wx":
        return kind, f"wx:o{rng.getrandbits(64):016x}{pid:x}"
    if kind == "tg":
        return kind, f"tg:{1_000_000_000 + pid}"
    if kind == "web":
        return kind, f"web:resident{pid}@example.cn"
    line = rng.choice(("12345", "12345", "12345", "12319", "962121"))
    return kind, f"hotline:{line}-{2024 + pid % 3}-{pid:07d}"


@dataclass
class Chunk:
    cases: list[tuple]
    reports: list[tuple]
    subscriptions: list[tuple]
    events: list[tuple]
    keys: list[tuple]
    points: dict[str, list]  # address key -> [lat, lng, samples, road index, number]
    recent_open: list[tuple]


def as_sqlite(table: str, rows: list[tuple]) -> list[tuple]:
    """Datetimes as Tortoise writes them to SQLite (the sqlite3 adapter's isoformat(" "))."""
    cols = [i for i, c in enumerate(COLUMNS[table]) if c in DATETIME_COLS]
    if not cols:
        return rows
    out = []
    for row in rows:
        row = list(row)
        for i in cols:
            if row[i] is not None:
                row[i] = row[i].isoformat(" ")
        out.append(row)
    return out


class Generator:
    """Deterministic for a seed; chunks can be generated in any process, in any order."""

    def __init__(self, cases: int, open_: int, seed: int, now: datetime, sqlite: bool):
        self.seed, self.cases, self.open, self.now, self.sqlite = seed, cases, open_, now, sqlite
        rng = random.Random(seed)
        self.roads = make_roads(rng)
        self.persons = max(1000, int(cases * 0.35))
        self.identities = [make_identity(rng, pid) for pid in range(1, self.persons + 1)]
        self.timeline = self._timeline(rng)

    def _timeline(self, rng: random.Random) -> list[tuple[datetime, bool, str]]:
        """(first reported, open, code) per case, in case id order (oldest first)."""
        now = self.now
        times = []
        for _ in range(self.cases - self.open):
            times.append((now - timedelta(days=rng.uniform(1.0, 730.0),
                                          microseconds=rng.randint(1, 999_999)), False))
        for _ in range(self.open):
            age = min(700.0, rng.expovariate(1 / 12.0))
            times.append((now - timedelta(days=age, seconds=60 + rng.randint(0, 3600),
                                          microseconds=rng.randint(1, 999_999)), True))
        times.sort()
        out, day_of, counters = [], {}, Counter()
        for first, is_open in times:
            local = (first + timedelta(hours=8)).date()  # Shanghai has no daylight saving
            day = day_of.get(local)
            if day is None:
                day = day_of[local] = local.strftime("%Y%m%d")
            counters[day] += 1
            out.append((first, is_open, f"GL-{day}-{counters[day]:04d}"))
        self.counters = counters
        return out

    def people(self) -> tuple[list[tuple], list[tuple]]:
        rng = random.Random(self.seed + 1)
        persons, identities = [], []
        for pid, (kind, key) in enumerate(self.identities, start=1):
            created = self.now - timedelta(days=rng.uniform(0, 900),
                                           microseconds=rng.randint(1, 999_999))
            persons.append((pid, "zh-CN" if rng.random() < 0.93 else "en",
                            key[4:] if kind == "web" else None, None, created, False))
            identities.append((pid, key, kind, created, pid))
        if self.sqlite:
            return as_sqlite("person", persons), as_sqlite("identity", identities)
        return persons, identities

    def chunk(self, index: int) -> Chunk:
        rng = random.Random(self.seed * 1_000_003 + index)
        out = Chunk([], [], [], [], [], {}, [])
        start = index * CHUNK
        for offset, (first, is_open, code) in enumerate(self.timeline[start:start + CHUNK]):
            self._one_case(rng, start + offset + 1, first, is_open, code, out)
        return out

    def _ts(self, dt: datetime | None):
        """Datetimes as Tortoise writes them to SQLite (the sqlite3 adapter's isoformat(" "))."""
        if dt is None or not self.sqlite:
            return dt
        return dt.isoformat(" ")

    def _one_case(self, rng: random.Random, case_id: int, first: datetime, is_open: bool,
                  code: str, out: Chunk) -> None:
        now = self.now
        category = rng.choices(CATEGORY_KEYS, CATEGORY_WEIGHTS)[0]
        road_ix = rng.randrange(len(self.roads))
        road, number = self.roads[road_ix], house_number(rng)
        lat, lng = jitter(rng, *road.point(number), 20.0)
        has_point = rng.random() > 0.03
        has_address = not has_point or rng.random() < 0.55
        addr = f"上海市{rng.choice(DISTRICTS)}{road.name}{number}号" if has_address else None
        loc = f"{road.name}{number}号" if has_address or rng.random() < 0.3 else None
        text = describe(rng, category, loc)
        case_keys = sorted(address.keys(addr, text)) if addr or loc else []
        if not has_point:
            lat = lng = None
        age_days = (now - first).total_seconds() / 86400
        closed_at = rejected_reason = master_id = None
        if is_open:
            status = weighted(rng, FRESH_STATUS_WEIGHTS if age_days < 1 else OPEN_STATUS_WEIGHTS)
        else:
            roll = rng.random()
            status = "closed" if roll < 0.85 else ("rejected" if roll < 0.92 else "merged")
            closed_at = first + timedelta(days=rng.uniform(0.2, min(age_days, 20.0)))
            if status == "rejected":
                rejected_reason = "不属于网格化管理范围，已告知来电人拨打相关热线。"
            if status == "merged" and case_id > 1:
                master_id = max(1, case_id - rng.randint(1, 200))
        # A merged case handed its reports to its master; the others have one or more.
        n_reports = 0 if status == "merged" else (
            1 if rng.random() < 0.75 else (2 if rng.random() < 0.6 else rng.randint(3, 6)))
        latest = max(60.0, (now - first).total_seconds() - 60)
        ts = self._ts
        first_v = ts(first)
        last = first
        seen: set[int] = set()
        for i in range(n_reports):
            at = first if i == 0 else first + timedelta(
                seconds=min(rng.uniform(60, 4 * 86400), latest))
            last = max(last, at)
            pid = rng.randint(1, self.persons)
            while pid in seen:
                pid = rng.randint(1, self.persons)
            seen.add(pid)
            kind, ident = self.identities[pid - 1]
            channel = CHANNEL_OF_KIND[kind]
            body = text if i == 0 else describe(rng, category, loc)
            rcat = category if rng.random() < 0.95 else rng.choice(related_to(category))
            rlat, rlng = (lat, lng) if i == 0 or lat is None else jitter(rng, lat, lng, 15.0)
            raw_lat, raw_lng, crs = rlat, rlng, "wgs84"
            if rlat is not None and channel == "wechat":
                raw_lat, raw_lng = geo.wgs84_to_gcj02(rlat, rlng)
                crs = "gcj02"
            r_addr = addr if (channel == "hotline" or rng.random() < 0.4) else None
            if channel == "hotline" and r_addr is None:
                r_addr = f"上海市{road.name}{number}号"
            ext = f"{ident[8:13]}-{at.year}-{case_id:07d}{i}" if channel == "hotline" else None
            at_v = first_v if i == 0 else ts(at)
            out.reports.append((ident, channel, "zh-CN", body, rcat, raw_lat, raw_lng, crs,
                                rlat, rlng, r_addr, at_v, ext, "new" if i == 0 else "merged",
                                None if i == 0 else 0.82, "{}", at_v, case_id, pid))
            out.subscriptions.append((ident, "reporter", at_v, case_id, pid))
        cell = geo.cell(lat, lng) if lat is not None else None
        out.cases.append((
            case_id, code, category, status, text[:500], lat, lng, cell, addr,
            "|".join(case_keys)[:500], matching.fingerprint(text), n_reports, n_reports,
            rejected_reason, first_v, ts(last), ts(closed_at), first_v, ts(closed_at or last),
            None, master_id, None, None,
        ))
        out.events.append(("created", None, "new", None, None, "system", True,
                           '{"channel":"web"}', first_v, case_id))
        for key in case_keys:
            out.keys.append((key, case_id))
            if lat is not None and "#" in key:
                point = out.points.get(key)
                if point is None:
                    out.points[key] = [lat, lng, 1, road_ix, number]
                else:
                    point[2] += 1
        if is_open and lat is not None and age_days < 4:
            out.recent_open.append((lat, lng, category, road_ix, number))


_GENERATOR: Generator | None = None


def _chunk_in_worker(index: int) -> Chunk:
    assert _GENERATOR is not None
    return _GENERATOR.chunk(index)


# --------------------------------------------------------------------------------------------
# Writing it: executemany on SQLite, COPY on PostgreSQL
# --------------------------------------------------------------------------------------------

def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "asyncpg://"))


def pg_dsn(url: str, database: str | None = None) -> str:
    dsn = "postgresql://" + url.split("://", 1)[1]
    dsn = dsn.split("?", 1)[0]
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


FILLED_TABLES = ("person", "identity", "case_", "report", "subscription", "case_event",
                 "case_key", "address_point")


class SqliteWriter:
    """Plain indexes (those the migrations created with CREATE INDEX) are dropped for the load
    and built again, from their own SQL, at the end: sorting once beats a million inserts."""

    def __init__(self, url: str):
        self.conn = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
        # Setup speed only: the timed part reopens the file with the product's own settings.
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-1000000")
        marks = ", ".join("?" * len(FILLED_TABLES))
        self.indexes = self.conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})", FILLED_TABLES).fetchall()
        for name, _sql in self.indexes:
            self.conn.execute(f'DROP INDEX "{name}"')

    async def write(self, table: str, rows: list) -> None:
        if not rows:
            return
        cols = COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in cols)
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'
        self.conn.execute("BEGIN")
        self.conn.executemany(sql, rows)
        self.conn.execute("COMMIT")

    async def finish(self) -> None:
        for _name, sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


class PostgresWriter:
    def __init__(self, url: str):
        self.url = url
        self.conn = None

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(pg_dsn(self.url))
        await self.conn.execute("SET synchronous_commit = off")
        await self.conn.execute("SET maintenance_work_mem = '1GB'")
        # Plain indexes (not those behind a primary key or unique constraint) are dropped for
        # the load and built again from their own definitions at the end.
        self.indexes = await self.conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
            "current_schema() AND i.tablename = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM "
            "pg_constraint c WHERE c.conname = i.indexname)", list(FILLED_TABLES))
        for row in self.indexes:
            await self.conn.execute(f'DROP INDEX "{row["indexname"]}"')

    async def write(self, table: str, rows: list) -> None:
        if rows:
            await self.conn.copy_records_to_table(table, records=rows,
                                                  columns=list(COLUMNS[table]))

    async def finish(self) -> None:
        for row in self.indexes:
            await self.conn.execute(row["indexdef"])
        for table in ("case_", "person", "identity"):
            await self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))")
        # What autovacuum and the checkpointer do soon after a bulk load; done here so that
        # the timing does not depend on when they happen to run.
        await self.conn.execute("VACUUM ANALYZE")
        await self.conn.execute("CHECKPOINT")
        await self.conn.close()


async def prepare_database(url: str) -> None:
    if is_postgres(url):
        import asyncpg

        name = pg_dsn(url).rsplit("/", 1)[1]
        if name in ("test", "postgres", "template0", "template1"):
            sys.exit(f"Refusing to drop the database {name!r}: use a dedicated one such as "
                     "gridlink_bench.")
        admin = await asyncpg.connect(pg_dsn(url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
    # Puts the categories and departments in too.
    await db.migrate(url)


async def drop_database(url: str) -> None:
    import asyncpg

    name = pg_dsn(url).rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def fill(url: str, cases: int, open_: int, seed: int, workers: int
               ) -> tuple[World, dict[str, int]]:
    global _GENERATOR
    sqlite = not is_postgres(url)
    now = datetime.now(UTC)
    gen = _GENERATOR = Generator(cases, open_, seed, now, sqlite)
    world = World(now=now, roads=gen.roads, persons=gen.persons,
                  identity_keys=[key for _kind, key in gen.identities], cases=cases,
                  open_cases=open_)
    if sqlite:
        writer = SqliteWriter(url)
    else:
        writer = PostgresWriter(url)
        await writer.open()
    counts: Counter[str] = Counter()
    persons, identities = gen.people()
    await writer.write("person", persons)
    await writer.write("identity", identities)
    counts.update(person=len(persons), identity=len(identities))
    del persons, identities
    points: dict[str, list] = {}
    n_chunks = math.ceil(cases / CHUNK)
    # Forked workers generate chunks (CPU-bound) while this process writes them.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for chunk in pool.imap(_chunk_in_worker, range(n_chunks)):
            await writer.write("case_", chunk.cases)
            await writer.write("report", chunk.reports)
            await writer.write("subscription", chunk.subscriptions)
            await writer.write("case_event", chunk.events)
            await writer.write("case_key", chunk.keys)
            counts.update(case_=len(chunk.cases), report=len(chunk.reports),
                          subscription=len(chunk.subscriptions), case_event=len(chunk.events),
                          case_key=len(chunk.keys))
            for key, point in chunk.points.items():
                seen = points.get(key)
                if seen is None:
                    points[key] = point
                else:
                    seen[2] += point[2]
            world.recent_open.extend(chunk.recent_open)
            if counts["case_"] % 200_000 < CHUNK:
                print(f"  ... {counts['case_']:,} cases", flush=True)
    await writer.write("address_point", [(k, v[0], v[1], min(v[2], 50))
                                         for k, v in points.items()])
    world.known_addresses = [(v[3], v[4]) for v in points.values()]
    counts["address_point"] = len(points)
    await writer.write("daily_counter", list(gen.counters.items()))
    await writer.finish()
    # The bulk load's gigabytes out of the page cache now, not under the timed part.
    os.sync()
    return world, dict(counts)


async def load_world(url: str, seed: int) -> World:
    """The world of a database this bench filled before (--reuse)."""
    from tortoise import connections

    roads = make_roads(random.Random(seed))
    by_name = {road.name: i for i, road in enumerate(roads)}
    now = datetime.now(UTC)
    await db.init_db(url)
    try:
        conn = connections.get("default")
        pg = conn.capabilities.dialect == "postgres"
        # The filled reporters only, not those an earlier run's submissions added.
        rows = await conn.execute_query_dict("SELECT key FROM identity ORDER BY id")
        keys = [r["key"] for r in rows if r["key"].split(":", 1)[0] in KINDS]
        since = now - timedelta(days=4)
        rows = await conn.execute_query_dict(
            "SELECT lat, lng, category, address_keys FROM case_ WHERE status IN "
            "('new', 'accepted', 'dispatched', 'in_progress', 'resolved') AND lat IS NOT NULL "
            f"AND first_reported_at >= {'$1' if pg else '?'}", [since])
        rng = random.Random(seed)
        world = World(now=now, roads=roads, persons=len(keys), identity_keys=keys)
        total = await conn.execute_query_dict(
            "SELECT COUNT(*) AS n, SUM(CASE WHEN status IN ('new', 'accepted', 'dispatched', "
            "'in_progress', 'resolved') THEN 1 ELSE 0 END) AS open FROM case_")
        world.cases, world.open_cases = total[0]["n"], total[0]["open"]
        for r in rows:
            road, _, number = (r["address_keys"] or "").partition("|")[0].partition("#")
            if road in by_name and number.isdigit():
                spot = (by_name[road], int(number))
            else:
                spot = (rng.randrange(len(roads)), house_number(rng))
            world.recent_open.append((r["lat"], r["lng"], r["category"], *spot))
        for r in await conn.execute_query_dict("SELECT key FROM address_point"):
            road, _, number = r["key"].partition("#")
            if road in by_name and number.isdigit():
                world.known_addresses.append((by_name[road], int(number)))
        return world
    finally:
        await db.close_db()


# --------------------------------------------------------------------------------------------
# The timed submit() mix
# --------------------------------------------------------------------------------------------

MIX = (("new", 40), ("near_open", 25), ("repeat", 10), ("address_only", 15), ("wechat_near", 10))


def submissions(world: World, n: int, seed: int, run: str) -> list[tuple[str, Submission]]:
    """A realistic mix; each new reporter is distinct, a third are people who reported before."""
    rng = random.Random(seed)
    out: list[tuple[str, Submission]] = []
    earlier: list[Submission] = []
    for i in range(n):
        kind = weighted(rng, MIX)
        if kind == "repeat" and not earlier:
            kind = "new"
        if rng.random() < 0.3:
            reporter = world.identity_keys[rng.randrange(world.persons)]
            if reporter.startswith("hotline:"):
                reporter = f"web:bench-{run}-{i}@example.org"
        else:
            reporter = rng.choice((f"tg:{9_000_000_000 + i}", f"wx:bench{run}{i:08d}",
                                   f"web:bench-{run}-{i}@example.org"))
        channel = {"tg": "telegram", "wx": "wechat", "web": "web"}[reporter.split(":")[0]]
        if kind == "repeat":
            first = earlier[rng.randrange(max(0, len(earlier) - 50), len(earlier))]
            sub = Submission(reporter=first.reporter, channel=first.channel,
                             text=first.text + rng.choice(("", "！", " 还没人处理。")),
                             category=first.category, lat=first.lat, lng=first.lng,
                             crs=first.crs, address=first.address)
        elif kind in ("near_open", "wechat_near") and world.recent_open:
            lat, lng, category, road_ix, number = rng.choice(world.recent_open)
            road = world.roads[road_ix]
            lat, lng = jitter(rng, lat, lng, 25.0)
            crs = "wgs84"
            if kind == "wechat_near":
                channel, reporter, crs = "wechat", f"wx:bench{run}{i:08d}", "gcj02"
                lat, lng = geo.wgs84_to_gcj02(lat, lng)
            sub = Submission(reporter=reporter, channel=channel, category=category,
                             text=describe(rng, category, f"{road.name}{number}号"),
                             lat=lat, lng=lng, crs=crs)
        elif kind == "address_only" and world.known_addresses:
            road_ix, number = rng.choice(world.known_addresses)
            road = world.roads[road_ix]
            category = rng.choices(CATEGORY_KEYS, CATEGORY_WEIGHTS)[0]
            sub = Submission(reporter=reporter, channel=channel, category=category,
                             text=describe(rng, category, f"{road.name}{number}号"),
                             address=f"上海市{rng.choice(DISTRICTS)}{road.name}{number}号")
        else:
            kind = "new"
            road_ix = rng.randrange(len(world.roads))
            road, number = world.roads[road_ix], house_number(rng)
            lat, lng = jitter(rng, *road.point(number), 20.0)
            category = rng.choices(CATEGORY_KEYS, CATEGORY_WEIGHTS)[0]
            with_address = rng.random() < 0.5
            sub = Submission(reporter=reporter, channel=channel, category=category,
                             text=describe(rng, category, f"{road.name}{number}号"),
                             lat=lat, lng=lng,
                             address=f"上海市{road.name}{number}号" if with_address else None)
        earlier.append(sub)
        out.append((kind, sub))
    return out


def run_like_server(coro):
    """On uvloop when it is installed, as uvicorn runs the product."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def time_submits(url: str, world: World, n: int, warmup: int, seed: int
                       ) -> tuple[list[float], Counter[str], Counter[str]]:
    from portal.intake.service import submit
    from portal.intake.throttle import Throttle, storage_for
    from portal.settings import Settings

    settings = Settings(database_url=url)
    # The product's default limits; reporters are distinct enough never to reach them.
    throttle = Throttle(storage_for(""), settings.throttle_new_reports,
                        namespace=f"bench-{seed}")
    mix = submissions(world, warmup + n, seed, run=f"s{seed}")
    await db.init_db(url)
    times: list[float] = []
    kinds: Counter[str] = Counter()
    joins: Counter[str] = Counter()
    try:
        for i, (kind, sub) in enumerate(mix):
            t0 = time.perf_counter()
            try:
                receipt = await submit(sub, throttle=throttle, settings=settings)
                join = receipt.join
            except Throttled:
                join = "throttled"
            elapsed = time.perf_counter() - t0
            if i >= warmup:
                times.append(elapsed * 1000)
                kinds[kind] += 1
                joins[join] += 1
    finally:
        await db.close_db()
    return times, kinds, joins


# --------------------------------------------------------------------------------------------
# HTTP: a real uvicorn server, concurrent clients
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of its children (uvicorn's workers), as they run."""
    total = 0.0
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += process_cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def postgres_cpu_seconds(database: str | None) -> float:
    """CPU seconds of the PostgreSQL backends connected to `database` (their process title
    names it; other sessions' backends on the same server are not counted); 0 without one."""
    total = 0.0
    if not database:
        return total
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres: ") or f" {database} " not in title:
                continue
            fields_ = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


async def create_bench_objects(url: str) -> str:
    from tortoise import connections

    from portal.staff.service import create_api_key

    await db.init_db(url)
    try:
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            await conn.execute_script(
                "CREATE TABLE IF NOT EXISTS bench_insert (id BIGSERIAL PRIMARY KEY, "
                "body TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL)")
        else:
            await conn.execute_script(
                "CREATE TABLE IF NOT EXISTS bench_insert (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "body TEXT NOT NULL, created_at TIMESTAMP NOT NULL)")
        return (await create_api_key("bench", "open311"))[1]
    finally:
        await db.close_db()


def encode_posts(base: str, path: str, forms: list[dict]) -> list[bytes]:
    """Form POSTs as bytes on the wire, built before the clock starts."""
    host = base.removeprefix("http://")
    out = []
    for form in forms:
        body = urlencode(form).encode()
        out.append(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


async def drive(base: str, requests: list[bytes], concurrency: int, server_pid: int,
                database: str | None = None) -> tuple[float, Counter[int], float, float, float]:
    """Send every request once over `concurrency` keep-alive connections; requests/s, status
    counts, server CPU%, this process's CPU% and the CPU% of the PostgreSQL backends of
    `database` (none on SQLite, which runs in the server).

    A few lines of asyncio rather than an HTTP client library: at a few hundred requests per
    second httpx took a whole core on this 2-core machine and became what was measured."""
    host, port = base.removeprefix("http://").split(":")
    queue = list(reversed(requests))
    statuses: Counter[int] = Counter()

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while queue:
                writer.write(queue.pop())
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[int(head[9:12])] += 1
                length = _CONTENT_LENGTH.search(head)
                if length is None:
                    raise RuntimeError(f"no Content-Length in {head[:200]!r}")
                await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()

    cpu0, t0, own0 = process_cpu_seconds(server_pid), time.perf_counter(), time.process_time()
    db0 = postgres_cpu_seconds(database)
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = (process_cpu_seconds(server_pid) - cpu0) / elapsed * 100
    client_cpu = (time.process_time() - own0) / elapsed * 100
    db_cpu = (postgres_cpu_seconds(database) - db0) / elapsed * 100
    return len(requests) / elapsed, statuses, cpu, client_cpu, db_cpu


def open311_forms(world: World, n: int, seed: int, api_key: str, run: str) -> list[dict]:
    forms = []
    for i, (_kind, sub) in enumerate(submissions(world, n, seed, run)):
        lat, lng = sub.lat, sub.lng
        if lat is None:  # Open311 clients send a point; address-only reports come by hotline
            road_ix, number = world.known_addresses[i % len(world.known_addresses)]
            lat, lng = world.roads[road_ix].point(number)
        elif sub.crs == "gcj02":
            lat, lng = geo.gcj02_to_wgs84(lat, lng)
        form = {"api_key": api_key, "service_code": sub.category, "lat": f"{lat:.6f}",
                "long": f"{lng:.6f}", "description": sub.text}
        if i % 2:
            form["email"] = f"o311-{run}-{i}@example.org"
        else:
            form["device_id"] = f"bench-{run}-{i:08d}"
        if sub.address:
            form["address_string"] = sub.address
        forms.append(form)
    return forms


async def wait_ready(base: str, proc: subprocess.Popen, limit_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("uvicorn did not start")


def http_bench(url: str, world: World, requests: int, concurrency: int, seed: int,
               rounds: int, profile: str | None = None, workers: int = 1) -> dict:
    api_key = asyncio.run(create_bench_objects(url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, GRIDLINK_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "uvicorn", "intake_app:app", "--app-dir", str(ROOT / "bench"),
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
           "--log-level", "warning", "--workers", str(workers)]
    print("  server: " + " ".join(cmd[2:]), flush=True)
    if profile:
        # Sampled for the whole life of the server (both endpoints), as collapsed stacks.
        spy = Path(sys.executable).with_name("py-spy")
        cmd = [str(spy), "record", "--format", "raw", "--rate", "250", "--subprocesses",
               "-o", profile, "--", *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        database = pg_dsn(url).rsplit("/", 1)[1] if is_postgres(url) else None
        return run_like_server(_http_rounds(base, proc, world, requests, concurrency, seed,
                                            rounds, api_key, database))
    finally:
        server = server_pid(proc)
        os.kill(server, signal.SIGINT)  # under py-spy: the server; py-spy then writes and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_pid(proc: subprocess.Popen) -> int:
    """The uvicorn process: `proc` itself, or its child when py-spy started it."""
    if Path(proc.args[0]).name != "py-spy":
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    for _ in range(100):
        pids = children.read_text().split() if children.exists() else []
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    return proc.pid


async def _http_rounds(base: str, proc: subprocess.Popen, world: World, requests: int,
                       concurrency: int, seed: int, rounds: int, api_key: str,
                       database: str | None) -> dict:
    result: dict = {"bare": [], "open311": [], "bare_cpu": [], "open311_cpu": []}
    await wait_ready(base, proc)
    pid = server_pid(proc)
    warm = max(50, concurrency * 4)
    for r in range(rounds):
        bare = encode_posts(base, "/bench/insert",
                            [{"n": str(i), "note": "bench"} for i in range(requests + warm)])
        o311 = encode_posts(base, "/open311/v2/requests.json",
                            open311_forms(world, requests + warm, seed + 1000 * (r + 1),
                                          api_key, run=f"h{seed}r{r}"))
        for key, label, posts in (("bare", "bare insert ", bare), ("open311", "open311 POST", o311)):
            await drive(base, posts[:warm], concurrency, pid)
            rps, statuses, cpu, client_cpu, db_cpu = await drive(base, posts[warm:],
                                                                 concurrency, pid, database)
            print(f"  round {r + 1}: {label} {rps:8.1f} req/s  server CPU {cpu:4.0f}% "
                  f"({cpu / rps * 10:.2f} ms a request){_db_cpu(db_cpu, rps)}  "
                  f"clients CPU {client_cpu:4.0f}%  {dict(statuses)}", flush=True)
            result[key].append(rps)
            result[f"{key}_cpu"].append(cpu)
        # Counted on the open311 pass, the last of the loop.
        ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
        if ok != requests:
            result.setdefault("errors", Counter()).update(statuses)
    result["public_list"] = await time_public_list(base)
    return result


# The public list's shapes: its default (the last 90 days, newest first), filters, a deep page.
PUBLIC_LIST_QUERIES = {
    "default": "",
    "status=open": "?status=open",
    "two services": "?service_code=manhole,street_light",
    "page 400 of 200": "?page=400&page_size=200",
    "a past span": "?start_date=2025-06-01T00:00:00%2B08:00&end_date=2025-08-01T00:00:00%2B08:00",
}


async def time_public_list(base: str, repeat: int = 20) -> dict[str, float]:
    """GET requests.json one at a time, as anyone may call it: p50 in ms per query shape."""
    import httpx

    out = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for name, query in PUBLIC_LIST_QUERIES.items():
            times = []
            for _ in range(repeat + 2):
                t0 = time.perf_counter()
                res = await http.get("/open311/v2/requests.json" + query)
                times.append((time.perf_counter() - t0) * 1000)
                res.raise_for_status()
            times = times[2:]
            out[name] = pct(times, 0.5)
            print(f"  GET requests.json{query or ''}: p50 {out[name]:.1f} ms, max "
                  f"{max(times):.1f} ms ({name}, {repeat} one at a time)", flush=True)
    return out


def _db_cpu(cpu: float, rps: float) -> str:
    return f"  PostgreSQL CPU {cpu:4.0f}% ({cpu / rps * 10:.2f} ms a request)" if cpu else ""


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--submits", type=int, default=2000, help="timed submit() calls")
    parser.add_argument("--warmup", type=int, default=100, help="untimed submit() calls first")
    parser.add_argument("--requests", type=int, default=3000, help="HTTP requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="bare/Open311 rounds")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--mix-seed", type=int, default=None,
                        help="seed of the submit() mix and the HTTP requests (default: --seed; "
                             "with --reuse a new one each run, so that a reused database never "
                             "sees the same reporters and places again)")
    parser.add_argument("--fill-workers", type=int, default=os.cpu_count() or 2,
                        help="processes generating the history")
    parser.add_argument("--reuse", action="store_true",
                        help="skip the fill: time against a database filled (and --keep'd) by an "
                             "earlier run; implies --keep")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (PostgreSQL only: SQLite has one writer)")
    parser.add_argument("--profile-server", metavar="FILE", default=None,
                        help="run the server under py-spy, collapsed stacks to FILE")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (temporary SQLite directory or PostgreSQL db)")
    args = parser.parse_args()

    tmpdir = None
    url = args.database_url
    if url is None:
        tmpdir = tempfile.mkdtemp(prefix="gridlink-bench-")
        url = f"sqlite://{tmpdir}/bench.sqlite3"
    engine = "postgres" if is_postgres(url) else "sqlite"
    if engine == "sqlite" and args.workers != 1:
        sys.exit("SQLite has a single writer: one uvicorn worker (DESIGN.md, Where it runs).")
    if args.reuse:
        args.keep = True
    elif engine == "sqlite" and Path(url.removeprefix("sqlite://")).exists():
        sys.exit("The SQLite file exists already; give a new path (the bench fills it).")
    if args.mix_seed is None:
        args.mix_seed = args.seed if not args.reuse else int(time.time()) % 1_000_000
    print(f"Gridlink intake bench: {engine}, {args.cases:,} cases ({args.open:,} open), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, mix seed {args.mix_seed}")
    try:
        t0 = time.perf_counter()
        if args.reuse:
            world = asyncio.run(load_world(url, args.seed))
            fill_s = float("nan")
            print(f"reusing the filled database: {len(world.recent_open):,} recent open cases")
        else:
            asyncio.run(prepare_database(url))
            world, counts = asyncio.run(fill(url, args.cases, args.open, args.seed,
                                             args.fill_workers))
            fill_s = time.perf_counter() - t0
            print(f"fill: {fill_s:.1f} s  " + ", ".join(f"{t} {n:,}" for t, n in counts.items()),
                  flush=True)

        times, kinds, joins = run_like_server(
            time_submits(url, world, args.submits, args.warmup, args.mix_seed))
        print(f"submit(): {len(times)} timed calls after {args.warmup} untimed; "
              f"mix {dict(kinds)}; outcome {dict(joins)}")
        p50, p90, p99 = pct(times, 0.5), pct(times, 0.9), pct(times, 0.99)
        print(f"  p50={p50:.2f} ms  p90={p90:.2f} ms  p99={p99:.2f} ms  max={max(times):.2f} ms  "
              f"mean={statistics.fmean(times):.2f} ms", flush=True)

        http = None
        if not args.skip_http:
            print(f"HTTP: {args.requests} requests per endpoint per round, "
                  f"{args.concurrency} concurrent clients, each Open311 request from its own "
                  "reporter")
            http = http_bench(url, world, args.requests, args.concurrency, args.mix_seed,
                              args.rounds, args.profile_server, args.workers)
        print()
        volume = f"{engine}, {world.cases} cases, {world.open_cases} open"
        if not args.reuse:
            print(f"fill {fill_s:.1f}s ({volume})")
        print(f"submit p50={p50:.1f}ms p90={p90:.1f}ms p99={p99:.1f}ms max={max(times):.1f}ms "
              f"({volume})")
        goals = [f"p99<=10ms {'met' if p99 <= 10.0 else 'NOT met'} ({p99:.1f}ms)"]
        if http is not None:
            o311, bare = statistics.fmean(http["open311"]), statistics.fmean(http["bare"])
            ratio = o311 / bare
            print(f"open311 rps={o311:.0f} bare rps={bare:.0f} ratio={ratio:.2f} "
                  f"({engine}, concurrency {args.concurrency})")
            goals.append(f"open311/bare>=0.60 {'met' if ratio >= 0.6 else 'NOT met'} "
                          f"({ratio:.2f})")
            if http.get("errors"):
                print(f"open311 errors: {dict(http['errors'])}")
            print("public list p50: " + ", ".join(
                f"{name} {ms:.0f}ms" for name, ms in http["public_list"].items()))
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
              "(others' processes share them)")
        print("goals: " + "; ".join(goals))
    finally:
        if not args.keep:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            elif is_postgres(url):
                asyncio.run(drop_database(url))
        elif tmpdir:
            print(f"kept {url}")


if __name__ == "__main__":
    main()
