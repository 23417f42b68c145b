"""/volunteer (志愿者): register the chat's person as a volunteer, with a display name asked
in the conversation and a home grid chosen from a list.

The state keeps the step under "vol": consent (leaderboard and privacy), name, grid.
"""

from __future__ import annotations

from bot.dialogue import welcome
from bot.dialogue.io import Button, Link
from bot.dialogue.turn import Turn, clean
from orgs.volunteers import service
from portal.i18n import _
from portal.intake.service import person_for

GRIDS_PER_PAGE = 8
ACTIONS = ("vol", "vgrid")
TASKS = _("Tasks to claim")


def start(turn: Turn) -> None:
    t = turn.t
    turn.state["vol"] = {"step": "consent"}
    text = t("Volunteers help in their grid: clean-ups, patrols, visits. Problems you report "
             "count as discoveries, and points for confirmed discoveries and tasks done put you "
             "on the leaderboard of your grid.")
    if not turn.state.get("consent"):
        text += "\n\n" + welcome.privacy(turn)
    text += "\n\n" + t("Your display name and points are shown on the leaderboard; your phone "
                       "number never is. Do you agree?")
    turn.say(text, [[Button(t("I agree"), "vol", "yes"), Button(t("No, thanks"), "vol", "no")]])


def asking_name(state: dict) -> bool:
    vol = state.get("vol")
    return isinstance(vol, dict) and vol.get("step") == "name"


async def press(turn: Turn, action: str, arg: str) -> None:
    t = turn.t
    vol = turn.state.get("vol")
    if not isinstance(vol, dict):
        turn.say(t("That button no longer works. Send /help to see what I can do."))
        return
    if action == "vol" and arg == "yes" and vol.get("step") == "consent":
        turn.state["consent"] = True
        vol["step"] = "name"
        turn.say(t("What name should others see on the leaderboard? (1 to 32 characters)"))
    elif action == "vol" and arg == "no":
        turn.state.pop("vol", None)
        turn.say(t("All right: you are not registered as a volunteer."))
    elif action == "vgrid" and vol.get("step") == "grid":
        # Button data comes back as sent, but a client can send anything: ASCII digits only.
        if arg.startswith("p") and arg[1:].isascii() and arg[1:].isdigit() and len(arg) < 6:
            await ask_grid(turn, int(arg[1:]))
        elif arg.isascii() and arg.isdigit() and len(arg) < 10:
            await register(turn, int(arg))
        else:
            await ask_grid(turn, 0)
    else:
        turn.say(t("That button no longer works. Send /help to see what I can do."))


async def on_name(turn: Turn, value: str) -> None:
    name = service.clean_name(clean(value, 200))
    problem = service.check_name(name)
    if problem:
        turn.say(turn.t(problem))
        return
    turn.state["vol"] = {"step": "grid", "name": name}
    await ask_grid(turn, 0)


async def ask_grid(turn: Turn, page: int) -> None:
    t = turn.t
    grids = await service.grids()
    if not grids:
        turn.state.pop("vol", None)
        turn.say(t("There are no grids to choose from yet. Please try again later."))
        return
    pages = (len(grids) + GRIDS_PER_PAGE - 1) // GRIDS_PER_PAGE
    page = min(max(page, 0), pages - 1)
    shown = grids[page * GRIDS_PER_PAGE:(page + 1) * GRIDS_PER_PAGE]
    rows = [[Button(g.name(turn.lang), "vgrid", str(g.id))] for g in shown]
    if pages > 1:
        rows.append([Button(t("More grids"), "vgrid", f"p{(page + 1) % pages}")])
    turn.say(t("Which grid do you mostly help in?"), rows)


async def register(turn: Turn, area_id: int) -> None:
    t = turn.t
    vol = turn.state["vol"]
    person = await person_for(turn.who.identity, turn.lang)
    try:
        v = await service.register(person.id, vol.get("name", ""), area_id,
                                   via=turn.who.channel, consent=True)
    except service.VolunteerError as exc:
        turn.say(exc.translated(t))
        await ask_grid(turn, 0)
        return
    turn.state.pop("vol", None)
    grid = next((g for g in await service.grids() if g.id == v.home_area_id), None)
    base = turn.settings.public_base_url.rstrip("/")
    turn.say(t("You are registered as a volunteer of {grid}, as {name}.").format(
        grid=grid.name(turn.lang) if grid else "", name=v.display_name),
        [[Link(t(TASKS), f"{base}/tasks")]])
