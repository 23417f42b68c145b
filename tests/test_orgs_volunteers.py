"""Volunteers: registering on the web, the discoveries sweep and its points, the leaderboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise import connections

from orgs.accounts.service import identity_key
from orgs.registry import service as registry
from orgs.volunteers import service
from orgs.volunteers.jobs import discoveries
from orgs.volunteers.models import Discovery, PointsEntry, Volunteer
from portal.cases.models import Status, Subscription
from portal.cases.service import change_status
from portal.intake.service import submit
from portal.intake.submission import Submission
from tests import orgs_setup

T0 = datetime.now(UTC) - timedelta(hours=1)


async def test_register_on_the_web(app, client):
    grid = await orgs_setup.area()
    street_grid = await orgs_setup.area("HP-G02", "黄浦第二网格")
    r = await client.get("/volunteer")
    assert r.status_code == 303 and r.headers["location"].startswith("/account/login")
    acct = await orgs_setup.account("wang", display_name="老王")
    async with await orgs_setup.member_client(app, acct) as c:
        page = await c.get("/volunteer")
        assert page.status_code == 200 and "老王" in page.text and "黄浦第一网格" in page.text
        token = await orgs_setup.csrf_of(c, "/volunteer")
        form = {"csrf_token": token, "display_name": "王师傅", "home_area_id": str(grid.id),
                "consent": "1"}
        for bad in ({"consent": ""}, {"home_area_id": "abc"}, {"home_area_id": "999999"},
                    {"display_name": ""}, {"display_name": "x" * 40},
                    {"display_name": "\x00\x01"}):
            r = await c.post("/volunteer", data={**form, **bad})
            assert r.status_code == 422, bad
        assert not await Volunteer.exists(person_id=acct.person_id)
        assert (await c.post("/volunteer", data={k: v for k, v in form.items()
                                                 if k != "csrf_token"})).status_code == 403
        r = await c.post("/volunteer", data=form)
        assert r.status_code == 201 and "志愿者" in r.text
        r = await c.post("/volunteer", data={**form, "home_area_id": str(street_grid.id)})
        assert r.status_code == 201
    v = await Volunteer.get(person_id=acct.person_id)
    assert (v.display_name, v.home_area_id, v.registered_via) == ("王师傅", street_grid.id, "web")
    assert await Volunteer.all().count() == 1


async def file(identity: str, text: str, lat: float, settings, throttle, **extra):
    return await submit(Submission(reporter=identity, channel="web", text=text,
                                   category="garbage", lat=lat, lng=121.4852, received_at=T0,
                                   extra=extra), throttle=throttle, settings=settings)


async def test_discoveries_sweep_confirms_and_awards_once(settings, throttle):
    grid = await orgs_setup.area()
    vol = await orgs_setup.account("vol")
    await service.register(vol.person_id, "巡河志愿者", grid.id, via="web", consent=True)
    other = await orgs_setup.account("other")
    org = await orgs_setup.organisation(1)
    member = await orgs_setup.account("orgmember", org=org, role="member")
    admin = await orgs_setup.account("orgadmin", org=org)
    vid = identity_key(vol.id)
    opened = await file(vid, "南京东路100号垃圾满了没人清", 31.2401, settings, throttle)
    # Someone else's case, that the volunteer then reports too: it counts, but earns nothing.
    theirs = await file(identity_key(other.id), "福州路300号井盖破损很危险", 31.2501, settings,
                        throttle)
    joined = await file(vid, "福州路300号井盖破损很危险啊", 31.2501, settings, throttle)
    assert joined.join != "new" and joined.case_id == theirs.case_id
    rejected = await file(vid, "九江路20号路灯不亮了", 31.2601, settings, throttle)
    by_org = await file(identity_key(member.id), "汉口路5号垃圾堆积", 31.2701, settings,
                        throttle, organisation_id=org.id)
    await file(identity_key(other.id), "四川中路8号树枝断了", 31.2801, settings, throttle)

    assert await discoveries(settings) == 4
    assert await discoveries(settings) == 0
    made = {d.report_id: d for d in await Discovery.all()}
    assert set(made) == {opened.report_id, joined.report_id, rejected.report_id,
                         by_org.report_id}
    assert made[by_org.report_id].organisation_id == org.id
    # The organisation's admin follows the case its member reported; the member reported it.
    followers = await Subscription.filter(case_id=by_org.case_id).values_list(
        "person_id", "reason")
    assert sorted(followers) == sorted([(admin.person_id, "follower"),
                                        (member.person_id, "reporter")])
    assert made[opened.report_id].opened_case and not made[joined.report_id].opened_case

    await change_status(opened.case_id, Status.ACCEPTED, actor="staff:op")
    await change_status(theirs.case_id, Status.ACCEPTED, actor="staff:op")
    await change_status(rejected.case_id, Status.REJECTED, actor="staff:op",
                        reason="不在辖区", public_note="不在辖区")
    assert await discoveries(settings) == 3
    assert await discoveries(settings) == 0
    statuses = {d.report_id: d.status for d in await Discovery.all()}
    assert statuses == {opened.report_id: "confirmed", joined.report_id: "confirmed",
                        rejected.report_id: "rejected", by_org.report_id: "pending"}
    entries = await PointsEntry.filter(person_id=vol.person_id)
    assert [(e.kind, e.ref, e.points, e.area_id) for e in entries] == [
        ("discovery", f"report:{opened.report_id}", 10, grid.id)]


async def test_sweep_resumes_from_its_cursor(settings, throttle):
    grid = await orgs_setup.area()
    vol = await orgs_setup.account("resume")
    await service.register(vol.person_id, "阿明", grid.id, via="web", consent=True)
    await file(identity_key(vol.id), "北京东路1号消防栓漏水", 31.2301, settings, throttle)
    assert await discoveries(settings) == 1
    await file(identity_key(vol.id), "北京东路99号垃圾桶倒了", 31.2331, settings, throttle)
    assert await discoveries(settings) == 1
    assert await Discovery.all().count() == 2


async def points(acct, n: int, ref: str, when: datetime | None = None) -> None:
    await service.award(connections.get("default"), acct.person_id, "adjust", ref, n, None,
                        when or datetime.now(UTC))


async def test_leaderboard_orders_and_masks(app, client):
    street = await registry.add_area("HP", "黄浦街道", "Huangpu", "street")
    g1 = await orgs_setup.area("HP-G01", parent=street)
    g2 = await orgs_setup.area("HP-G02", "黄浦第二网格", parent=street)
    other_grid = await orgs_setup.area("JA-G01", "静安第一网格")
    people = {}
    for name, grid, phone in (("amy", g1, "13812348000"), ("bo", g1, None),
                              ("cy", g2, "13912345678"), ("far", other_grid, None)):
        acct = await orgs_setup.account(name, phone=phone)
        await service.register(acct.person_id, f"{name}-名", grid.id, via="web", consent=True)
        people[name] = acct
    await points(people["amy"], 10, "a1")
    await points(people["amy"], 5, "a2", datetime.now(UTC) - timedelta(days=400))
    await points(people["bo"], 30, "b1")
    await points(people["cy"], 10, "c1")
    await points(people["far"], 99, "f1")
    # A display name that cannot be shown: the fallback is masked.
    await Volunteer.filter(person_id=people["cy"].person_id).update(display_name="   ")

    r = await client.get("/volunteers/leaderboard?area=HP&period=month&lang=en")
    assert r.status_code == 200
    text = r.text
    assert text.index("bo-名") < text.index("amy-名")
    assert "139****5678" in text and "13912345678" not in text and "13812348000" not in text
    assert "far-名" not in text
    t = lambda s: s  # noqa: E731
    rows = await service.leaderboard(g1, "all", t)
    assert [(r.rank, r.name, r.points) for r in rows] == [(1, "bo-名", 30), (2, "amy-名", 15)]
    rows = await service.leaderboard(street, "month", t)
    assert [(r.rank, r.points) for r in rows] == [(1, 30), (2, 10), (2, 10)]
    async with await orgs_setup.member_client(app, people["amy"]) as c:
        r = await c.get("/volunteers/leaderboard?area=HP-G01&period=year&lang=en")
        assert "Your rank: 2 (10 points)" in r.text
    for bad in ("?period=decade", "?area=nowhere", "?area=%00"):
        assert 400 <= (await client.get("/volunteers/leaderboard" + bad)).status_code < 500
