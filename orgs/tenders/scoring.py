"""Evaluation of an opened tender (DESIGN §6.3–6.4): the evaluators' scores, the abnormally low
bids' explanations and decisions, the preview and the finalisation.

Every write starts with a guarded UPDATE of the tender row (still opened, not finalised), the
same row the finalisation claims: on PostgreSQL the two queue on its row lock and the later one
re-checks, on SQLite the first write takes the database lock. So no score, explanation or
decision lands after the results are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from orgs import notify
from orgs.registry.service import OrgError
from orgs.tenders import evaluation, seal
from orgs.tenders.models import (
    Award,
    Bid,
    BidEvent,
    BidResult,
    BidStatus,
    CriterionScore,
    LowBidReview,
    Tender,
    TenderCriterion,
    TenderEvaluator,
    TenderStatus,
    TieDraw,
)
from portal.cases.service import SHANGHAI
from portal.i18n import _
from portal.settings import Settings
from portal.staff.casework import centre
from portal.staff.models import StaffUser

SCORE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,2})?$")
REASON_CHARS = 2000
EXPLANATION_CHARS = 10000
COMMENT_CHARS = 2000
DECISIONS = ("accepted", "rejected")


async def is_evaluator(tender: Tender, user: StaffUser) -> bool:
    return await TenderEvaluator.filter(tender_id=tender.id, staff_user_id=user.id).exists()


async def staff_tender(code: str, user: StaffUser) -> Tender | None:
    """The tender if this staff member may see its evaluation: opened, and the user an operator,
    an administrator or one of its evaluators. Anyone else learns nothing (None → 404)."""
    tender = await Tender.get_or_none(code=code) if len(code) <= 20 else None
    if tender is None or tender.opened_at is None:
        return None
    if centre(user) or await is_evaluator(tender, user):
        return tender
    return None


async def _hold(tender: Tender) -> None:
    """Inside a transaction: lock the tender row while it is still being evaluated."""
    held = await Tender.filter(id=tender.id, status=TenderStatus.ACTIVE, opened_at__isnull=False,
                               finalised_at__isnull=True).update(bid_lock=F("bid_lock"))
    if not held:
        raise OrgError(_("The evaluation of this tender is closed."), 409)


def parse_score(value: str) -> Decimal:
    value = value.strip()
    if not SCORE.match(value) or Decimal(value) > 100:
        raise OrgError(_("A score is a number from 0 to 100 with at most two decimals."), 422)
    return Decimal(value)


async def enter_score(tender: Tender, user: StaffUser, *, bid_id: int, criterion_id: int,
                      score: Decimal, comment: str = "", now: datetime | None = None
                      ) -> CriterionScore:
    """An assigned evaluator's score for one bid and criterion; entering it again replaces it."""
    now = now or datetime.now(UTC)
    if not await is_evaluator(tender, user):
        raise OrgError(_("Only the evaluators assigned to this tender can score it."), 403)
    if not Decimal(0) <= score <= Decimal(100) or score != score.quantize(Decimal("0.01")):
        raise OrgError(_("A score is a number from 0 to 100 with at most two decimals."), 422)
    if len(comment) > COMMENT_CHARS:
        raise OrgError(_("The comment may be at most {n} characters."), 422, n=COMMENT_CHARS)
    bid = await Bid.get_or_none(id=bid_id, tender_id=tender.id, status=BidStatus.VALID)
    criterion = await TenderCriterion.get_or_none(id=criterion_id, tender_id=tender.id)
    if bid is None or criterion is None:
        raise OrgError(_("There is no such valid bid or criterion in this tender."), 404)
    async with in_transaction():
        await _hold(tender)
        found = await CriterionScore.get_or_none(bid_id=bid.id, criterion_id=criterion.id,
                                                 evaluator_id=user.id)
        if found is not None:
            found.score, found.comment, found.entered_at = score, comment or None, now
            await found.save(update_fields=["score", "comment", "entered_at"])
            return found
        try:
            return await CriterionScore.create(bid_id=bid.id, criterion_id=criterion.id,
                                               evaluator_id=user.id, score=score,
                                               comment=comment or None, entered_at=now)
        except IntegrityError as exc:
            raise OrgError(_("This score was entered twice at once: please look again."),
                           409) from exc


def explain_due(review: LowBidReview, settings: Settings) -> datetime:
    """Until when the flagged bidder may explain its price: low_bid_explain_hours after the
    flag (the opening)."""
    return review.flagged_at + timedelta(hours=settings.low_bid_explain_hours)


async def explain_low_bid(tender: Tender, org_id: int, *, actor: str, explanation: str,
                          settings: Settings, now: datetime | None = None) -> LowBidReview:
    """The flagged bidder's written explanation of its price (87号令 第六十条), refused after
    the due time. The operator may still decide without it."""
    now = now or datetime.now(UTC)
    explanation = explanation.strip()
    if not 1 <= len(explanation) <= EXPLANATION_CHARS:
        raise OrgError(_("Please write an explanation of at most {n} characters."), 422,
                       n=EXPLANATION_CHARS)
    review = await LowBidReview.get_or_none(bid__tender_id=tender.id,
                                            bid__organisation_id=org_id)
    if review is None:
        raise OrgError(_("Your bid was not asked for an explanation."), 404)
    if now > explain_due(review, settings):
        raise OrgError(_("The time to explain your price ended on {due} (Beijing time). The "
                         "evaluators decide without a further explanation."), 409,
                       due=explain_due(review, settings).astimezone(SHANGHAI).strftime(
                           "%Y-%m-%d %H:%M"))
    async with in_transaction():
        await _hold(tender)
        if not await LowBidReview.filter(id=review.id, decision__isnull=True).update(
                explanation=explanation, explained_at=now, explained_by=actor[:100]):
            raise OrgError(_("A decision on your price was already recorded."), 409)
    return await LowBidReview.get(id=review.id)


async def decide_low_bid(tender: Tender, user: StaffUser, *, review_id: int, decision: str,
                         reason: str, now: datetime | None = None) -> LowBidReview:
    """The evaluators' decision on an abnormally low bid, recorded by an operator."""
    now = now or datetime.now(UTC)
    reason = reason.strip()
    if not centre(user):
        raise OrgError(_("Only an operator can record this decision."), 403)
    if decision not in DECISIONS:
        raise OrgError(_("Choose to accept or to reject the price."), 422)
    if not 1 <= len(reason) <= REASON_CHARS:
        raise OrgError(_("Please give a reason of at most {n} characters."), 422,
                       n=REASON_CHARS)
    review = await LowBidReview.get_or_none(id=review_id, bid__tender_id=tender.id)
    if review is None:
        raise OrgError(_("There is no such review in this tender."), 404)
    async with in_transaction():
        await _hold(tender)
        if not await LowBidReview.filter(id=review.id, decision__isnull=True).update(
                decision=decision, reason=reason, decided_by=f"staff:{user.username}",
                decided_at=now):
            raise OrgError(_("A decision on this price was already recorded."), 409)
    return await LowBidReview.get(id=review.id)


# --- preview and finalisation ---------------------------------------------------------------

@dataclass
class Standing:
    """What the evaluation stands at: the ranking so far and what still blocks finalisation."""

    results: list[evaluation.Result]
    criteria: list[TenderCriterion]
    bids: dict[int, Bid]
    missing_scores: int
    undecided: list[LowBidReview]
    evaluators: int


async def _entries(tender: Tender, excluded: set[int]) -> tuple[list[evaluation.Entry],
                                                                dict[int, Bid]]:
    bids = {b.id: b for b in await Bid.filter(tender_id=tender.id, status=BidStatus.VALID)
            .prefetch_related("organisation").order_by("id") if b.id not in excluded}
    scores: dict[int, dict[int, list[Decimal]]] = {b: {} for b in bids}
    for s in await CriterionScore.filter(bid_id__in=list(bids) or [0]):
        scores[s.bid_id].setdefault(s.criterion_id, []).append(s.score)
    return [evaluation.Entry(b.id, b.price, scores[b.id]) for b in bids.values()], bids


async def standing(tender: Tender, settings: Settings, *, seed: str | None = None,
                   excluded: set[int] | None = None) -> Standing:
    """The preview (no writes): the same math the finalisation uses."""
    criteria = await TenderCriterion.filter(tender_id=tender.id).order_by("position")
    entries, bids = await _entries(tender, excluded or set())
    evaluators = await TenderEvaluator.filter(tender_id=tender.id).values_list(
        "staff_user_id", flat=True)
    have = set(await CriterionScore.filter(bid_id__in=list(bids) or [0]).values_list(
        "bid_id", "criterion_id", "evaluator_id"))
    missing = sum(1 for b in bids for c in criteria for e in evaluators
                  if (b, c.id, e) not in have)
    undecided = await LowBidReview.filter(bid__tender_id=tender.id, decision__isnull=True) \
        .prefetch_related("bid__organisation")
    results = evaluation.evaluate(
        entries, method=tender.method, price_weight=tender.price_weight,
        weights={c.id: c.weight for c in criteria}, seed=seed)
    return Standing(results, criteria, bids, missing, undecided, len(evaluators))


def reveal_seed(tender: Tender, settings: Settings) -> str:
    """The draw seed, fixed at the opening: from draw_seed once revealed, else unsealed."""
    if tender.draw_seed:
        return tender.draw_seed
    return seal.unseal_seed(settings, tender)


async def finalise(tender: Tender, user: StaffUser, settings: Settings, *,
                   now: datetime | None = None) -> Tender:
    """Write the results once (DESIGN §6.3): refused while a low bid is undecided or a score is
    missing; rejected low bids are disqualified; too few valid bids make the tender fail; else
    BidResults, the tie draws, the revealed seed and a pending award for the first rank."""
    now = now or datetime.now(UTC)
    if not centre(user):
        raise OrgError(_("Only an operator can finalise the evaluation."), 403)
    async with in_transaction() as conn:
        claimed = await Tender.filter(id=tender.id, status=TenderStatus.ACTIVE,
                                      opened_at__isnull=False, finalised_at__isnull=True) \
            .update(finalised_at=now, updated_at=now)
        if not claimed:
            raise OrgError(_("The evaluation of this tender is closed."), 409)
        tender = await Tender.get(id=tender.id)
        undecided = await LowBidReview.filter(bid__tender_id=tender.id, decision__isnull=True) \
            .prefetch_related("bid__organisation")
        if undecided:
            raise OrgError(_("Decide on every abnormally low price first: {names}."), 409,
                           names="、".join(r.bid.organisation.name for r in undecided))
        rejected = set(await LowBidReview.filter(bid__tender_id=tender.id, decision="rejected",
                                                 bid__status=BidStatus.VALID)
                       .values_list("bid_id", flat=True))
        seed = reveal_seed(tender, settings)
        now_standing = await standing(tender, settings, seed=seed, excluded=rejected)
        if now_standing.criteria and now_standing.evaluators < settings.tender_min_evaluators:
            raise OrgError(_("At least {n} evaluators must be assigned."), 409,
                           n=settings.tender_min_evaluators)
        if now_standing.missing_scores:
            raise OrgError(_("{n} scores are still missing."), 409,
                           n=now_standing.missing_scores)
        for bid in await Bid.filter(id__in=sorted(rejected)).order_by("id"):
            await Bid.filter(id=bid.id).update(status=BidStatus.DISQUALIFIED,
                                               disqualified_reason="abnormally_low")
            await BidEvent.create(bid_id=bid.id, kind="disqualified", version=bid.version,
                                  actor=f"staff:{user.username}", created_at=now)
        if len(now_standing.results) < settings.tender_min_valid_bids:
            await Tender.filter(id=tender.id).update(
                status=TenderStatus.UNSUCCESSFUL, status_reason="fewer_than_3_valid",
                draw_seed=seed)
            await _unsuccessful_notices(tender, conn)
            return await Tender.get(id=tender.id)
        for r in now_standing.results:
            await BidResult.create(
                bid_id=r.bid_id, price_score=r.price_score, price_part=r.price_part,
                criteria_parts={str(c): str(v) for c, v in r.criteria_parts.items()},
                total=r.total, rank=r.rank, tie_group=r.tie_group, draw_key=r.draw_key)
        for group, order in evaluation.tie_groups(now_standing.results).items():
            await TieDraw.create(tender_id=tender.id, group=group, candidates=sorted(order),
                                 order=order, seed=seed, drawn_at=now)
        await Tender.filter(id=tender.id).update(draw_seed=seed)
        first = now_standing.results[0]
        bid = now_standing.bids[first.bid_id]
        await Award.create(tender_id=tender.id, bid_id=bid.id,
                           organisation_id=bid.organisation_id, value=bid.price,
                           created_at=now)
    return await Tender.get(id=tender.id)


async def _unsuccessful_notices(tender: Tender, conn) -> None:
    for bid in await Bid.filter(tender_id=tender.id,
                                status__in=(BidStatus.VALID, BidStatus.DISQUALIFIED)):
        await notify.to_org(
            bid.organisation_id, conn=conn, topic="tender.unsuccessful",
            ref=f"unsuccessful:{tender.code}", code=tender.code,
            title=_("Tender {tender} failed"),
            body=_("Tender {tender} failed: after the evaluation fewer bids are valid than "
                   "required."),
            url=f"/org/tenders/{tender.code}", link=_("Open the tender"), tender=tender.code)
