"""My cases, looking a case up, following it, rating it, and forgetting the person.

Only what the public tracking page shows is shown of a case (portal.cases.public).
"""

from __future__ import annotations

from tortoise import connections

from bot.dialogue.io import Button, Link
from bot.dialogue.turn import OPEN_CASE, Turn, clean
from bot.dialogue.welcome import ask_consent
from feedback.service import record_rating
from feedback.worker import forget_address
from portal.cases import public
from portal.cases.models import Case, Identity, Person, Report, Status, Subscription
from portal.cases.people import forget_identity
from portal.cases.service import SHANGHAI, subscribe
from portal.i18n import gettext_for, translations
from portal.intake.service import person_for

PAGE_SIZE = 5
# The last entries of a timeline shown in chat (the case page has them all).
TIMELINE_ENTRIES = 8
# Statuses whose satisfaction buttons count: a case being worked on again waits.
RATEABLE = (Status.RESOLVED, Status.CLOSED)
# Rating arg: "<case code>.<score>", score 1-5, or 0 for "not fixed".
NOT_FIXED = 0


async def _person_id(identity: str) -> int | None:
    return await Identity.get_or_none(key=identity).values_list("person_id", flat=True)




async def my_cases(turn: Turn, page: int, *, replace: bool = False) -> None:
    t = turn.t
    person_id = await _person_id(turn.who.identity)
    ids: set[int] = set()
    if person_id is not None:
        ids |= set(await Subscription.filter(person_id=person_id)
                   .values_list("case_id", flat=True))
        ids |= set(await Report.filter(person_id=person_id).values_list("case_id", flat=True))
    if not ids:
        turn.say(t("You have no cases yet. Describe a problem to report it."), replace=replace)
        return
    living: dict[int, Case] = {}
    for case in await Case.filter(id__in=ids).order_by("-id"):
        case = await public.living_case(case)
        living.setdefault(case.id, case)
    shown = sorted(living.values(), key=lambda c: -c.id)
    pages = (len(shown) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    rows: list[list[Button]] = [
        [Button(f"{c.code} · {public.status_label(c.status, turn.lang)}", "case", c.code)]
        for c in shown[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]]
    nav = []
    if page > 0:
        nav.append(Button(t("‹ Newer"), "my", str(page - 1)))
    if page + 1 < pages:
        nav.append(Button(t("Older ›"), "my", str(page + 1)))
    if nav:
        rows.append(nav)
    turn.say(t("Your cases ({n}), page {page} of {pages}. Tap one to see how it is going.").format(
        n=len(shown), page=page + 1, pages=pages), rows, replace=replace)


async def _find(turn: Turn, code: str) -> Case | None:
    code = clean(code, 40).upper()
    case = await public.find_case(code) if code else None
    if case is None:
        turn.say(turn.t("There is no case with the number {code}. Case numbers look like "
                        "GL-20261128-0042.").format(code=code or "?") if code
                 else turn.t("Send the case number, e.g. /case GL-20261128-0042."))
        return None
    return await public.living_case(case)


async def show_case(turn: Turn, code: str, *, from_list: bool = False) -> None:
    case = await _find(turn, code)
    if case is None:
        return
    t, lang = turn.t, turn.lang
    depts = await public.departments()
    view = public.public_case(case, lang, depts)
    lines = [f"{view.code} · {view.status_label}", view.category]
    if view.place:
        lines[-1] += f" · {view.place}"
    summary = view.summary if len(view.summary) <= 200 else view.summary[:200] + "…"
    if summary:
        lines.append(summary)
    lines.append(translations(lang).ngettext(
        "Reported by {n} person.", "Reported by {n} people.", view.reporter_count
    ).format(n=view.reporter_count))
    entries = public.timeline(await public.public_events(case.id), lang, depts)
    if entries:
        lines.append("")
        for e in entries[-TIMELINE_ENTRIES:]:
            line = f"{e.at.astimezone(SHANGHAI):%m-%d %H:%M} {e.title}"
            if e.note:
                line += f": {e.note[:200]}"
            lines.append(line)
    person_id = await _person_id(turn.who.identity)
    following = person_id is not None and await Subscription.exists(
        case_id=case.id, person_id=person_id)
    rows: list[list[Button | Link]] = [
        [Button(t("Stop following"), "unfol", case.code) if following
         else Button(t("Follow this case"), "follow", case.code)],
        [Link(t(OPEN_CASE), public.case_url(turn.settings.public_base_url, case.code))]]
    if from_list:
        rows.append([Button(t("‹ My cases"), "my", "0")])
    turn.say("\n".join(lines), rows)


async def follow(turn: Turn, code: str, on: bool) -> None:
    t = turn.t
    case = await _find(turn, code)
    if case is None:
        return
    if not on:
        person_id = await _person_id(turn.who.identity)
        if person_id is not None:
            await Subscription.filter(case_id=case.id, person_id=person_id).delete()
        turn.say(t("You no longer follow case {code}.").format(code=case.code),
                 [[Button(t("Follow this case"), "follow", case.code)]])
        return
    if not turn.state.get("consent"):
        # Following keeps the chat ID: the privacy notice first.
        turn.state["follow_after"] = case.code
        ask_consent(turn)
        return
    person = await person_for(turn.who.identity, turn.lang)
    if not await Subscription.exists(case_id=case.id, person_id=person.id):
        await subscribe(case, person, turn.who.identity, connections.get("default"),
                        reason="follower")
    turn.say(t("You follow case {code}: you will hear here how it goes.").format(code=case.code),
             [[Button(t("Stop following"), "unfol", case.code)]])


# ------------------------------------------------------------------------------ rating


def rating_buttons(code: str, language: str) -> list[list[Button]]:
    """The satisfaction buttons a progress update carries ("resolved"): 1-5 and "not
    fixed". Each is Press("rate", f"{code}.{score}"), 0 for "not fixed"."""
    t = gettext_for(language)
    return [[Button("★" * n, "rate", f"{code}.{n}") for n in range(1, 6)],
            [Button(t("Not fixed yet"), "rate", f"{code}.{NOT_FIXED}")]]


def _parse_rating(arg: str) -> tuple[str, int] | None:
    code, _sep, score = arg.rpartition(".")
    if not code or len(score) != 1 or score not in "012345":
        return None
    return code, int(score)


async def rate(turn: Turn, arg: str) -> None:
    t = turn.t
    parsed = _parse_rating(arg)
    if parsed is None:
        turn.say(t("That button no longer works. Send /help to see what I can do."))
        return
    case = await _find(turn, parsed[0])
    if case is None:
        return
    person_id = await _person_id(turn.who.identity)
    involved = person_id is not None and (
        await Subscription.exists(case_id=case.id, person_id=person_id)
        or await Report.exists(case_id=case.id, person_id=person_id))
    if not involved:
        turn.say(t("Only the people who reported or follow case {code} can rate it.").format(
            code=case.code))
        return
    if case.status not in RATEABLE:
        turn.say(t("Case {code} is {status}; you can rate it once it is resolved.").format(
            code=case.code, status=public.status_label(case.status, turn.lang)))
        return
    score = parsed[1]
    fixed = False if score == NOT_FIXED else None
    score = score or 1
    await record_rating(case.id, person_id, score, fixed, None, turn.who.channel,
                        reopen_after=turn.settings.reopen_after_not_fixed)
    turn.state["rating"] = {"case": case.id, "code": case.code, "score": score,
                            "fixed": fixed}
    ask = (t("Sorry it is not fixed yet. What is still wrong? Type it, or tap Skip.")
           if fixed is False else
           t("Thank you for your rating. Anything to add? Type a comment, or tap Skip."))
    turn.say(ask, [[Button(t("Skip"), "skip", case.code)]])


async def rating_comment(turn: Turn, value: str) -> None:
    r = turn.state.pop("rating")
    person_id = await _person_id(turn.who.identity)
    if person_id is None:
        return
    await record_rating(r["case"], person_id, r["score"], r["fixed"], clean(value, 1000),
                        turn.who.channel, reopen_after=turn.settings.reopen_after_not_fixed)
    turn.say(turn.t("Thank you. Your comment was passed on with your rating of case {code}."
                    ).format(code=r["code"]))


# ------------------------------------------------------------------------------ night


async def night(turn: Turn, on: bool | None) -> None:
    """Progress updates during the quiet hours (22:00-08:00) or held until the morning.
    `on` None shows the choice."""
    t = turn.t
    if on is not None:
        if not turn.state.get("consent"):
            ask_consent(turn)
            return
        person = await person_for(turn.who.identity, turn.lang)
        await Person.filter(id=person.id).update(updates_at_night=on)
        turn.say(t("Updates will reach you at any hour, also at night.") if on else
                 t("Updates found at night will wait until 08:00 (urgent ones excepted)."))
        return
    person_id = await _person_id(turn.who.identity)
    at_night = person_id is not None and await Person.filter(
        id=person_id, updates_at_night=True).exists()
    turn.say(t("Updates now reach you at any hour.") if at_night else
             t("Updates found between 22:00 and 08:00 now wait until the morning, except "
               "urgent ones."),
             [[Button(t("At any hour"), "night", "on"),
               Button(t("Not at night"), "night", "off")]])


# ------------------------------------------------------------------------------ forget


def ask_forget(turn: Turn) -> None:
    t = turn.t
    turn.say(t("This removes your chat ID, the cases you follow here, your unfinished report and "
               "any contact details you gave. Your reports stay, without your name. Continue?"),
             [[Button(t("Yes, forget me"), "forget", "yes"), Button(t("No"), "forget", "no")]])


async def forget(turn: Turn) -> None:
    await forget_identity(turn.who.identity)
    await forget_address(turn.who.identity)
    turn.forgotten = True
    turn.say(turn.t("Done: we removed your chat ID and contact details. Your reports stay, "
                    "anonymised. Send /start if you want to use the service again."))
