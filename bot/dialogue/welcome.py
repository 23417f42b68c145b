"""Greeting, privacy notice and consent, language, help."""

from __future__ import annotations

from bot.dialogue.io import Button
from bot.dialogue.turn import Turn


def privacy(turn: Turn) -> str:
    days = turn.settings.dialogue_draft_days
    return turn.t(
        "Privacy: we keep your chat ID and what you report (description, place, photos) to "
        "handle it and to tell you how it goes. An unfinished report is deleted after {days} "
        "days; sent reports stay as case records. The public case page shows the description "
        "and a rough place, never who you are. Send /forget at any time to remove your chat "
        "ID and contact details.").format(days=f"{days:g}")


def ask_consent(turn: Turn) -> None:
    t = turn.t
    turn.say(t("Before I can file a report, please read this.") + "\n\n" + privacy(turn)
             + "\n\n" + t("Do you agree?"),
             [[Button(t("I agree"), "consent", "yes"), Button(t("No, thanks"), "consent", "no")]])


def language_buttons() -> list[list[Button]]:
    # Each language named in itself.
    return [[Button("中文", "lang", "zh-CN"), Button("English", "lang", "en")]]


def start(turn: Turn) -> None:
    t = turn.t
    hello = t("Hello! This is Gridlink, your district's grid management service. Tell me about "
              "a problem in your neighbourhood (rubbish, a broken street light, a pothole) and "
              "I will pass it on and tell you how it goes.")
    if turn.state.get("consent"):
        turn.say(hello + "\n" + t("Describe a problem to report it, or send /help."))
        return
    turn.say(hello + "\n\n" + privacy(turn) + "\n\n" + t("Do you agree?"),
             [[Button(t("I agree"), "consent", "yes"), Button(t("No, thanks"), "consent", "no")],
              *language_buttons()])


def help_text(turn: Turn) -> None:
    t = turn.t
    turn.say("\n".join([
        t("To report a problem, just describe it; you can add a photo and your location, in "
          "any order."),
        t("/my: your cases and how they are going"),
        t("/case GL-…: look up a case by its number"),
        t("/cancel: drop the report you are writing"),
        t("/lang: 中文 or English"),
        t("/night: whether updates may come at night (22:00–08:00)"),
        t("/forget: remove your chat ID and contact details"),
        t("/volunteer: become a volunteer of your grid"),
        t("/link 123456: link this chat to your portal account"),
    ]))


def hint(turn: Turn) -> None:
    turn.say(turn.t("Sorry, I did not understand that. Describe a problem to report it, or send "
                    "/help."))
