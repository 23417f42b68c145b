"""The dialogue: one input of one person in, the replies out.

`Dialogue.handle` loads the person's state, applies the input and saves the state
compare-and-set; when another process saved in between (two messages of one person handled at
once, the photos of an album) it loads again and applies the input again. What a step does
besides changing the state is safe to repeat: filing goes through the intake with the draft's
id as external_ref, photos are stored under their hash, ratings replace the earlier one.
"""

from __future__ import annotations

import copy
import logging
import re

from bot.dialogue import cases, link, report, volunteer, welcome
from bot.dialogue.io import (
    Button,
    Choice,
    Command,
    Input,
    Location,
    Person,
    Photo,
    Ports,
    Press,
    Say,
    Text,
)
from bot.dialogue.store import Conflict, DialogueStore
from bot.dialogue.turn import Turn, chosen_language, clean
from feedback.worker import came_back
from portal.cases.models import Identity
from portal.intake.throttle import Throttle
from portal.settings import Settings

log = logging.getLogger(__name__)

# Saves lost to other processes before giving up (an album of ten photos, handled at once,
# costs the last one nine retries).
MAX_ATTEMPTS = 12
# A case number typed as a message is looked up.
_CASE_CODE = re.compile(r"^\s*(GL-\d{8}-\d{4,6})\s*$", re.IGNORECASE)


class Dialogue:
    def __init__(self, settings: Settings, throttle: Throttle | None, store: DialogueStore):
        self.settings = settings
        self.throttle = throttle
        self.store = store

    async def handle(self, who: Person, inp: Input, ports: Ports) -> list[Say]:
        # Someone who blocked the bot and writes again can be sent updates again.
        await came_back(who.identity)
        prepared = None
        for attempt in range(MAX_ATTEMPTS):
            state, version = await self.store.load(who.identity)
            before = copy.deepcopy(state)
            if "consent" not in state and await Identity.exists(key=who.identity):
                # Someone who reported or followed before agreed then (their state may have
                # expired since); /forget removes the identity.
                state["consent"] = True
            if attempt == 0 and isinstance(inp, Photo) and report.wants_photo(
                    state, inp, self.settings.max_photos):
                # Downloaded once, not again on a retry; whether it is kept is decided again
                # against the state the save goes with.
                prepared = await report.fetch_photo(ports, inp.ref, self.settings)
            turn = Turn(who=who, state=state, settings=self.settings, throttle=self.throttle,
                        ports=ports, prepared=prepared)
            await step(turn, inp)
            if not turn.keep_offer:
                remember_offer(state, turn.replies)
            if turn.forgotten:
                await self.store.forget(who.identity)
                return turn.replies
            if state == before:
                return turn.replies
            try:
                await self.store.save(who.identity, state, version)
            except Conflict:
                continue
            return turn.replies
        log.warning("dialogue state of one person kept changing; input not applied")
        turn = Turn(who, state, self.settings, None, ports)
        return [Say(turn.t("Sorry, that did not get through. Please send it again."),
                    language=turn.lang)]

    async def language(self, who: Person) -> str:
        """The language to write to the person in outside a turn (what an adapter says on its
        own: a flood warning, an error's apology, a hint): their choice, else the platform's
        hint."""
        state, _version = await self.store.load(who.identity)
        return chosen_language(state, who.language)


def remember_offer(state: dict, replies: list[Say]) -> None:
    """The buttons of this answer, in the order a Choice numbers them."""
    if not replies:
        return  # (an album's later photos answer nothing: the last answer stands)
    offer = [[b.action, b.arg] for r in replies for row in r.buttons for b in row
             if isinstance(b, Button)]
    if offer:
        state["offer"] = offer
    else:
        state.pop("offer", None)


async def step(turn: Turn, inp: Input) -> None:
    state = turn.state
    if not isinstance(inp, Text) and not (isinstance(inp, Press) and inp.action == "skip"):
        # A rating's comment is the very next text; anything else moves on.
        state.pop("rating", None)
    if isinstance(inp, Command):
        await command(turn, clean(inp.name, 32).lower().lstrip("/"), clean(inp.arg, 200))
    elif isinstance(inp, Press):
        await press(turn, clean(inp.action, 16), clean(inp.arg, 64))
    elif isinstance(inp, Choice):
        offer = state.get("offer") or []
        number = inp.number if isinstance(inp.number, int) else 0
        if 1 <= number <= len(offer):
            action, arg = offer[number - 1]
            await press(turn, action, arg)
        else:
            turn.keep_offer = True
            turn.say(turn.t("Please answer with one of the numbers shown, or send /help."))
    elif isinstance(inp, Text):
        await on_text(turn, inp.text if isinstance(inp.text, str) else "")
    elif isinstance(inp, Photo):
        await report.on_photo(turn, inp)
    elif isinstance(inp, Location):
        d = report.draft(turn)
        problem = report.set_location(turn, d, inp)
        if problem:
            turn.say(problem)
        elif not state.get("consent"):
            welcome.ask_consent(turn)
        else:
            report.ask_next(turn)
    else:
        welcome.hint(turn)


async def command(turn: Turn, name: str, arg: str) -> None:
    state = turn.state
    if name == "start":
        if "lang" not in state:
            state["lang"] = turn.lang
        welcome.start(turn)
    elif name == "help":
        welcome.help_text(turn)
    elif name == "lang":
        turn.say(turn.t("Choose your language:"), welcome.language_buttons())
    elif name == "report":
        if not state.get("consent"):
            welcome.ask_consent(turn)
            return
        report.ask_next(turn)
    elif name == "cancel":
        state.pop("rating", None)
        state.pop("vol", None)
        report.cancel(turn)
    elif name == "my":
        await cases.my_cases(turn, 0)
    elif name == "case":
        await cases.show_case(turn, arg)
    elif name == "forget":
        cases.ask_forget(turn)
    elif name == "night":
        await cases.night(turn, None)
    elif name == "volunteer":
        volunteer.start(turn)
    elif name == "link":
        await link.link(turn, arg)
    else:
        welcome.hint(turn)


async def press(turn: Turn, action: str, arg: str) -> None:
    state = turn.state
    if action == "consent":
        if arg == "yes":
            state["consent"] = True
            await report.fetch_pending(turn)
            follow = state.pop("follow_after", None)
            if follow:
                await cases.follow(turn, follow, True)
            elif state.get("draft"):
                report.ask_next(turn)
            else:
                turn.say(turn.t("Thank you.") + "\n"
                         + turn.t("Describe a problem to report it, or send /help."))
        elif arg == "no":
            # Their draft and everything else of the conversation go.
            turn.forgotten = True
            turn.say(turn.t("All right: nothing will be filed and nothing is kept. You can "
                            "still look up cases with /case, and agree later with /start."))
        else:
            welcome.hint(turn)
    elif action == "lang" and arg in ("zh-CN", "en"):
        state["lang"] = arg
        turn.say(turn.t("I will write in English from now on.") if arg == "en"
                 else turn.t("I will write in Chinese from now on."))
        if not state.get("consent"):
            # The privacy notice again, in the language chosen.
            welcome.start(turn)
        elif state.get("draft"):
            report.ask_next(turn)
    elif action == "cat":
        report.choose_category(turn, arg)
    elif action == "cats":
        report.show_categories(turn, arg)
    elif action == "send":
        await report.send(turn, arg)
    elif action == "drop":
        report.cancel(turn, arg)
    elif action == "my":
        await cases.my_cases(turn, int(arg) if arg.isascii() and arg.isdigit() and len(arg) < 6
                             else 0,
                             replace=True)
    elif action == "case":
        await cases.show_case(turn, arg, from_list=True)
    elif action in ("follow", "unfol"):
        await cases.follow(turn, arg, action == "follow")
    elif action == "rate":
        await cases.rate(turn, arg)
    elif action == "night" and arg in ("on", "off"):
        await cases.night(turn, arg == "on")
    elif action in volunteer.ACTIONS:
        await volunteer.press(turn, action, arg)
    elif action == "skip":
        state.pop("rating", None)
        turn.say(turn.t("Thank you for your rating."))
    elif action == "forget":
        if arg == "yes":
            await cases.forget(turn)
        else:
            turn.say(turn.t("Nothing was removed."))
    else:
        turn.say(turn.t("That button no longer works. Send /help to see what I can do."))


async def on_text(turn: Turn, value: str) -> None:
    state = turn.state
    if len(value) > 4 * turn.settings.max_text_chars:
        turn.say(turn.t("That is too long for one report: please keep it under {n} characters."
                        ).format(n=turn.settings.max_text_chars))
        return
    value = clean(value)
    if not value:
        welcome.hint(turn)
        return
    if state.get("rating"):
        await cases.rating_comment(turn, value)
        return
    if volunteer.asking_name(state):
        await volunteer.on_name(turn, value)
        return
    m = _CASE_CODE.match(value)
    if m:
        await cases.show_case(turn, m.group(1))
        return
    if value.startswith("/"):
        welcome.hint(turn)
        return
    d = report.draft(turn)
    if d["text"] and not report.has_place(d) and d["asked"] == "place":
        d["address"] = clean(value, 300)
    else:
        problem = report.add_text(turn, d, value)
        if problem:
            turn.say(problem)
            return
    if not state.get("consent"):
        welcome.ask_consent(turn)
        return
    report.ask_next(turn)
