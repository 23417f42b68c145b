"""Reporting a problem: a draft filled in whatever order things arrive, then filed.

Each input fills the slots it can (a caption the description, a venue the place, one line
like 南京东路100号门口垃圾满了 the description and the address); the reply asks for the first
slot still empty: description, category, place, then a summary to send or cancel. Photos are
optional and may come at any time.
"""

from __future__ import annotations

import math
import re
import secrets

from tortoise.exceptions import IntegrityError

from bot.dialogue.io import Button, Link, Location, Photo, PhotoUnavailable, Ports
from bot.dialogue.turn import OPEN_CASE, Turn, clean
from bot.dialogue.welcome import ask_consent
from portal.cases.categories import BY_KEY, CATEGORIES
from portal.cases.public import case_url, category_name
from portal.i18n import _
from portal.intake import address, geo, text
from portal.intake.service import submit
from portal.intake.submission import CRS, InvalidSubmission, Submission, Throttled
from portal.photos import PhotoError, StoredPhoto, store_photo
from portal.settings import Settings

# Button args carry the draft id, so a button of an earlier report is recognised as such.
DRAFT_ID_BYTES = 8
# Receipts remembered for presses of an already sent report's buttons.
KEEP_SENT = 5
# Albums of a draft remembered as answered (an album's photos arrive within seconds).
KEEP_ALBUMS = 10
# A house number right after a road name: "100号", "1083弄".
_NUMBER = re.compile(r"\s*\d{1,5}\s*(?:号|弄|號)")


def new_draft() -> dict:
    return {"id": secrets.token_hex(DRAFT_ID_BYTES), "text": "", "category": None,
            "suggested": [], "lat": None, "lng": None, "crs": "wgs84", "venue": None,
            "address": None, "photos": [], "pending": [], "albums": [], "dropped": 0,
            "asked": None}


def draft(turn: Turn) -> dict:
    if not turn.state.get("draft"):
        turn.state["draft"] = new_draft()
    return turn.state["draft"]


def has_place(d: dict) -> bool:
    return d["lat"] is not None or bool(d["address"])


def suggest(description: str) -> list[str]:
    """Categories the text names, in the categories' order ("other" last)."""
    found = text.topics(description)
    keys = [c.key for c in CATEGORIES if c.key in found]
    if found & text.OTHER_KINDS or (found and not keys):
        keys.append("other")
    return keys


def address_in(description: str) -> str | None:
    """The address a one-line report carries: a road with its house number, or two crossing
    roads ("南京东路100号门口垃圾满了" -> "南京东路100号")."""
    normal = text.normalise(description)
    found = address.roads(normal)
    if not address.keys(normal):
        return None
    for n, (_road, start, end) in enumerate(found):
        m = _NUMBER.match(normal, end)
        if m:
            return normal[start:m.end()].replace(" ", "")
        if n + 1 < len(found) and found[n + 1][1] - end <= 2:
            return normal[start:found[n + 1][2]]
    return None


# ------------------------------------------------------------------------------ slots


def add_text(turn: Turn, d: dict, value: str) -> str | None:
    """Adds to the description; an error text when it would be too long."""
    value = clean(value)
    if not value:
        return None
    limit = turn.settings.max_text_chars
    joined = f"{d['text']}\n{value}" if d["text"] else value
    if len(joined) > limit:
        return turn.t("That is too long for one report: please keep it under {n} characters."
                      ).format(n=limit)
    if value not in d["text"]:
        d["text"] = joined
    if d["category"] is None:
        d["suggested"] = suggest(d["text"])
    if not has_place(d):
        found = address_in(value)
        if found:
            d["address"] = found
    return None


def set_location(turn: Turn, d: dict, loc: Location) -> str | None:
    try:
        lat, lng = float(loc.lat), float(loc.lng)
    except (TypeError, ValueError):
        lat = lng = math.nan
    if not geo.valid_point(lat, lng) or loc.crs not in CRS:
        return turn.t("That location could not be read. Please share it again or type the "
                      "address.")
    d["lat"], d["lng"], d["crs"] = lat, lng, loc.crs
    title, where = clean(loc.title, 100), clean(loc.address, 300)
    d["venue"] = " · ".join(p for p in (title, where) if p) or None
    if where:
        d["address"] = where
    return None


async def fetch_photo(ports: Ports, ref: str, settings: Settings) -> dict:
    """The picture stored without EXIF, as kept in a draft; {"error": msgid} when it can't be."""
    try:
        data = await ports.fetch_photo(ref)
        stored = await store_photo(data, settings.media_dir, max_bytes=settings.max_photo_bytes,
                                   max_pixels=settings.max_photo_pixels,
                                   max_side=settings.photo_max_side)
    except PhotoUnavailable:
        return {"error": _("That photo could not be downloaded. Please send it again.")}
    except PhotoError as exc:
        return {"error": str(exc)}
    return {"path": stored.path, "width": stored.width, "height": stored.height,
            "size": stored.size}


def photo_key(photo: Photo) -> str:
    return clean(photo.unique or photo.ref, 200)


def wants_photo(state: dict, photo: Photo, cap: int) -> bool:
    """Whether a photo is worth downloading for this state."""
    d = state.get("draft") or {}
    kept = d.get("photos") or []
    return (bool(state.get("consent")) and len(kept) < cap
            and photo_key(photo) not in {p.get("key") for p in kept})


async def on_photo(turn: Turn, photo: Photo) -> None:
    d = draft(turn)
    cap = turn.settings.max_photos
    problem = None
    if photo.caption:
        problem = add_text(turn, d, photo.caption)
    key = photo_key(photo)
    group = clean(photo.group, 100) or None
    first_of_album = group is not None and group not in d["albums"]
    if first_of_album:
        # A list: PostgreSQL's jsonb keeps no order of an object's keys.
        d["albums"] = [*d["albums"], group][-KEEP_ALBUMS:]
    kept = {p["key"] for p in d["photos"]} | {p["key"] for p in d["pending"]}
    if key in kept:
        if group is None:
            turn.say(turn.t("I have this photo already."))
        return
    if not turn.state.get("consent"):
        # Downloaded once the person agrees; nothing is stored before.
        if len(d["pending"]) < cap:
            d["pending"].append({"key": key, "ref": clean(photo.ref, 500)})
        if group is None or first_of_album:
            ask_consent(turn)
        return
    full = len(d["photos"]) >= cap
    stored = turn.prepared
    if not full and stored is None:
        stored = await fetch_photo(turn.ports, photo.ref, turn.settings)
    if full:
        d["dropped"] += 1
    elif "error" in stored:
        turn.say(turn.t(stored["error"]))
        return
    else:
        d["photos"].append({"key": key, **stored})
    if group is None:
        if full:
            turn.say(turn.t("Only {n} photos are kept with a report; that one was left out."
                            ).format(n=cap))
            d["dropped"] = 0
            return
    elif not first_of_album:
        # An album is answered once, by whichever of its messages got here first.
        if problem:
            turn.say(problem)
        return
    if problem:
        turn.say(problem)
    ask_next(turn, got_photo=True)


async def fetch_pending(turn: Turn) -> None:
    """The photos sent before the person agreed to the privacy notice."""
    d = turn.state.get("draft")
    if not d or not d["pending"]:
        return
    for item in d["pending"][: turn.settings.max_photos - len(d["photos"])]:
        stored = await fetch_photo(turn.ports, item["ref"], turn.settings)
        if "error" in stored:
            turn.say(turn.t(stored["error"]))
        else:
            d["photos"].append({"key": item["key"], **stored})
    d["pending"] = []


# ------------------------------------------------------------------------------ asking


def category_buttons(turn: Turn, d: dict, keys: list[str]) -> list[list[Button]]:
    # Two a row: eleven rows would not fit a phone's screen.
    found = [Button(category_name(k, turn.lang), "cat", f"{d['id']}.{k}") for k in keys]
    return [found[i:i + 2] for i in range(0, len(found), 2)]


def ask_next(turn: Turn, *, got_photo: bool = False) -> None:
    """Ask for the first thing the draft still lacks, or show the summary."""
    d = draft(turn)
    t = turn.t
    lead = ""
    if got_photo:
        lead = t("Photo received ({n} of {cap}).").format(n=len(d["photos"]),
                                                         cap=turn.settings.max_photos) + "\n"
    if not d["text"]:
        d["asked"] = "text"
        turn.say(lead + t("What is the problem? Describe it in a few words (for example: "
                          "\"rubbish piled up at the gate\")."))
    elif d["category"] is None:
        d["asked"] = "category"
        if len(d["suggested"]) == 1:
            key = d["suggested"][0]
            turn.say(lead + t("Is this about: {category}?").format(
                category=category_name(key, turn.lang)), [
                [Button(t("Yes, {category}").format(category=category_name(key, turn.lang)),
                        "cat", f"{d['id']}.{key}")],
                [Button(t("Another category"), "cats", d["id"])]])
        elif d["suggested"]:
            turn.say(lead + t("Which kind of problem is it?"),
                     category_buttons(turn, d, d["suggested"])
                     + [[Button(t("Another category"), "cats", d["id"])]])
        else:
            turn.say(lead + t("Which kind of problem is it?"),
                     category_buttons(turn, d, [c.key for c in CATEGORIES]))
    elif not has_place(d):
        d["asked"] = "place"
        turn.say(lead + t("Where is it? Share your location (the button below) or type the "
                          "address, e.g. 南京东路100号."), ask_location=True)
    else:
        d["asked"] = "confirm"
        turn.say(lead + summary(turn, d), [
            [Button(t("Send the report"), "send", d["id"])],
            [Button(t("Change category"), "cats", d["id"]),
             Button(t("Cancel"), "drop", d["id"])]])


def place_text(turn: Turn, d: dict) -> str:
    if d["venue"]:
        return d["venue"]
    if d["address"]:
        return d["address"]
    return turn.t("the location you shared")


def summary(turn: Turn, d: dict) -> str:
    t = turn.t
    description = d["text"] if len(d["text"]) <= 200 else d["text"][:200] + "…"
    lines = [t("Please check your report:"),
             t("Problem: {text}").format(text=description),
             t("Category: {category}").format(category=category_name(d["category"], turn.lang)),
             t("Place: {place}").format(place=place_text(turn, d)),
             t("Photos: {n}").format(n=len(d["photos"]))]
    if d["dropped"]:
        lines.append(t("Only {n} photos are kept with a report; the others were left out."
                       ).format(n=turn.settings.max_photos))
        d["dropped"] = 0
    elif len(d["photos"]) < turn.settings.max_photos:
        lines.append(t("You may still send photos (up to {n}).").format(
            n=turn.settings.max_photos))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ buttons


def sent_reports(state: dict) -> list:
    """[draft id, case code] of the last reports sent."""
    sent = state.get("sent")
    return sent if isinstance(sent, list) else []


def stale(turn: Turn, draft_id: str) -> bool:
    """A button of another report than the one being written: says so and answers True."""
    d = turn.state.get("draft")
    if d and d["id"] == draft_id:
        return False
    code = next((c for i, c in sent_reports(turn.state) if i == draft_id), None)
    if code:
        turn.say(turn.t("That report was already sent: case {code}.").format(code=code))
    else:
        turn.say(turn.t("That button belongs to an earlier report. Describe a problem to "
                        "start a new one, or send /help."))
    return True


def choose_category(turn: Turn, arg: str) -> None:
    draft_id, _sep, key = arg.partition(".")
    if stale(turn, draft_id):
        return
    if key not in BY_KEY:
        turn.say(turn.t("Please choose one of the categories."))
        show_categories(turn, draft_id)
        return
    turn.state["draft"]["category"] = key
    ask_next(turn)


def show_categories(turn: Turn, draft_id: str) -> None:
    if stale(turn, draft_id):
        return
    d = turn.state["draft"]
    turn.say(turn.t("Which kind of problem is it?"),
             category_buttons(turn, d, [c.key for c in CATEGORIES]))


def cancel(turn: Turn, draft_id: str | None = None) -> None:
    if draft_id is not None and stale(turn, draft_id):
        return
    had = bool(turn.state.pop("draft", None))
    turn.say(turn.t("Your unfinished report was deleted.") if had
             else turn.t("There was nothing to cancel."))


async def send(turn: Turn, draft_id: str) -> None:
    if stale(turn, draft_id):
        return
    d = turn.state["draft"]
    if not (d["text"] and d["category"] and has_place(d)):
        ask_next(turn)
        return
    t = turn.t
    sub = Submission(
        reporter=turn.who.identity, channel=turn.who.channel, text=d["text"],
        category=d["category"], lat=d["lat"], lng=d["lng"], crs=d["crs"],
        address=d["address"] or d["venue"], language=turn.lang,
        photos=[StoredPhoto(path=p["path"], width=p["width"], height=p["height"],
                            size=p["size"]) for p in d["photos"]],
        # A second run of the same press (a redelivered update, a retried save) files nothing
        # new: the intake answers with the first receipt.
        external_ref=f"dialogue:{d['id']}")
    try:
        try:
            receipt = await submit(sub, throttle=turn.throttle, settings=turn.settings)
        except IntegrityError:
            # The same draft filed at this moment by another process (a double tap handled
            # by two workers): the intake now answers with that report's receipt.
            receipt = await submit(sub, throttle=turn.throttle, settings=turn.settings)
    except Throttled as exc:
        turn.say(exc.message + "\n" + t("Your report is kept: tap the button once the time "
                                        "has passed."),
                 [[Button(t("Send the report"), "send", d["id"])]])
        return
    except InvalidSubmission as exc:
        turn.say(t(exc.message))
        ask_next(turn)
        return
    # (draft id, case code) pairs, newest last.
    turn.state["sent"] = [*sent_reports(turn.state), [d["id"], receipt.case_code]][-KEEP_SENT:]
    del turn.state["draft"]
    url = case_url(turn.settings.public_base_url, receipt.case_code)
    turn.say(receipt.message + "\n" + t("You will hear here how it goes. /my lists your cases."),
             [[Link(t(OPEN_CASE), url)]])
