"""One input applied to one person's state: what every step of the dialogue reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.dialogue.io import Button, Person, Ports, Say
from portal.i18n import _, gettext_for
from portal.intake.text import CONTROL_CHARS
from portal.intake.throttle import Throttle
from portal.settings import Settings

# The link to a case's tracking page, in the dialogue and in progress updates.
OPEN_CASE = _("Open the case page")


def clean(value: str | None, limit: int | None = None) -> str:
    # The intake's set: control characters (NUL breaks PostgreSQL text) but newline and tab.
    text = CONTROL_CHARS.sub("", value or "").strip()
    return text[:limit] if limit is not None else text


def language_of(hint: str | None) -> str:
    """The platform's language hint: Chinese (and no hint: WeChat gives none) is zh-CN, any
    other language English."""
    if not hint or hint.strip().lower().startswith("zh"):
        return "zh-CN"
    return "en"


def chosen_language(state: dict, hint: str | None) -> str:
    """The language the person chose (/lang, or the hint as it was at /start), else the
    platform's hint."""
    lang = state.get("lang")
    return lang if lang in ("zh-CN", "en") else language_of(hint)


@dataclass
class Turn:
    who: Person
    state: dict
    settings: Settings
    throttle: Throttle | None
    ports: Ports
    # A photo fetched and stored before the state was loaded (see Dialogue.handle).
    prepared: dict | None = None
    # /forget, or consent declined: the state is deleted instead of saved.
    forgotten: bool = False
    # A wrong number from a text-only channel: the buttons offered before still stand.
    keep_offer: bool = False
    replies: list[Say] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return chosen_language(self.state, self.who.language)

    @property
    def t(self):
        return gettext_for(self.lang)

    def say(self, text: str, buttons: list[list[Button]] | None = None, **kw) -> Say:
        reply = Say(text, buttons or [], language=self.lang, **kw)
        self.replies.append(reply)
        return reply
