"""The channels progress updates go out through, registered at start-up.

Feedback never imports `bot`: each chat adapter builds a `Sender` for its channel and
registers it with the delivery worker (`Worker.register`), and feedback registers e-mail
itself. A sender turns a
channel-neutral `Notice` into its platform's message (buttons, templates, mail) and says how
it went (`Outcome`); the worker keeps the pace the sender asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Notice:
    """What one message tells one person, written in their language."""

    case_code: str
    language: str
    # A short line: what changed ("Case GL-… is resolved").
    title: str
    # The whole message: what changed, the notes, what happens next.
    body: str
    # The tracking page.
    url: str
    # The case's status now (its GLOSSARY name in the person's language), for template fields.
    status: str
    # Shanghai time of the latest change, "2026-11-28 14:05".
    when: str
    # Ask for a satisfaction rating (1-5 and "not fixed") with the channel's own controls.
    ask_rating: bool = False
    # Signed pages of this person for this case: rating it (for channels without buttons of
    # their own: e-mail, a WeChat template) and stopping the updates (e-mail).
    rate_url: str = ""
    unsubscribe_url: str = ""
    # The label of the link to `url` when it is not a case's page (a notice's "See the
    # result"): the body then leaves the address out, and each channel shows it its way (a
    # button, a link line). A notice (about_case False) is stopped from the account page, not
    # by a signed one-click link.
    link_text: str = ""
    about_case: bool = True


@dataclass(frozen=True)
class Outcome:
    # sent; retry (worth trying again later); unreachable (the address refuses us: blocked,
    # unfollowed, bounced); failed (this message can never go, e.g. rejected as malformed)
    status: str
    # For retry: the platform said when (Telegram's 429 retry_after), in seconds.
    retry_after: float | None = None
    detail: str = ""


SENT = Outcome("sent")


@dataclass(frozen=True)
class Pace:
    """The platform's limits: messages per second in all (every process together), and the
    least time between two messages to one address."""

    per_second: float
    per_address_s: float = 0.0


class Sender(Protocol):
    channel: str
    pace: Pace

    async def send(self, address: str, notice: Notice) -> Outcome: ...

    async def close(self) -> None: ...


def channel_of(identity: str) -> str | None:
    """The chat channel an identity is an address on (None: the person is reached by e-mail,
    when they left one, or only on the tracking page)."""
    if identity.startswith("tg:"):
        return "telegram"
    if identity.startswith("wx:"):
        return "wechat"
    return None
