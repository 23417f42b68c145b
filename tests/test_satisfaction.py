"""Satisfaction: what a rating sets off (a review by staff, a reopened case), the roll-ups, and
the one reminder to rate, sent by the scheduled sweep through the real delivery worker and the
real aiogram client talking to the fake Bot API; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import pytest

from feedback import metrics
from feedback.fanout import fan_out
from feedback.models import Delivery, Survey
from feedback.service import record_rating
from feedback.worker import remind
from portal.cases.models import (
    Case,
    CaseEvent,
    Department,
    Identity,
    Outbox,
    Person,
    Status,
    Subscription,
)
from portal.cases.service import SHANGHAI, add_note, change_status, utcnow
from portal.intake.service import submit
from portal.intake.submission import Submission
from portal.scheduler import Scheduler, Sweep, run_all_once, scheduling
from portal.settings import Settings
from tests.fake_telegram import FakeTelegram, User
from tests.updates import chat, until

SQUARE = (31.2304, 121.4737)
TEXT = "The rubbish at the east gate of Nanjing East Road 100 has not been collected for days"
WORKING = (Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS)


async def report(user_id: int, settings: Settings, *, text: str = TEXT,
                 category: str = "garbage", point=SQUARE) -> Case:
    receipt = await submit(Submission(
        reporter=f"tg:{user_id}", channel="telegram", text=text, category=category,
        lat=point[0], lng=point[1], language="en"), throttle=None, settings=settings)
    return await Case.get(code=receipt.case_code)


async def person(user_id: int) -> int:
    return (await Identity.get(key=f"tg:{user_id}")).person_id


async def resolve(case: Case) -> None:
    for status in (*WORKING, Status.RESOLVED):
        await change_status(case.id, status, actor="op")


async def follower(case: Case, user_id: int) -> int:
    someone = await Person.create(language="en")
    await Identity.create(key=f"tg:{user_id}", kind="tg", person=someone)
    await Subscription.create(case=case, person=someone, identity=f"tg:{user_id}",
                              reason="follower")
    return someone.id


async def send_all(worker, settings: Settings, now: datetime | None = None,
                   seconds: float = 15.0) -> None:
    """Fan the outbox out and send every message due by `now` (polls: a chat's own pace may
    hold a message back for a second)."""
    await fan_out(settings, set(worker.senders), now=now)
    # A message a chat's pace put back is due again within the second.
    due = now or utcnow() + timedelta(seconds=5)

    async def all_sent() -> bool:
        left = Delivery.filter(status__in=("pending", "sending"), due_at__lte=due)
        if await left.exists():
            await worker.send_one("telegram", now=now)
        return not await left.exists()

    await until(all_sent, seconds)


def texts(fake: FakeTelegram, user: User) -> list[str]:
    return [m["text"] for m in fake.sent(user.id)]


async def review_events(case: Case) -> list[CaseEvent]:
    return list(await CaseEvent.filter(case_id=case.id, kind="review").order_by("id"))


# --- what a rating sets off -------------------------------------------------------------------

async def test_a_poor_rating_sends_the_case_back_to_staff_until_they_act(up_settings, fake):
    case = await report(501, up_settings)
    await resolve(case)
    pid = await person(501)
    await record_rating(case.id, pid, 5, True, None, "telegram")
    assert (await Case.get(id=case.id)).review_requested_at is None
    assert await review_events(case) == []

    await record_rating(case.id, pid, 2, None, "The pile is smaller but still there", "telegram")
    flagged = await Case.get(id=case.id)
    assert flagged.review_requested_at is not None and flagged.status == Status.RESOLVED
    [event] = await review_events(case)
    # Staff only, never a progress update.
    assert not event.public and event.data["score"] == 2
    assert event.data["comment"] == "The pile is smaller but still there"
    assert not await Outbox.filter(event_id=event.id).exists()
    # The same answer again (a second press) changes nothing.
    await record_rating(case.id, pid, 2, None, "The pile is smaller but still there", "telegram")
    assert len(await review_events(case)) == 1

    # Staff add a note: the review is done.
    await add_note(case.id, actor="op", public_note=None, internal_note="Sent the crew back")
    assert (await Case.get(id=case.id)).review_requested_at is None
    # "Not fixed" flags it again; staff change the status: done again.
    await record_rating(case.id, pid, 3, False, None, "telegram")
    assert (await Case.get(id=case.id)).review_requested_at is not None
    assert [e.data["fixed"] for e in await review_events(case)] == [None, False]
    await change_status(case.id, Status.CLOSED, actor="op")
    assert (await Case.get(id=case.id)).review_requested_at is None


async def test_two_reporters_saying_not_fixed_reopen_the_case_and_everyone_hears(
        up_settings, fake, worker):
    a, b, c = chat(fake, 511, "en"), chat(fake, 512, "en"), chat(fake, 513, "en")
    case = await report(a.id, up_settings)
    assert (await report(b.id, up_settings)).id == case.id  # merged: a second reporter
    watcher = await follower(case, c.id)
    await resolve(case)
    await send_all(worker, up_settings)
    before = {u.id: len(fake.sent(u.id)) for u in (a, b, c)}

    # A follower's "not fixed" asks for a review but is no reporter's word.
    await record_rating(case.id, watcher, 1, False, None, "telegram")
    await record_rating(case.id, await person(a.id), 1, False, None, "telegram")
    assert (await Case.get(id=case.id)).status == Status.RESOLVED
    await record_rating(case.id, await person(b.id), 1, False, "Still piled up", "telegram")
    reopened = await Case.get(id=case.id)
    assert reopened.status == Status.IN_PROGRESS
    # Reopened, and still waiting for staff to look at it.
    assert reopened.review_requested_at is not None
    assert (await review_events(case))[-1].data["reopened"] is True
    status = await CaseEvent.filter(case_id=case.id, kind="status").order_by("-id").first()
    assert (status.status_from, status.status_to, status.public) == (
        "resolved", "in_progress", True)
    assert status.data == {"reopened": "not_fixed"}

    await send_all(worker, up_settings)
    for user in (a, b, c):
        new = texts(fake, user)[before[user.id]:]
        assert len(new) == 1 and "not fixed yet" in new[0] and case.code in new[0], new


async def test_two_not_fixed_answers_at_the_same_moment_reopen_the_case_once(up_settings):
    ids = range(621, 625)
    case = await report(ids[0], up_settings)
    for n in ids[1:]:
        assert (await report(n, up_settings)).id == case.id
    await resolve(case)
    people = [await person(n) for n in ids]
    await asyncio.gather(*(record_rating(case.id, p, 1, False, None, "telegram")
                           for p in people))
    assert (await Case.get(id=case.id)).status == Status.IN_PROGRESS
    assert await CaseEvent.filter(case_id=case.id, kind="status", status_from="resolved",
                                  status_to="in_progress").count() == 1
    assert len(await review_events(case)) == 4


async def test_not_fixed_answers_of_an_earlier_resolution_do_not_count_again(up_settings, fake):
    a, b = 521, 522
    case = await report(a, up_settings)
    assert (await report(b, up_settings)).id == case.id
    await resolve(case)
    await record_rating(case.id, await person(a), 1, False, None, "telegram")
    await change_status(case.id, Status.IN_PROGRESS, actor="op")  # staff reopen it themselves
    await change_status(case.id, Status.RESOLVED, actor="op")
    # One reporter's "not fixed" of this resolution: the other one's was about the last one.
    await record_rating(case.id, await person(b), 1, False, None, "telegram")
    assert (await Case.get(id=case.id)).status == Status.RESOLVED
    await record_rating(case.id, await person(a), 2, False, "Again", "telegram")
    assert (await Case.get(id=case.id)).status == Status.IN_PROGRESS


async def test_the_number_of_not_fixed_answers_that_reopen_a_case_is_a_setting(up_settings):
    case = await report(531, up_settings)
    await resolve(case)
    await record_rating(case.id, await person(531), 1, False, None, "telegram", reopen_after=1)
    assert (await Case.get(id=case.id)).status == Status.IN_PROGRESS
    other = await report(532, up_settings, text="Street light out at Fuzhou Road 300",
                         category="street_light", point=(31.30, 121.50))
    await resolve(other)
    # 0: never reopened by residents, only sent back for review.
    await record_rating(other.id, await person(532), 1, False, None, "telegram", reopen_after=0)
    assert (await Case.get(id=other.id)).status == Status.RESOLVED
    assert (await Case.get(id=other.id)).review_requested_at is not None


async def test_a_rating_out_of_range_is_refused_and_changes_nothing(up_settings):
    case = await report(541, up_settings)
    await resolve(case)
    for score in (0, 6):
        with pytest.raises(ValueError):
            await record_rating(case.id, await person(541), score, False, None, "telegram")
    assert (await Case.get(id=case.id)).review_requested_at is None


# --- roll-ups ------------------------------------------------------------------------------------

async def test_ratings_roll_up_per_case_category_and_department(up_settings):
    shirong = await Department.get(code="shirong")
    garbage = await report(551, up_settings)
    assert (await report(552, up_settings)).id == garbage.id
    light = await report(553, up_settings, text="Street light out at Fuzhou Road 300",
                         category="street_light", point=(31.30, 121.50))
    await Case.filter(id=garbage.id).update(department_id=shirong.id)
    for case in (garbage, light):
        await resolve(case)
    long_ago = utcnow() - timedelta(days=40)
    await record_rating(garbage.id, await person(551), 5, True, None, "telegram")
    await record_rating(garbage.id, await person(552), 2, False, None, "telegram",
                        reopen_after=9)
    await record_rating(light.id, await person(553), 4, None, None, "telegram", now=long_ago)

    by_case = {r.key: r for r in await metrics.rollup("case")}
    assert (by_case[garbage.code].ratings, by_case[garbage.code].mean,
            by_case[garbage.code].satisfied, by_case[garbage.code].not_fixed) == (2, 3.5, 1, 1)
    assert by_case[garbage.code].share_satisfied == 0.5
    # Lowest mean first.
    assert [r.key for r in await metrics.rollup("case")] == [garbage.code, light.code]
    by_category = {r.key: (r.ratings, r.mean) for r in await metrics.rollup("category")}
    assert by_category == {"garbage": (2, 3.5), "street_light": (1, 4.0)}
    by_department = {r.key: r.ratings for r in await metrics.rollup("department")}
    assert by_department == {"shirong": 2, None: 1}
    [total] = await metrics.rollup(None)
    assert (total.ratings, total.satisfied, total.not_fixed) == (3, 2, 1)

    # A period: the rating of 40 days ago is outside the last 30 days.
    recent = await metrics.rollup("category", since=utcnow() - timedelta(days=30))
    assert {r.key for r in recent} == {"garbage"}
    # A department's own cases only.
    [own] = await metrics.rollup(None, department_id=shirong.id)
    assert own.ratings == 2
    assert (await metrics.case_rollup(light.id)).mean == 4.0
    [nothing] = await metrics.rollup(None, since=utcnow() + timedelta(days=1))
    assert (nothing.ratings, nothing.mean, nothing.share_satisfied) == (0, None, None)


# --- the reminder ----------------------------------------------------------------------------

async def test_one_reminder_a_day_later_to_each_reporter_who_has_not_rated(
        up_settings, fake, worker):
    a, b, c, d = (chat(fake, n, "en") for n in (561, 562, 563, 564))
    case = await report(a.id, up_settings)
    for user in (b, c, d):
        assert (await report(user.id, up_settings)).id == case.id
    await resolve(case)
    await send_all(worker, up_settings)
    assert await Survey.filter(case_id=case.id).count() == 4
    await record_rating(case.id, await person(b.id), 5, True, None, "telegram")
    # One stops following the case.
    await Subscription.filter(case_id=case.id, person_id=await person(d.id)).delete()
    sent_at = max(await Delivery.filter(case_id=case.id).values_list("sent_at", flat=True))

    assert await remind(up_settings, now=sent_at + timedelta(hours=23)) == 0
    later = sent_at + timedelta(hours=24, minutes=1)
    assert await remind(up_settings, now=later) == 2
    reminders = await Delivery.filter(kind="reminder").order_by("address")
    assert [r.address for r in reminders] == [f"tg:{a.id}", f"tg:{c.id}"]
    # The sweep again, or late: nothing more.
    assert await remind(up_settings, now=later) == 0
    assert await remind(up_settings, now=later + timedelta(days=3)) == 0

    before = {u.id: len(fake.sent(u.id)) for u in (a, b, c, d)}
    await send_all(worker, up_settings, now=later)
    for user in (a, c):
        [message] = fake.sent(user.id)[before[user.id]:]
        assert "You have not rated it yet" in message["text"] and case.code in message["text"]
        data = [btn.get("callback_data") for row in message["reply_markup"]["inline_keyboard"]
                for btn in row]
        assert f"d:rate:{case.code}.5" in data and f"d:rate:{case.code}.0" in data
    for user in (b, d):
        assert len(fake.sent(user.id)) == before[user.id]


async def test_no_reminder_once_the_case_is_no_longer_resolved(up_settings, fake, worker):
    a = chat(fake, 571, "en")
    case = await report(a.id, up_settings)
    await resolve(case)
    await send_all(worker, up_settings)
    await change_status(case.id, Status.IN_PROGRESS, actor="op")
    assert await remind(up_settings, now=utcnow() + timedelta(hours=25)) == 0
    assert not await Delivery.filter(kind="reminder").exists()


async def test_a_reminder_found_at_night_waits_for_the_morning(up_settings, fake, worker):
    settings = up_settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    a = chat(fake, 581, "en")
    case = await report(a.id, up_settings)
    await resolve(case)
    await send_all(worker, up_settings)
    night = (utcnow() + timedelta(days=2)).astimezone(SHANGHAI).replace(
        hour=23, minute=30, second=0, microsecond=0)
    assert await remind(settings, now=night.astimezone(UTC)) == 1
    reminder = await Delivery.get(kind="reminder")
    morning = reminder.due_at.astimezone(SHANGHAI)
    assert (morning.date() - night.date()).days == 1 and (morning.hour, morning.minute) == (8, 0)


async def test_a_request_held_by_the_quiet_hours_is_not_reminded_before_it_went_out(
        up_settings, fake, worker):
    a = chat(fake, 591, "en")
    case = await report(a.id, up_settings)
    await resolve(case)
    await fan_out(up_settings, set(worker.senders))  # the request to rate waits, unsent
    assert await remind(up_settings, now=utcnow() + timedelta(hours=25)) == 0
    # Still to be reminded once it has gone out.
    assert await Survey.filter(case_id=case.id, reminded_at__isnull=True).exists()
    await send_all(worker, up_settings)
    assert await remind(up_settings, now=utcnow() + timedelta(hours=25)) == 1


# --- the scheduler -----------------------------------------------------------------------------

async def test_the_scheduler_runs_the_reminder_sweep_at_start(up_settings, fake, worker):
    settings = up_settings.model_copy(update={"survey_reminder_hours": 0.0})
    a = chat(fake, 601, "en")
    case = await report(a.id, up_settings)
    await resolve(case)
    await send_all(worker, up_settings)
    runs = []

    async def counted(s: Settings) -> int:
        runs.append(1)
        return await remind(s)

    scheduler = Scheduler(settings, (Sweep("reminders", timedelta(minutes=10), counted),))
    scheduler.start()
    try:
        async def reminded() -> bool:
            return await Delivery.filter(kind="reminder").exists()

        await until(reminded)
    finally:
        await scheduler.close()
    assert len(runs) == 1
    assert await Delivery.filter(kind="reminder", address=f"tg:{a.id}").count() == 1


async def test_a_failing_sweep_is_logged_and_the_others_still_run(up_settings, caplog):
    async def broken(s: Settings) -> int:
        raise RuntimeError("boom")

    async def fine(s: Settings) -> int:
        return 3

    done = await run_all_once(up_settings, (Sweep("broken", timedelta(minutes=1), broken),
                                            Sweep("fine", timedelta(minutes=1), fine)))
    assert done == {"broken": 0, "fine": 3}
    assert "scheduled sweep 'broken' failed" in caplog.text


async def test_the_server_runs_the_sweeps_only_with_the_worker_in_it(up_settings):
    async with scheduling(up_settings.model_copy(update={"worker_in_server": False})) as s:
        assert s is None
    async with scheduling(up_settings) as s:
        assert s is not None
        names = [sw.name for sw in s.sweeps]
        assert names[:2] == ["satisfaction reminders", "finished progress updates forgotten"]
        # The organisations' sweeps: the opening of sealed bids above all.
        assert "tenders.open" in names and "tasks.release_due" in names


async def _gridlink(args: list[str], settings: Settings, **env) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portal.cli", *args,
        env={**os.environ, "GRIDLINK_DATABASE_URL": settings.database_url,
             "GRIDLINK_MEDIA_DIR": str(settings.media_dir), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_gridlink_scheduler_once_sends_the_due_reminders(up_settings, fake, worker):
    a = chat(fake, 611, "en")
    case = await report(a.id, up_settings)
    await resolve(case)
    await send_all(worker, up_settings)
    proc = await _gridlink(["scheduler", "--once"], up_settings,
                           GRIDLINK_SURVEY_REMINDER_HOURS="0")
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "satisfaction reminders: 1" in out.decode()
    assert await Delivery.filter(kind="reminder", case_id=case.id).count() == 1


async def test_gridlink_scheduler_runs_until_stopped(up_settings):
    proc = await _gridlink(["scheduler"], up_settings)
    seen = b""
    try:
        while b"satisfaction reminders every 600 s" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), 120)
            assert line, seen.decode()
            seen += line
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
    assert b"Traceback" not in seen + await proc.stderr.read()
