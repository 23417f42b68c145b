"""Claimable tasks: operators create them, volunteers and organisations claim places, start,
finish or withdraw, and claims not started in time are released.

A place is taken by one guarded UPDATE of the task's counter (`claimed < places`) and the
claim's unique `active_key`, in one transaction (DESIGN D9, §7): whatever the concurrency, a
task is never over-claimed and a claimant holds at most one place of it.

Every transaction that changes claims of a task writes the task's row first and its claims
after: on PostgreSQL the opposite order in one of them deadlocks against the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs import notify
from orgs.accounts.models import Account
from orgs.assessment.service import suspended_from_bidding
from orgs.registry.models import Area, Membership, OrgStatus
from orgs.registry.service import has_current_training
from orgs.service_types import BY_KEY as SERVICE_TYPES
from orgs.tasks.models import Claim, ClaimTask
from orgs.volunteers import service as volunteers
from orgs.volunteers.models import Volunteer
from orgs.web import YEARS
from portal.cases.models import Person
from portal.cases.service import utcnow
from portal.db import run_sql
from portal.i18n import _
from portal.intake.text import CONTROL_CHARS

WHO = {"volunteer": _("volunteers"), "organisation": _("organisations"),
       "any": _("volunteers and organisations")}
TASK_STATUS = {"open": _("open"), "cancelled": _("cancelled"), "closed": _("closed")}
CLAIM_STATUS = {"claimed": _("claimed"), "started": _("started"), "done": _("done"),
                "released": _("released (not started in time)"), "withdrawn": _("withdrawn"),
                "cancelled": _("cancelled"), "no_show": _("did not come")}
HOLDING = ("claimed", "started")
# The claims that use a place: the task's claimed counts them.
USING = (*HOLDING, "done")
# The start button is offered this long before the task starts.
START_EARLY = timedelta(minutes=30)
MAX_PLACES = 500
MAX_POINTS = 1000
SWEEP_BATCH = 200


class TaskError(Exception):
    """A refused step: an English msgid with its parameters and an HTTP status."""

    def __init__(self, message: str, status: int = 409, **params):
        super().__init__(message)
        self.message, self.status, self.params = message, status, params

    def translated(self, t) -> str:
        return t(self.message).format(**self.params)


def _clean(value: str, limit: int) -> str:
    return " ".join(CONTROL_CHARS.sub(" ", value or "").split())[:limit]


@dataclass
class NewTask:
    title: str = ""
    description: str = ""
    service_type: str = ""
    area_id: int = 0
    places: int = 0
    who: str = "any"
    requires_training: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    claim_until: datetime | None = None
    points: int = 5
    source_case_id: int | None = None


def check_task(n: NewTask, area_ids: set[int]) -> dict[str, str]:
    """Field → English msgid of what is wrong."""
    errors = {}
    if not 2 <= len(_clean(n.title, 200)) <= 120:
        errors["title"] = _("Give a title of 2 to 120 characters.")
    if len(n.description) > 4000:
        errors["description"] = _("The description is too long (4000 characters at most).")
    if n.service_type not in SERVICE_TYPES:
        errors["service_type"] = _("Choose a service type from the list.")
    if n.area_id not in area_ids:
        errors["area_id"] = _("Choose an area from the list.")
    if not 1 <= n.places <= MAX_PLACES:
        errors["places"] = _("Give a number of places from 1 to {n}.").format(n=MAX_PLACES)
    if n.who not in WHO:
        errors["who"] = _("Choose who may claim the task.")
    if not 0 <= n.points <= MAX_POINTS:
        errors["points"] = _("Give points from 0 to {n}.").format(n=MAX_POINTS)
    for field in ("starts_at", "ends_at", "claim_until"):
        when = getattr(n, field)
        if when is not None and not YEARS[0] <= when.year <= YEARS[1]:
            errors[field] = _("Give a date between the years {first} and {last}.").format(
                first=YEARS[0], last=YEARS[1])
    if "starts_at" in errors or "ends_at" in errors or "claim_until" in errors:
        return errors
    if n.starts_at is None:
        errors["starts_at"] = _("Give the start as a date and time.")
    if n.ends_at is None or (n.starts_at and n.ends_at <= n.starts_at):
        errors["ends_at"] = _("Give an end after the start.")
    if n.claim_until is not None and n.starts_at and n.claim_until > n.starts_at:
        errors["claim_until"] = _("Claims must close by the start.")
    return errors


async def create_task(n: NewTask, *, actor: str, grace_minutes: int,
                      now: datetime | None = None) -> ClaimTask:
    errors = check_task(n, set(await Area.all().values_list("id", flat=True)))
    if errors:
        raise TaskError(next(iter(errors.values())), 422)
    now = now or utcnow()
    return await ClaimTask.create(
        title=_clean(n.title, 120), description=CONTROL_CHARS.sub(" ", n.description).strip(),
        service_type=n.service_type, area_id=n.area_id, source_case_id=n.source_case_id,
        places=n.places, who=n.who, requires_training=n.requires_training,
        starts_at=n.starts_at, ends_at=n.ends_at, claim_until=n.claim_until or n.starts_at,
        start_by=n.starts_at + timedelta(minutes=grace_minutes), points=n.points,
        status="open", created_by=actor, created_at=now, updated_at=now)


# --- who claims -------------------------------------------------------------------------------

@dataclass
class Claimant:
    key: str  # p:<person id> or o:<organisation id>
    person_id: int | None = None
    organisation_id: int | None = None


async def claimant_for(account: Account, task: ClaimTask, *, as_org: bool) -> Claimant:
    """Who claims: the account's person (an active volunteer) or, as_org, the organisation it
    administers. Refuses when the task is not for them or needs training they lack."""
    if as_org:
        if task.who == "volunteer":
            raise TaskError(_("This task is for volunteers only."), 403)
        membership = await Membership.get_or_none(
            account_id=account.id, status="active", role="admin").prefetch_related(
            "organisation")
        if membership is None:
            raise TaskError(_("Only an administrator of an organisation can do this."), 403)
        org = membership.organisation
        if org.status != OrgStatus.VERIFIED:
            raise TaskError(_("Only a verified organisation can claim tasks."), 403)
        if await suspended_from_bidding(org.id, utcnow()):
            raise TaskError(_("Your organisation is suspended from bidding and claiming after "
                              "its assessments."), 403)
        if task.requires_training and not await has_current_training(
                org, task.service_type, task.starts_at):
            raise TaskError(_("This task needs current training for its service type."), 403)
        return Claimant(f"o:{org.id}", organisation_id=org.id)
    if task.who == "organisation":
        raise TaskError(_("This task is for organisations only."), 403)
    if not await Volunteer.filter(person_id=account.person_id, status="active").exists():
        raise TaskError(_("Register as a volunteer first."), 403)
    if task.requires_training and not await has_current_training(
            await Person.get(id=account.person_id), task.service_type, task.starts_at):
        raise TaskError(_("This task needs current training for its service type."), 403)
    return Claimant(f"p:{account.person_id}", person_id=account.person_id)


async def _why_not(task_id: int, now: datetime) -> TaskError:
    task = await ClaimTask.get(id=task_id)
    if task.status == "cancelled":
        return TaskError(_("This task was cancelled."))
    if task.status != "open" or task.claim_until <= now:
        return TaskError(_("Claims for this task are closed."))
    return TaskError(_("All places of this task are taken."))


async def claim(task_id: int, account: Account, *, as_org: bool = False,
                now: datetime | None = None) -> Claim:
    now = now or utcnow()
    task = await ClaimTask.get_or_none(id=task_id)
    if task is None:
        raise TaskError(_("There is no such task."), 404)
    who = await claimant_for(account, task, as_org=as_org)
    try:
        async with in_transaction() as conn:
            rows = await run_sql(
                conn, "UPDATE claim_task SET claimed = claimed + 1, updated_at = ? "
                "WHERE id = ? AND status = 'open' AND claimed < places AND claim_until > ? "
                "RETURNING claimed", [now, task.id, now])
            if not rows:
                raise await _why_not(task.id, now)
            # The unique active_key refuses a second place: the increment rolls back with it.
            made = await run_sql(
                conn, "INSERT INTO claim (task_id, person_id, organisation_id, claimed_by_id, "
                "claimant_key, active_key, status, claimed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'claimed', ?) RETURNING id",
                [task.id, who.person_id, who.organisation_id, account.id, who.key,
                 f"{task.id}:{who.key}", now])
    except IntegrityError:
        raise TaskError(_("You already hold a place of this task.")) from None
    return await Claim.get(id=made[0]["id"])


async def holds(account: Account, claim_row: Claim) -> bool:
    """Whether the account may act for the claimant: its person, or an admin of its org."""
    if claim_row.person_id is not None:
        return claim_row.person_id == account.person_id
    return await Membership.filter(account_id=account.id, status="active", role="admin",
                                   organisation_id=claim_row.organisation_id).exists()


async def _own_claim(claim_id: int, account: Account) -> Claim:
    row = await Claim.get_or_none(id=claim_id).prefetch_related("task")
    if row is None or not await holds(account, row):
        raise TaskError(_("There is no such claim."), 404)
    return row


async def start(claim_id: int, account: Account, *, now: datetime | None = None) -> Claim:
    now = now or utcnow()
    row = await _own_claim(claim_id, account)
    if now < row.task.starts_at - START_EARLY:
        raise TaskError(_("You can start from 30 minutes before the task begins."))
    # The status guard loses to the release sweep when both act at once.
    if now > row.task.start_by or not await Claim.filter(id=row.id, status="claimed").update(
            status="started", started_at=now):
        raise TaskError(_("This claim can no longer be started."))
    return await Claim.get(id=row.id)


async def withdraw(claim_id: int, account: Account, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    row = await _own_claim(claim_id, account)
    async with in_transaction() as conn:
        await _lock_task(conn, row.task_id, now)
        if not await Claim.filter(id=row.id, status="claimed").using_db(conn).update(
                status="withdrawn", active_key=None, released_at=now,
                release_reason="withdrawn"):
            raise TaskError(_("Only a claim not yet started can be withdrawn."))
        await _free(conn, row.task_id, 1, now)


async def _lock_task(conn, task_id: int, now: datetime) -> None:
    """Take the task's row before any of its claims (the order every writer keeps). A write
    rather than SELECT ... FOR UPDATE: SQLite has none, and a write first also spares SQLite a
    read lock to upgrade."""
    await run_sql(conn, "UPDATE claim_task SET updated_at = ? WHERE id = ?", [now, task_id])


async def _free(conn, task_id: int, n: int, now: datetime) -> None:
    await run_sql(conn, "UPDATE claim_task SET claimed = claimed - ?, updated_at = ? WHERE id = ?",
                  [n, now, task_id])


async def finish(claim_id: int, outcome: str, *, actor: str,
                 now: datetime | None = None) -> Claim:
    """An operator marks a claim done or no_show, once the task has started. A volunteer's
    done earns the task's points once. Claimants never mark their own claims: the points
    would be theirs for the asking."""
    now = now or utcnow()
    if outcome not in ("done", "no_show"):
        raise TaskError(_("There is no such outcome."), 400)
    row = await Claim.get_or_none(id=claim_id).prefetch_related("task")
    if row is None:
        raise TaskError(_("There is no such claim."), 404)
    task = row.task
    if outcome == "done" and now < task.starts_at:
        raise TaskError(_("The task has not started yet: nobody can have done it."))
    async with in_transaction() as conn:
        await _lock_task(conn, row.task_id, now)
        # A claim done keeps its place (and its active_key: no second place for the same
        # claimant); a no-show gives the place back.
        changes = {"status": outcome, "finished_at": now}
        if outcome == "no_show":
            changes["active_key"] = None
        if not await Claim.filter(id=row.id, status__in=HOLDING).using_db(conn).update(
                **changes):
            raise TaskError(_("This claim is already settled."))
        if outcome == "no_show":
            await _free(conn, row.task_id, 1, now)
        if row.person_id is not None and outcome == "done":
            await volunteers.award(conn, row.person_id, "task", f"claim:{row.id}", task.points,
                        task.area_id, now)
        if outcome == "done":
            await _tell(conn, row, topic="claim.done", ref=f"claim.done:{row.id}",
                        title=_("Task done: {task}"),
                        body=_("Thank you. Points earned: {points}."),
                        task=task.title, points=task.points if row.person_id else 0)
    return await Claim.get(id=row.id)


async def _tell(conn, row, *, topic: str, ref: str, title: str, body: str, **params) -> None:
    """A notice to the claimant: the person, or the organisation's admins."""
    kwargs = dict(topic=topic, ref=ref, title=title, body=body, url=f"/tasks/{row.task_id}",
                  conn=conn, **params)
    if row.person_id is not None:
        await notify.to_people([row.person_id], **kwargs)
    elif row.organisation_id is not None:
        await notify.to_org(row.organisation_id, **kwargs)


async def cancel_task(task_id: int, reason: str, *, actor: str,
                      now: datetime | None = None) -> int:
    """Cancel an open task; its claims are released and their holders told. Returns how many
    were told."""
    now = now or utcnow()
    reason = _clean(reason, 1000)
    if len(reason) < 2:
        raise TaskError(_("Give a reason (it is sent to those who claimed a place)."), 422)
    async with in_transaction() as conn:
        if not await ClaimTask.filter(id=task_id, status="open").using_db(conn).update(
                status="cancelled", cancel_reason=reason, updated_at=now):
            raise TaskError(_("Only an open task can be cancelled."))
        task = await ClaimTask.get(id=task_id).using_db(conn)
        # Exactly the claims this statement changed give their places back.
        rows = [_Row(r["id"], task_id, r["person_id"], r["organisation_id"])
                for r in await run_sql(
                    conn, "UPDATE claim SET status = 'cancelled', active_key = NULL, "
                    "released_at = ?, release_reason = 'cancelled' WHERE task_id = ? "
                    "AND status IN ('claimed', 'started') "
                    "RETURNING id, person_id, organisation_id", [now, task_id])]
        await _free(conn, task_id, len(rows), now)
        for row in rows:
            await _tell(conn, row, topic="task.cancelled", ref=f"task.cancelled:{row.id}",
                        title=_("Task cancelled: {task}"),
                        body=_("The task was cancelled: {reason}"), task=task.title,
                        reason=reason)
    return len(rows)


# --- sweeps -------------------------------------------------------------------------------------

async def release_due(now: datetime | None = None) -> int:
    """Release claims not started by the task's start_by, and tell their holders. Each claim
    is taken by a guarded UPDATE: a second run, or a start at the same moment, finds nothing.
    The tasks' rows are taken first (tasks busy elsewhere wait for the next run), then their
    claims."""
    now = now or utcnow()
    conn = connections.get("default")
    lock = " FOR UPDATE SKIP LOCKED" if conn.capabilities.dialect == "postgres" else ""
    async with in_transaction() as conn:
        tasks = [r["id"] for r in await run_sql(
            conn, "UPDATE claim_task SET updated_at = ? WHERE id IN (SELECT t.id FROM "
            "claim_task t WHERE t.start_by < ? AND t.id IN (SELECT c.task_id FROM claim c "
            f"WHERE c.status = 'claimed') ORDER BY t.id LIMIT {SWEEP_BATCH}{lock}) "
            "RETURNING id", [now, now])]
        if not tasks:
            return 0
        rows = await run_sql(
            conn, "UPDATE claim SET status = 'released', active_key = NULL, released_at = ?, "
            "release_reason = 'not_started' WHERE id IN (SELECT c.id FROM claim c "
            f"WHERE c.status = 'claimed' AND c.task_id IN ({', '.join('?' * len(tasks))}) "
            f"ORDER BY c.id LIMIT {SWEEP_BATCH}) "
            "RETURNING id, task_id, person_id, organisation_id", [now, *tasks])
        per_task: dict[int, int] = {}
        for r in rows:
            per_task[r["task_id"]] = per_task.get(r["task_id"], 0) + 1
        titles = dict(await ClaimTask.filter(id__in=list(per_task)).using_db(conn)
                      .values_list("id", "title"))
        for task_id, n in per_task.items():
            await _free(conn, task_id, n, now)
        for r in rows:
            row = _Row(r["id"], r["task_id"], r["person_id"], r["organisation_id"])
            await _tell(conn, row, topic="claim.released", ref=f"claim.released:{row.id}",
                        title=_("Place released: {task}"),
                        body=_("Your place was released because it was not started in time."),
                        task=titles[row.task_id])
        return len(rows)


@dataclass
class _Row:
    id: int
    task_id: int
    person_id: int | None
    organisation_id: int | None


async def close_due(now: datetime | None = None) -> int:
    """Close open tasks that have ended; claims never started become no_show."""
    now = now or utcnow()
    closed = 0
    for task_id in await ClaimTask.filter(status="open", ends_at__lte=now).limit(
            SWEEP_BATCH).values_list("id", flat=True):
        async with in_transaction() as conn:
            if not await ClaimTask.filter(id=task_id, status="open").using_db(conn).update(
                    status="closed", updated_at=now):
                continue
            gone = await Claim.filter(task_id=task_id, status="claimed").using_db(conn).update(
                status="no_show", active_key=None, finished_at=now)
            if gone:
                await _free(conn, task_id, gone, now)
            closed += 1
    return closed


async def holders(task_id: int) -> int:
    """The number of claims using a place (the invariant: equals the task's claimed)."""
    return await Claim.filter(task_id=task_id, status__in=USING).count()

