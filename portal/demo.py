"""A few demo cases around 南京东路, filed through the real intake."""

from __future__ import annotations

from portal.cases.models import Report
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.intake.throttle import Throttle, storage_for
from portal.settings import get_settings

DEMO = (
    ("web:demo-1@example.org", "garbage", "南京东路100号门口垃圾堆了三天，没人清运。",
     31.2394, 121.4842, "上海市黄浦区南京东路100号"),
    ("web:demo-2@example.org", "street_light", "河南中路福州路路口路灯不亮，晚上很黑。",
     31.2361, 121.4836, "黄浦区河南中路福州路路口"),
    ("web:demo-3@example.org", "illegal_parking", "九江路200号门口有车长期占用人行道。",
     31.2377, 121.4815, None),
    ("web:demo-4@example.org", "garbage", "南京东路100号门口的垃圾还在，味道很大。",
     31.23945, 121.48425, None),
)


async def demo_cases() -> None:
    if await Report.filter(identity__startswith="web:demo-").exists():
        return
    throttle = Throttle(storage_for(""), "100/minute")
    for reporter, category, text, lat, lng, address in DEMO:
        await submit(Submission(reporter=reporter, channel="web", text=text, category=category,
                                lat=lat, lng=lng, address=address),
                     throttle=throttle, settings=get_settings())
