"""Assessment of contracted organisations (orgs/DESIGN.md §8): versioned indicator sets, the
periods and their scores, publishing with its consequences and elimination (suspension from
bidding), and appeals.

A set is immutable once active (D10) and a period keeps the set it was first computed with, so
an old period recomputed gives the same numbers. Publishing is one guarded UPDATE: publishing
twice, or two operators at once, notifies and suspends once.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from feedback.models import Rating
from feedback.satisfaction import SATISFIED_FROM, is_poor
from orgs import notify
from orgs.assessment import indicators
from orgs.assessment.models import (
    Appeal,
    Assessment,
    BiddingSuspension,
    ConsequenceRecord,
    Indicator,
    IndicatorSet,
    Period,
)
from orgs.casework.models import CaseAssignment, Complaint
from orgs.registry.service import OrgError, need_centre
from orgs.tenders.models import Contract, ContractStatus, Milestone, MilestoneReport
from portal.cases.service import SHANGHAI
from portal.i18n import _, gettext_for
from portal.staff.models import Role, StaffUser

DEFAULT_NAME = "default"
DEFAULT_INDICATORS = (
    ("milestones_on_time", Decimal(40), {}),
    ("acceptance_pass_rate", Decimal(20), {}),
    ("satisfaction", Decimal(30), {"min_ratings": 3}),
    ("complaints", Decimal(10), {"per_complaint": "0.25"}),
)
DEFAULT_BANDS = [{"grade": "优", "min": "90"}, {"grade": "良", "min": "80"},
                 {"grade": "中", "min": "60"}, {"grade": "差", "min": "0"}]
DEFAULT_CONSEQUENCES = {
    "优": [{"kind": "commendation"}, {"kind": "fee_bonus_pct", "value": "5"}],
    "差": [{"kind": "warning"}, {"kind": "fee_deduction_pct", "value": "5"}],
}
DEFAULT_ELIMINATION = {"grade": "差", "consecutive": 2, "suspend_days": 180}
INDICATOR_NAMES = {
    "milestones_on_time": _("Milestones met on time"),
    "acceptance_pass_rate": _("Acceptance pass rate"),
    "satisfaction": _("Residents' satisfaction"),
    "complaints": _("Complaints"),
}
CONSEQUENCE_NAMES = {
    "commendation": _("Commendation"), "fee_bonus_pct": _("Fee bonus (%)"),
    "warning": _("Warning"), "fee_deduction_pct": _("Fee deduction (%)"),
}
REASON_CHARS = 2000
APPEAL_CHARS = 4000


# --- periods and their bounds -----------------------------------------------------------------

def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def previous_month(now: datetime) -> tuple[date, date]:
    """The Shanghai calendar month before the one `now` falls in."""
    first = now.astimezone(SHANGHAI).date().replace(day=1)
    last = first - timedelta(days=1)
    return month_bounds(last.year, last.month)


def _instants(starts_on: date, ends_on: date) -> tuple[datetime, datetime]:
    """The period as [start, end) instants: Shanghai midnights."""
    start = datetime.combine(starts_on, time(), SHANGHAI).astimezone(UTC)
    end = datetime.combine(ends_on + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)
    return start, end


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# --- indicator sets ---------------------------------------------------------------------------

async def active_set() -> IndicatorSet:
    """The active set, creating the default v1 the first time one is needed."""
    found = await IndicatorSet.get_or_none(status="active")
    if found is not None:
        return found
    try:
        async with in_transaction() as conn:
            made = await IndicatorSet.create(
                name=DEFAULT_NAME, version=1, status="active", bands=DEFAULT_BANDS,
                missing="rescale", consequences=DEFAULT_CONSEQUENCES,
                elimination=DEFAULT_ELIMINATION, created_by="system",
                created_at=datetime.now(UTC), activated_at=datetime.now(UTC),
                activated_by="system", using_db=conn)
            for position, (key, weight, params) in enumerate(DEFAULT_INDICATORS):
                await Indicator.create(set=made, position=position, key=key, weight=weight,
                                       params=params, using_db=conn)
            return made
    except IntegrityError:
        # Another request seeded it at the same moment.
        return await IndicatorSet.get(status="active")


def _need_admin(user: StaffUser) -> None:
    if user.role != Role.ADMIN:
        raise OrgError(_("Only an administrator can change indicator sets."), 403)



async def new_version(set_id: int, user: StaffUser, *, now: datetime | None = None
                      ) -> IndicatorSet:
    """A draft copy of the set with the next version number (one draft per name)."""
    _need_admin(user)
    now = now or datetime.now(UTC)
    source = await IndicatorSet.get_or_none(id=set_id)
    if source is None:
        raise OrgError(_("There is no such indicator set."), 404)
    if await IndicatorSet.filter(name=source.name, status="draft").exists():
        raise OrgError(_("A draft of this set already exists: edit or activate it."), 409)
    latest = await IndicatorSet.filter(name=source.name).order_by("-version").first()
    try:
        async with in_transaction() as conn:
            draft = await IndicatorSet.create(
                name=source.name, version=latest.version + 1, status="draft",
                bands=source.bands, missing=source.missing, consequences=source.consequences,
                elimination=source.elimination, created_by=f"staff:{user.username}",
                created_at=now, using_db=conn)
            for i in await Indicator.filter(set_id=source.id).using_db(conn).order_by("position"):
                await Indicator.create(set=draft, position=i.position, key=i.key,
                                       weight=i.weight, params=i.params, using_db=conn)
    except IntegrityError as exc:
        raise OrgError(_("A draft of this set already exists: edit or activate it."),
                       409) from exc
    return draft


def _decimal(value: str) -> Decimal | None:
    try:
        number = Decimal((value or "").strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and 0 <= number <= 100 and number == round(number, 2) \
        else None


async def edit_draft(set_id: int, user: StaffUser, *, weights: dict[str, str],
                     bands: dict[str, str], missing: str) -> None:
    """New weights (points, Σ = 100), band minimums and the n/a rule of a draft set."""
    _need_admin(user)
    draft = await IndicatorSet.get_or_none(id=set_id)
    if draft is None:
        raise OrgError(_("There is no such indicator set."), 404)
    if draft.status != "draft":
        raise OrgError(_("Only a draft set can be edited: make a new version."), 409)
    if missing not in indicators.MISSING_MODES:
        raise OrgError(_("Choose how indicators without data count."), 422)
    rows = await Indicator.filter(set_id=draft.id).order_by("position")
    new_weights = {r.key: _decimal(weights.get(r.key, "")) for r in rows}
    if any(w is None for w in new_weights.values()):
        raise OrgError(_("Give each weight in points from 0 to 100, at most two decimals."), 422)
    if sum(new_weights.values()) != 100:
        raise OrgError(_("The weights must add up to 100 points."), 422)
    new_bands = [{"grade": b["grade"], "min": bands.get(b["grade"], "").strip()}
                 for b in draft.bands]
    if any(_decimal(b["min"]) is None for b in new_bands) or not indicators.check_bands(
            new_bands) or new_bands != sorted(new_bands, key=lambda b: -Decimal(b["min"])):
        raise OrgError(_("Give each grade a different minimum from 0 to 100, highest grade "
                         "first, the lowest at 0."), 422)
    async with in_transaction() as conn:
        changed = await IndicatorSet.filter(id=draft.id, status="draft").using_db(conn).update(
            bands=new_bands, missing=missing)
        if not changed:
            raise OrgError(_("Only a draft set can be edited: make a new version."), 409)
        for r in rows:
            await Indicator.filter(id=r.id).using_db(conn).update(weight=new_weights[r.key])


async def activate(set_id: int, user: StaffUser, *, now: datetime | None = None) -> None:
    """The draft becomes the active set, and the one active until now is retired."""
    _need_admin(user)
    now = now or datetime.now(UTC)
    draft = await IndicatorSet.get_or_none(id=set_id)
    if draft is None:
        raise OrgError(_("There is no such indicator set."), 404)
    weights = await Indicator.filter(set_id=draft.id).values_list("weight", flat=True)
    if sum(weights) != 100:
        raise OrgError(_("The weights must add up to 100 points."), 422)
    async with in_transaction() as conn:
        await IndicatorSet.filter(status="active").using_db(conn).update(status="retired")
        moved = await IndicatorSet.filter(id=draft.id, status="draft").using_db(conn).update(
            status="active", activated_at=now, activated_by=f"staff:{user.username}")
        if not moved:
            raise OrgError(_("Only a draft set can be activated."), 409)


# --- measuring --------------------------------------------------------------------------------

async def assessed_orgs(starts_on: date, ends_on: date) -> list[int]:
    """Organisations with a contract active at any time in the period."""
    ids = await Contract.filter(
        status__in=(ContractStatus.ACTIVE, ContractStatus.TERMINATED),
        date_signed__isnull=False, date_signed__lt=_instants(starts_on, ends_on)[1],
        period_start__lte=ends_on, period_end__gte=starts_on,
    ).values_list("organisation_id", flat=True)
    return sorted(set(ids))


async def _milestones(org_id: int, starts_on: date, ends_on: date) -> tuple[Decimal | None, dict]:
    due = await Milestone.filter(contract__organisation_id=org_id, due_date__gte=starts_on,
                                 due_date__lte=ends_on).order_by("due_date", "id")
    on_time = [m.id for m in due if m.date_met is not None
               and m.date_met.astimezone(SHANGHAI).date() <= m.due_date]
    return indicators.ratio(len(on_time), len(due)), {
        "due": len(due), "on_time": len(on_time), "milestones": [m.id for m in due]}


async def _acceptance(org_id: int, start: datetime, end: datetime) -> tuple[Decimal | None, dict]:
    decisions = await MilestoneReport.filter(
        milestone__contract__organisation_id=org_id, decision__isnull=False,
        decided_at__gte=start, decided_at__lt=end).values_list("decision", flat=True)
    accepted, partial = decisions.count("accepted"), decisions.count("partial")
    return indicators.ratio(accepted + Decimal("0.5") * partial, len(decisions)), {
        "decided": len(decisions), "accepted": accepted, "partial": partial}


async def _ratings(org_id: int, start: datetime, end: datetime) -> list[tuple[int, bool | None]]:
    """(score, fixed) of the ratings last given in the period on the organisation's cases."""
    cases = await CaseAssignment.filter(organisation_id=org_id, assigned_at__lt=end
                                        ).values_list("case_id", flat=True)
    if not cases:
        return []
    return await Rating.filter(case_id__in=list(set(cases)), updated_at__gte=start,
                               updated_at__lt=end).values_list("score", "fixed")


async def measure(org_id: int, rows: list[Indicator], starts_on: date, ends_on: date
                  ) -> list[indicators.Measured]:
    start, end = _instants(starts_on, ends_on)
    ratings = await _ratings(org_id, start, end)
    measured = []
    for row in rows:
        if row.key == "milestones_on_time":
            value, data = await _milestones(org_id, starts_on, ends_on)
        elif row.key == "acceptance_pass_rate":
            value, data = await _acceptance(org_id, start, end)
        elif row.key == "satisfaction":
            satisfied = sum(1 for score, _fixed in ratings if score >= SATISFIED_FROM)
            enough = len(ratings) >= int(row.params.get("min_ratings", 3))
            value = indicators.ratio(satisfied, len(ratings)) if enough else None
            data = {"ratings": len(ratings), "satisfied": satisfied}
        elif row.key == "complaints":
            recorded = await Complaint.filter(organisation_id=org_id, recorded_at__gte=start,
                                              recorded_at__lt=end).count()
            poor = sum(1 for score, fixed in ratings if is_poor(score, fixed))
            value = indicators.complaints_value(
                recorded + poor, Decimal(str(row.params.get("per_complaint", "0.25"))))
            data = {"complaints": recorded, "poor_ratings": poor}
        else:
            value, data = None, {}
        measured.append(indicators.Measured(row.key, row.weight, value, data))
    return measured


# --- computing and publishing -----------------------------------------------------------------

async def compute(starts_on: date, ends_on: date, *, switch_set: bool = False,
                  now: datetime | None = None) -> Period:
    """Create or recompute the period's draft assessments. A published period is frozen, and a
    recomputation keeps the period's set unless `switch_set` asks for the active one."""
    now = now or datetime.now(UTC)
    if not (starts_on <= ends_on and ends_on < now.astimezone(SHANGHAI).date()):
        raise OrgError(_("Only a period that has ended can be assessed."), 422)
    current = await active_set()
    period = await Period.get_or_none(starts_on=starts_on, ends_on=ends_on)
    if period is None:
        try:
            period = await Period.create(starts_on=starts_on, ends_on=ends_on,
                                         indicator_set=current, computed_at=now)
        except IntegrityError:
            period = await Period.get(starts_on=starts_on, ends_on=ends_on)
    async with in_transaction() as conn:
        # Locks the period against a publication running at the same time.
        changes = {"computed_at": now}
        if switch_set:
            changes["indicator_set_id"] = current.id
        if not await Period.filter(id=period.id, status="computed").using_db(conn).update(
                **changes):
            raise OrgError(_("This period is published and can no longer change."), 409)
        period = await Period.get(id=period.id).using_db(conn).prefetch_related("indicator_set")
        rows = await Indicator.filter(set_id=period.indicator_set.id).using_db(conn).order_by(
            "position")
        kept = []
        for org_id in await assessed_orgs(starts_on, ends_on):
            scored = indicators.score(await measure(org_id, rows, starts_on, ends_on),
                                      period.indicator_set.missing)
            if scored is None:
                continue
            breakdown = {"indicators": scored.rows, "missing": period.indicator_set.missing,
                         "rescaled_from": None if scored.rescaled_from is None
                         else str(scored.rescaled_from)}
            values = {"score": scored.score, "breakdown": breakdown, "computed_at": now,
                      "grade": indicators.grade(scored.score, period.indicator_set.bands)}
            made, _created = await Assessment.update_or_create(
                defaults=values, period_id=period.id, organisation_id=org_id, using_db=conn)
            kept.append(made.id)
        await Assessment.filter(period_id=period.id).exclude(id__in=kept or [0]).using_db(
            conn).delete()
    return period


def final_grade(assessment: Assessment) -> str:
    return assessment.corrected_grade or assessment.grade


def final_score(assessment: Assessment) -> Decimal:
    return assessment.score if assessment.corrected_score is None else assessment.corrected_score


def _month_before(day: date) -> tuple[date, date]:
    last = day - timedelta(days=1)
    return month_bounds(last.year, last.month)


async def _run_of(assessment: Assessment, rule: dict, conn) -> list[Assessment] | None:
    """The assessment and the org's published ones of the months before it, when all
    `consecutive` of them have the rule's grade. A month without one breaks the run."""
    run = [assessment]
    period = await Period.get(id=assessment.period_id).using_db(conn)
    starts_on = period.starts_on
    for _i in range(int(rule.get("consecutive", 2)) - 1):
        starts_on, ends_on = _month_before(starts_on)
        earlier = await Assessment.get_or_none(
            organisation_id=assessment.organisation_id, period__starts_on=starts_on,
            period__ends_on=ends_on, period__status="published").using_db(conn)
        if earlier is None:
            return None
        run.append(earlier)
    if all(final_grade(a) == rule.get("grade") for a in run):
        return list(reversed(run))
    return None


async def _eliminate(assessment: Assessment, rule: dict, conn, now: datetime) -> bool:
    """Suspend the organisation from bidding when the rule holds at this assessment."""
    if not rule or int(rule.get("consecutive", 0)) < 1:
        return False
    run = await _run_of(assessment, rule, conn)
    if run is None:
        return False
    periods = {p.id: p for p in await Period.filter(
        id__in=[a.period_id for a in run]).using_db(conn)}
    months = "、".join(month_label(periods[a.period_id].starts_on) for a in run)
    zh = gettext_for("zh-CN")
    reason = zh(_("{n} consecutive periods graded {grade}: {months}")).format(
        n=len(run), grade=rule["grade"], months=months)
    ends_at = now + timedelta(days=float(rule.get("suspend_days", 180)))
    trigger = f"assessment:{assessment.id}"
    if await BiddingSuspension.filter(organisation_id=assessment.organisation_id,
                                      trigger=trigger).using_db(conn).exists():
        return False
    suspension = await BiddingSuspension.create(
        organisation_id=assessment.organisation_id, starts_at=now, ends_at=ends_at,
        reason=reason, assessments=[a.id for a in run], trigger=trigger, using_db=conn)
    await notify.to_org(
        assessment.organisation_id, topic="org.suspended_from_bidding",
        ref=f"suspension:{suspension.id}", conn=conn,
        title=_("Suspended from bidding"),
        body=_("Your organisation may not bid or claim tasks until {until}: {reason}. You may "
               "appeal on the assessments page."),
        url="/org/assessments", until=ends_at.astimezone(SHANGHAI).strftime("%Y-%m-%d"),
        reason=reason)
    return True


async def publish(period_id: int, user: StaffUser, *, now: datetime | None = None) -> bool:
    """Publish a computed period: notices, proposed consequences and elimination, once.
    False when it was already published."""
    need_centre(user)
    now = now or datetime.now(UTC)
    period = await Period.get_or_none(id=period_id).prefetch_related("indicator_set")
    if period is None:
        raise OrgError(_("There is no such period."), 404)
    rules = period.indicator_set
    async with in_transaction() as conn:
        if not await Period.filter(id=period.id, status="computed").using_db(conn).update(
                status="published", published_at=now, published_by=f"staff:{user.username}"):
            return False
        for a in await Assessment.filter(period_id=period.id).using_db(conn).order_by("id"):
            await notify.to_org(
                a.organisation_id, topic="assessment.published", ref=f"assessment:{a.id}",
                conn=conn, title=_("Assessment {month}: {grade}"),
                body=_("Your organisation's assessment for {month} is published: {score} "
                       "points, grade {grade}. See how it was computed, and appeal within "
                       "the time allowed if you disagree."),
                url=f"/org/assessments/{a.id}", month=month_label(period.starts_on),
                score=str(a.score), grade=a.grade)
            for c in rules.consequences.get(a.grade, []):
                value = c.get("value")
                await ConsequenceRecord.create(
                    assessment_id=a.id, kind=str(c.get("kind", ""))[:32],
                    value=Decimal(value) if value is not None else None, using_db=conn)
            await _eliminate(a, rules.elimination, conn, now)
    return True


async def decide_consequence(record_id: int, user: StaffUser, decision: str, note: str,
                             *, now: datetime | None = None) -> None:
    need_centre(user)
    if decision not in ("applied", "waived"):
        raise OrgError(_("Choose applied or waived."), 422)
    if len(note) > REASON_CHARS:
        raise OrgError(_("Please give a reason of at most {n} characters."), 422,
                       n=REASON_CHARS)
    moved = await ConsequenceRecord.filter(id=record_id, status="proposed").update(
        status=decision, note=note.strip() or None, decided_by=f"staff:{user.username}",
        decided_at=now or datetime.now(UTC))
    if not moved:
        raise OrgError(_("This consequence was already decided."), 409)


# --- suspension -------------------------------------------------------------------------------

async def suspended_from_bidding(org_id: int, at: datetime) -> BiddingSuspension | None:
    """The suspension in force at `at`, if any: bids and org claims are refused meanwhile."""
    return await BiddingSuspension.filter(organisation_id=org_id, status="active",
                                          starts_at__lte=at, ends_at__gt=at
                                          ).order_by("-ends_at").first()


# --- appeals ----------------------------------------------------------------------------------

async def file_appeal(org_id: int, account_id: int, subject: str, text: str, *,
                      window_days: float, now: datetime | None = None) -> Appeal:
    """An appeal against the organisation's published assessment ("assessment:<id>") or its
    suspension ("suspension:<id>"), within the window; one open appeal per subject."""
    now = now or datetime.now(UTC)
    kind, _sep, raw = subject.partition(":")
    text = text.strip()
    if not 1 <= len(text) <= APPEAL_CHARS:
        raise OrgError(_("Write the appeal: 1 to {n} characters."), 422, n=APPEAL_CHARS)
    subject_id = raw.isascii() and raw.isdigit() and len(raw) < 19 and int(raw) or 0
    fields: dict = {}
    since = None
    if kind == "assessment":
        a = await Assessment.get_or_none(id=subject_id, organisation_id=org_id,
                                         period__status="published").prefetch_related("period")
        if a is not None:
            fields, since = {"assessment_id": a.id}, a.period.published_at
    elif kind == "suspension":
        s = await BiddingSuspension.get_or_none(id=subject_id, organisation_id=org_id)
        if s is not None:
            fields, since = {"suspension_id": s.id}, s.starts_at
    if not fields:
        raise OrgError(_("There is nothing of your organisation's to appeal against here."), 404)
    if now > since + timedelta(days=window_days):
        raise OrgError(_("The time to appeal ({days} days) has passed."), 409,
                       days=f"{window_days:g}")
    try:
        return await Appeal.create(organisation_id=org_id, text=text, submitted_by_id=account_id,
                                   submitted_at=now, active_key=f"{kind}:{subject_id}", **fields)
    except IntegrityError as exc:
        raise OrgError(_("An appeal against this is already waiting for a decision."),
                       409) from exc


async def _reevaluate(assessment: Assessment, conn) -> None:
    """Lift the active suspensions this assessment was part of when the rule no longer holds."""
    for s in await BiddingSuspension.filter(organisation_id=assessment.organisation_id,
                                            status="active").using_db(conn):
        if assessment.id not in s.assessments:
            continue
        trigger_id = int(s.trigger.partition(":")[2])
        trigger = await Assessment.get(id=trigger_id).using_db(conn).prefetch_related(
            "period__indicator_set")
        if await _run_of(trigger, trigger.period.indicator_set.elimination, conn) is None:
            await BiddingSuspension.filter(id=s.id, status="active").using_db(conn).update(
                status="lifted")


async def decide_appeal(appeal_id: int, user: StaffUser, decision: str, reason: str, *,
                        corrected_score: str = "", now: datetime | None = None) -> Appeal:
    """Upheld changes nothing. Overturned lifts a suspension at once, or corrects an
    assessment (the original kept) and re-evaluates the suspensions it was part of."""
    need_centre(user)
    now = now or datetime.now(UTC)
    reason = reason.strip()
    if decision not in ("upheld", "overturned"):
        raise OrgError(_("Choose upheld or overturned."), 422)
    if not 1 <= len(reason) <= REASON_CHARS:
        raise OrgError(_("Please give a reason of at most {n} characters."), 422,
                       n=REASON_CHARS)
    appeal = await Appeal.get_or_none(id=appeal_id)
    if appeal is None:
        raise OrgError(_("There is no such appeal."), 404)
    corrected = None
    if decision == "overturned" and appeal.assessment_id is not None:
        corrected = _decimal(corrected_score)
        if corrected is None:
            raise OrgError(_("Give the corrected score from 0 to 100, at most two decimals."),
                           422)
    async with in_transaction() as conn:
        if not await Appeal.filter(id=appeal.id, decision__isnull=True).using_db(conn).update(
                decision=decision, decided_by=f"staff:{user.username}", decided_at=now,
                reason=reason, active_key=None):
            raise OrgError(_("This appeal was already decided."), 409)
        if decision == "overturned" and appeal.suspension_id is not None:
            await BiddingSuspension.filter(id=appeal.suspension_id).using_db(conn).update(
                status="overturned")
        if corrected is not None:
            a = await Assessment.get(id=appeal.assessment_id).using_db(conn).prefetch_related(
                "period__indicator_set")
            a.corrected_score = corrected
            a.corrected_grade = indicators.grade(corrected, a.period.indicator_set.bands)
            a.correction_reason = reason
            await a.save(using_db=conn, update_fields=[
                "corrected_score", "corrected_grade", "correction_reason"])
            await _reevaluate(a, conn)
        await notify.to_org(
            appeal.organisation_id, topic="appeal.decided", ref=f"appeal:{appeal.id}",
            conn=conn, title=_("Your appeal was decided"),
            body=_("Your appeal was not granted: {reason}") if decision == "upheld"
            else _("Your appeal was granted: {reason}"), url="/org/assessments", reason=reason)
    return await Appeal.get(id=appeal.id)
