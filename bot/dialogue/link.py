"""/link 482913 (绑定 482913): join this chat to a portal account with the one-time code the
account page shows. Five tries per chat an hour, so codes cannot be guessed."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from bot.dialogue.turn import Turn
from orgs.accounts.service import AccountError, redeem_link_code
from portal.intake.throttle import LocalWindows, Throttle
from portal.settings import Settings
from portal.web.keys import secret_key

LIMIT = "5/hour"
_fallback = Throttle(LocalWindows(), LIMIT, namespace="gridlink:link")
# Built once per dialogue throttle (one per running bot), not per /link.
_throttles: WeakKeyDictionary[Throttle, Throttle] = WeakKeyDictionary()
# The last settings' key (one bot per process): the key may be read from disk.
_key: tuple[Settings, bytes] | None = None


def _throttle(turn: Turn) -> Throttle:
    # The storage the dialogue's own throttle uses (Redis when configured), its own window.
    if turn.throttle is None:
        return _fallback
    built = _throttles.get(turn.throttle)
    if built is None:
        built = _throttles[turn.throttle] = Throttle(
            turn.throttle.storage, LIMIT, namespace=f"{turn.throttle.namespace}:link")
    return built


def _secret(turn: Turn) -> bytes:
    global _key
    if _key is None or _key[0] is not turn.settings:
        _key = (turn.settings, secret_key(turn.settings))
    return _key[1]


async def link(turn: Turn, code: str) -> None:
    t = turn.t
    code = code.strip()
    if not code:
        turn.say(t("Send /link followed by the 6-digit code from your account page, for example "
                   "/link 482913."))
        return
    wait = await _throttle(turn).hit(turn.who.identity)
    if wait is not None:
        turn.say(t("Too many tries. Please wait {minutes} minutes and try again.").format(
            minutes=max(1, round(wait / 60))))
        return
    try:
        account = await redeem_link_code(turn.who.identity, code, _secret(turn))
    except AccountError as exc:
        turn.say(exc.translated(t))
        return
    if account is None:
        turn.say(t("That code is wrong or has expired. Make a new one on your account page."))
        return
    turn.say(t("This chat is now linked to the account {name}.").format(
        name=account.display_name))
