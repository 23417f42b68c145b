"""Claimable tasks: places never over-claimed under concurrency, one place per claimant,
withdraw, the release sweep, cancelling, who may claim, and bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from feedback.models import PersonNotice
from orgs.registry import service as registry
from orgs.tasks import service
from orgs.tasks.jobs import release_due
from orgs.tasks.models import Claim, ClaimTask
from orgs.volunteers import service as volunteers
from orgs.volunteers.models import PointsEntry
from tests import orgs_setup
from tests.staff import create_staff


def now() -> datetime:
    return datetime.now(UTC)


async def task(places: int = 5, *, who: str = "any", training: bool = False,
               starts_in: timedelta = timedelta(hours=2), points: int = 5) -> ClaimTask:
    grid = await orgs_setup.area()
    starts = now() + starts_in
    return await service.create_task(service.NewTask(
        title="清理楼道杂物", description="三号楼", service_type="cleaning", area_id=grid.id,
        places=places, who=who, requires_training=training, starts_at=starts,
        ends_at=starts + timedelta(hours=2), points=points), actor="staff:op", grace_minutes=30)


async def volunteer(username: str, phone: str | None = None):
    acct = await orgs_setup.account(username, phone=phone)
    grid = await orgs_setup.area()
    await volunteers.register(acct.person_id, username, grid.id, via="web", consent=True)
    return acct


async def claim_over_http(app, acct, task_id: int, as_org: bool = False):
    async with await orgs_setup.member_client(app, acct) as c:
        token = await orgs_setup.csrf_of(c, "/volunteer")
        return await c.post(f"/tasks/{task_id}/claim", data={
            "csrf_token": token, "as": "org" if as_org else "person"})


async def test_twenty_claim_five_places_at_once(app):
    t = await task(places=5)
    accounts = [await volunteer(f"v{i:02d}") for i in range(20)]
    clients = [await orgs_setup.member_client(app, a) for a in accounts]
    tokens = [await orgs_setup.csrf_of(c, "/volunteer") for c in clients]
    for c in clients:
        c.cookies["gl_lang"] = "en"
    answers = await asyncio.gather(*(
        c.post(f"/tasks/{t.id}/claim", data={"csrf_token": tok, "as": "person"})
        for c, tok in zip(clients, tokens, strict=True)))
    for c in clients:
        await c.aclose()
    assert sorted(r.status_code for r in answers) == [303] * 5 + [409] * 15
    refused = next(r for r in answers if r.status_code == 409)
    assert "All places of this task are taken." in refused.text
    await t.refresh_from_db()
    assert t.claimed == 5 == await service.holders(t.id)


async def test_concurrent_claims_through_the_service(app):
    # Straight at the database, with each claim in its own task of the event loop.
    t = await task(places=3)
    accounts = [await volunteer(f"s{i:02d}") for i in range(12)]
    results = await asyncio.gather(*(service.claim(t.id, a) for a in accounts),
                                   return_exceptions=True)
    assert sum(isinstance(r, Claim) for r in results) == 3
    assert all(isinstance(r, service.TaskError) for r in results if not isinstance(r, Claim))
    await t.refresh_from_db()
    assert t.claimed == 3 == await service.holders(t.id)


async def test_same_claimant_twice_holds_one_place(app):
    t = await task(places=5)
    acct = await volunteer("twice")
    answers = await asyncio.gather(claim_over_http(app, acct, t.id),
                                   claim_over_http(app, acct, t.id))
    assert sorted(r.status_code for r in answers) == [303, 409]
    await t.refresh_from_db()
    assert t.claimed == 1 == await Claim.filter(task_id=t.id).count()


async def test_withdraw_frees_the_place(app):
    t = await task(places=1)
    first, second = await volunteer("first"), await volunteer("second")
    assert (await claim_over_http(app, first, t.id)).status_code == 303
    assert (await claim_over_http(app, second, t.id)).status_code == 409
    row = await Claim.get(task_id=t.id)
    async with await orgs_setup.member_client(app, second) as c:
        token = await orgs_setup.csrf_of(c, "/volunteer")
        # Someone else's claim: not theirs to withdraw.
        r = await c.post(f"/tasks/{t.id}/withdraw", data={"csrf_token": token,
                                                          "claim": str(row.id)})
        assert r.status_code == 404
    async with await orgs_setup.member_client(app, first) as c:
        token = await orgs_setup.csrf_of(c, "/volunteer")
        r = await c.post(f"/tasks/{t.id}/withdraw", data={"csrf_token": token,
                                                          "claim": str(row.id)})
        assert r.status_code == 303
        c.cookies["gl_lang"] = "en"
        page = await c.get(r.headers["location"])
        assert "Your place was given back." in page.text
    assert (await claim_over_http(app, second, t.id)).status_code == 303
    await t.refresh_from_db()
    assert t.claimed == 1


async def test_release_sweep_releases_once_and_tells(app, settings):
    t = await task(places=2, starts_in=timedelta(minutes=10))
    a, b = await volunteer("late"), await volunteer("early")
    late = await service.claim(t.id, a)
    early = await service.claim(t.id, b)
    await service.start(early.id, b)
    # The grace has passed: start_by moved into the past.
    await ClaimTask.filter(id=t.id).update(start_by=now() - timedelta(minutes=1))
    assert await release_due(settings) == 1
    assert await release_due(settings) == 0
    await late.refresh_from_db()
    assert late.status == "released" and late.active_key is None
    await t.refresh_from_db()
    assert t.claimed == 1 == await service.holders(t.id)
    notices = await PersonNotice.filter(person_id=a.person_id, topic="claim.released")
    assert len(notices) == 1 and t.title in notices[0].texts["zh-CN"]["title"]
    with pytest.raises(service.TaskError):
        await service.start(late.id, a)


async def test_cancel_releases_and_notifies(app):
    t = await task(places=3)
    a, b = await volunteer("ca"), await volunteer("cb")
    await service.claim(t.id, a)
    await service.claim(t.id, b)
    await create_staff()
    async with await orgs_setup.staff_client(app, "op") as c:
        token = await orgs_setup.csrf_of(c, f"/staff/tasks/{t.id}")
        r = await c.post(f"/staff/tasks/{t.id}/cancel", data={"csrf_token": token,
                                                              "reason": ""})
        assert r.status_code == 303
        await t.refresh_from_db()
        assert t.status == "open"
        r = await c.post(f"/staff/tasks/{t.id}/cancel", data={"csrf_token": token,
                                                              "reason": "暴雨改期"})
        assert r.status_code == 303
    await t.refresh_from_db()
    assert t.status == "cancelled" and t.claimed == 0
    assert set(await Claim.filter(task_id=t.id).values_list("status", flat=True)) == {
        "cancelled"}
    for acct in (a, b):
        notice = await PersonNotice.get(person_id=acct.person_id, topic="task.cancelled")
        assert "暴雨改期" in notice.texts["zh-CN"]["body"]
        assert "暴雨改期" in notice.texts["en"]["body"]
    c = await volunteer("cc")
    with pytest.raises(service.TaskError):
        await service.claim(t.id, c)


async def test_who_and_training_refusals(app):
    only_orgs = await task(who="organisation")
    only_volunteers = await task(who="volunteer")
    trained = await task(training=True)
    vol = await volunteer("vol")
    r = await claim_over_http(app, vol, only_orgs.id)
    assert r.status_code == 403
    # A volunteer without training for cleaning.
    assert (await claim_over_http(app, vol, trained.id)).status_code == 403
    today = now().date()
    await registry.record_training(person_id=vol.person_id, service_type="cleaning",
                                   certificate_no="P-1", issued_by="街道",
                                   issued_at=today - timedelta(days=1),
                                   valid_until=today + timedelta(days=30), actor="staff:op")
    assert (await claim_over_http(app, vol, trained.id)).status_code == 303
    # An account that is not a volunteer.
    plain = await orgs_setup.account("plain")
    assert (await claim_over_http(app, plain, only_volunteers.id)).status_code == 403
    # Organisations: verified and (for a training task) trained.
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("admin1", org=org)
    assert (await claim_over_http(app, admin, only_volunteers.id, as_org=True)).status_code == 403
    assert (await claim_over_http(app, admin, only_orgs.id, as_org=True)).status_code == 303
    assert (await claim_over_http(app, admin, trained.id, as_org=True)).status_code == 303
    untrained = await orgs_setup.organisation(2, trained=False)
    admin2 = await orgs_setup.account("admin2", org=untrained)
    assert (await claim_over_http(app, admin2, trained.id, as_org=True)).status_code == 403
    pending = await orgs_setup.organisation(3, verified=False)
    admin3 = await orgs_setup.account("admin3", org=pending)
    assert (await claim_over_http(app, admin3, only_orgs.id, as_org=True)).status_code == 403
    member = await orgs_setup.account("member1", org=org, role="member")
    assert (await claim_over_http(app, member, only_orgs.id, as_org=True)).status_code == 403
    await only_orgs.refresh_from_db()
    assert only_orgs.claimed == 1


async def test_claimant_cannot_mark_done(app):
    # Claim, start and done at once would award the claimant the task's points: only an
    # operator marks a claim done (DESIGN §7).
    t = await task(places=2, starts_in=timedelta(minutes=10), points=1000)
    acct = await volunteer("doer")
    row = await service.claim(t.id, acct)
    async with await orgs_setup.member_client(app, acct) as c:
        token = await orgs_setup.csrf_of(c, "/volunteer")
        r = await c.post(f"/tasks/{t.id}/start", data={"csrf_token": token, "claim": str(row.id)})
        assert r.status_code == 303
        page = await c.get(f"/tasks/{t.id}")
        assert f"/tasks/{t.id}/done" not in page.text
        r = await c.post(f"/tasks/{t.id}/done", data={"csrf_token": token, "claim": str(row.id)})
        assert r.status_code == 404
    await row.refresh_from_db()
    assert row.status == "started"
    assert not await PointsEntry.filter(person_id=acct.person_id).exists()


async def test_operator_done_after_start_and_points_once(app):
    await create_staff()
    t = await task(places=2, starts_in=timedelta(minutes=10), points=7)
    acct = await volunteer("doer")
    row = await service.claim(t.id, acct)
    await service.start(row.id, acct)
    async with await orgs_setup.staff_client(app, "op") as c:
        c.cookies["gl_lang"] = "en"
        token = await orgs_setup.csrf_of(c, f"/staff/tasks/{t.id}")
        # The task has not begun: nobody can have done it yet.
        r = await c.post(f"/staff/claims/{row.id}/done", data={"csrf_token": token})
        assert r.status_code == 303
        page = await c.get(r.headers["location"])
        assert "The task has not started yet: nobody can have done it." in page.text
        assert not await PointsEntry.filter(person_id=acct.person_id).exists()
        await ClaimTask.filter(id=t.id).update(starts_at=now() - timedelta(minutes=5))
        assert f"/staff/claims/{row.id}/done" in (await c.get(f"/staff/tasks/{t.id}")).text
        for _ in range(2):
            r = await c.post(f"/staff/claims/{row.id}/done", data={"csrf_token": token})
            assert r.status_code == 303
    entries = await PointsEntry.filter(person_id=acct.person_id)
    assert [(e.kind, e.ref, e.points) for e in entries] == [("task", f"claim:{row.id}", 7)]
    await t.refresh_from_db()
    assert t.claimed == 1 == await service.holders(t.id)


async def test_withdrawals_racing_a_cancel(app):
    # Withdrawals and a cancel take the task's row and the claims' rows in the same order:
    # on PostgreSQL the opposite orders deadlocked.
    t = await task(places=12)
    accounts = [await volunteer(f"w{i:02d}") for i in range(12)]
    claims = [await service.claim(t.id, a) for a in accounts]
    results = await asyncio.gather(
        *(service.withdraw(c.id, a) for c, a in zip(claims, accounts, strict=True)),
        service.cancel_task(t.id, "暴雨改期", actor="staff:op"), return_exceptions=True)
    assert all(r is None or isinstance(r, int | service.TaskError) for r in results), results
    told = results[-1]
    assert isinstance(told, int)
    statuses = await Claim.filter(task_id=t.id).values_list("status", flat=True)
    assert set(statuses) <= {"cancelled", "withdrawn"}
    assert statuses.count("cancelled") == told
    await t.refresh_from_db()
    assert t.status == "cancelled"
    assert t.claimed == 0 == await service.holders(t.id)
    assert await PersonNotice.filter(topic="task.cancelled").count() == told


async def test_withdrawals_racing_the_sweeps(app, settings):
    t = await task(places=12, starts_in=timedelta(minutes=10))
    accounts = [await volunteer(f"r{i:02d}") for i in range(12)]
    claims = [await service.claim(t.id, a) for a in accounts]
    await ClaimTask.filter(id=t.id).update(start_by=now() - timedelta(minutes=1))
    results = await asyncio.gather(
        *(service.withdraw(c.id, a) for c, a in zip(claims, accounts, strict=True)),
        release_due(settings), return_exceptions=True)
    assert all(r is None or isinstance(r, int | service.TaskError) for r in results), results
    await t.refresh_from_db()
    assert t.claimed == 0 == await service.holders(t.id)
    assert set(await Claim.filter(task_id=t.id).values_list("status", flat=True)) <= {
        "released", "withdrawn"}


async def test_too_early_to_start(app):
    t = await task(starts_in=timedelta(hours=5))
    acct = await volunteer("eager")
    row = await service.claim(t.id, acct)
    with pytest.raises(service.TaskError):
        await service.start(row.id, acct)


async def test_staff_creates_and_settles(app):
    await create_staff()
    grid = await orgs_setup.area()
    async with await orgs_setup.staff_client(app, "op") as c:
        token = await orgs_setup.csrf_of(c, "/staff/tasks/new")
        form = {"csrf_token": token, "title": "巡查", "service_type": "patrol",
                "area_id": str(grid.id), "places": "2", "who": "any",
                "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T11:00", "points": "4"}
        r = await c.post("/staff/tasks/new", data=form)
        assert r.status_code == 303
        t = await ClaimTask.get(title="巡查")
        assert t.start_by == t.starts_at + timedelta(minutes=30)
        assert t.claim_until == t.starts_at
        for bad in ({"places": "0"}, {"places": "x"}, {"ends_at": "2029-01-01T09:00"},
                    {"starts_at": "yesterday"}, {"service_type": "hacking"},
                    {"area_id": "99999"}, {"who": "everyone"}, {"title": "\x00"},
                    {"points": "-3"}):
            r = await c.post("/staff/tasks/new", data={**form, **bad})
            assert r.status_code == 422, bad
        assert await ClaimTask.all().count() == 1
        acct = await volunteer("settled")
        row = await service.claim(t.id, acct)
        await ClaimTask.filter(id=t.id).update(starts_at=now() - timedelta(minutes=5))
        r = await c.post(f"/staff/claims/{row.id}/done", data={"csrf_token": token})
        assert r.status_code == 303
        assert await PointsEntry.filter(person_id=acct.person_id, points=4).count() == 1
        assert (await c.get("/staff/tasks")).status_code == 200
        assert "巡查" in (await c.get(f"/staff/tasks/{t.id}")).text
    async with await orgs_setup.staff_client(app, "roads") as c:
        assert (await c.get("/staff/tasks")).status_code == 404


async def test_bad_input_is_4xx(app, client):
    t = await task()
    acct = await volunteer("odd")
    assert (await client.get("/tasks")).status_code == 200
    assert (await client.get("/tasks?area=abc")).status_code == 404
    assert (await client.get("/tasks?type=zzz")).status_code == 400
    assert (await client.get("/tasks/99999999999999999999")).status_code == 404
    assert (await client.get("/tasks/-1")).status_code == 404
    assert (await client.get("/tasks/12345")).status_code == 404
    page = await client.get(f"/tasks/{t.id}")
    assert page.status_code == 200 and "清理楼道杂物" in page.text
    # Not signed in: to the sign-in page.
    r = await client.post(f"/tasks/{t.id}/claim", data={})
    assert r.status_code == 303 and "/account/login" in r.headers["location"]
    async with await orgs_setup.member_client(app, acct) as c:
        assert (await c.post(f"/tasks/{t.id}/claim", data={"as": "person"})).status_code == 403
        token = await orgs_setup.csrf_of(c, "/volunteer")
        for path, data in ((f"/tasks/{t.id}/start", {"claim": "x"}),
                           (f"/tasks/{t.id}/withdraw", {"claim": "99999"}),
                           (f"/tasks/{t.id}/done", {}),
                           ("/tasks/99999/claim", {}),
                           ("/tasks/abc/claim", {})):
            r = await c.post(path, data={"csrf_token": token, **data})
            assert 400 <= r.status_code < 500, path
        r = await c.post(f"/tasks/{t.id}/claim", content=b"x" * 100_000, headers={
            "content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        r = await c.post(f"/tasks/{t.id}/claim", data={"csrf_token": token, "as": "org"})
        assert r.status_code == 403


async def test_hostile_numbers_are_4xx(app, client):
    t = await task()
    acct = await volunteer("hostile")
    await service.claim(t.id, acct)
    for path in ("/tasks?area=²", "/tasks?area=999999999999", "/tasks?area=٣",
                 "/tasks?area=0", "/tasks/²", "/tasks/99999999999999999999"):
        r = await client.get(path)
        assert r.status_code == 404, path
    async with await orgs_setup.member_client(app, acct) as c:
        token = await orgs_setup.csrf_of(c, "/volunteer")
        for claim_id in ("²", "999999999999", "99999999999999999999", "0"):
            r = await c.post(f"/tasks/{t.id}/withdraw", data={"csrf_token": token,
                                                              "claim": claim_id})
            assert r.status_code == 404, claim_id
    await create_staff()
    async with await orgs_setup.staff_client(app, "op") as c:
        token = await orgs_setup.csrf_of(c, "/staff/tasks/new")
        for path in ("/staff/tasks/²", "/staff/tasks/999999999999",
                     "/staff/tasks/99999999999999999999"):
            assert (await c.get(path)).status_code == 404, path
        for path in ("/staff/claims/²/done", "/staff/claims/99999999999999999999/no-show",
                     "/staff/tasks/99999999999999999999/cancel"):
            r = await c.post(path, data={"csrf_token": token, "reason": "暴雨"})
            assert r.status_code == 404, path
        grid = await orgs_setup.area()
        form = {"csrf_token": token, "title": "巡查", "service_type": "patrol",
                "area_id": str(grid.id), "places": "2", "who": "any",
                "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T11:00", "points": "4"}
        for bad in ({"places": "²"}, {"places": "٣"}, {"places": "99999999999999999999"},
                    {"area_id": "²"}, {"area_id": "999999999999"}, {"points": "²"},
                    {"points": "99999999999999999999"},
                    {"starts_at": "0001-01-01T01:00", "ends_at": "0001-01-01T03:00"},
                    {"starts_at": "9999-12-31T20:00", "ends_at": "9999-12-31T23:59"},
                    {"ends_at": "9999-12-31T23:59"}, {"claim_until": "0001-01-01T01:00"},
                    {"starts_at": "1999-12-31T09:00"}, {"ends_at": "2101-01-01T00:00"}):
            r = await c.post("/staff/tasks/new", data={**form, **bad})
            assert r.status_code == 422, bad
        assert (await c.post("/staff/tasks/new", data={**form, "points": "0"})).status_code == 303
    assert await ClaimTask.filter(title="巡查").count() == 1
    with pytest.raises(service.TaskError):
        await service.create_task(service.NewTask(
            title="远古", service_type="patrol", area_id=grid.id, places=1,
            starts_at=datetime(1, 1, 1, 1, tzinfo=UTC), ends_at=datetime(1, 1, 1, 3, tzinfo=UTC)),
            actor="staff:op", grace_minutes=30)
