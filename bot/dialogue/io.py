"""What a chat adapter hands the dialogue and what it gets back. No platform types here: the
Telegram and WeChat adapters translate their updates into these inputs and render these outputs
(keyboards, callback data, passive replies) themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Person:
    identity: str  # "tg:123456", "wx:<openid>"
    channel: str  # "telegram" | "wechat"
    language: str | None = None  # the platform's hint (Telegram's language_code), if any
    name: str | None = None


# Inputs: one per platform event.

@dataclass(frozen=True)
class Text:
    text: str  # WeChat voice: its speech-recognition text


@dataclass(frozen=True)
class Command:
    name: str  # start, report, my, case, lang, forget, help, cancel (a WeChat menu click too)
    arg: str = ""


@dataclass(frozen=True)
class Photo:
    ref: str  # opaque to the dialogue: a Telegram file_id, a WeChat MediaId
    caption: str | None = None
    group: str | None = None  # album id (Telegram media_group_id)
    unique: str | None = None  # a stable id of the same picture (Telegram file_unique_id)


@dataclass(frozen=True)
class Location:
    lat: float
    lng: float
    crs: str = "wgs84"  # WeChat sends "gcj02"
    title: str | None = None  # a venue's name
    address: str | None = None  # a venue's address


@dataclass(frozen=True)
class Press:
    """A button the dialogue produced was pressed."""

    action: str
    arg: str = ""


@dataclass(frozen=True)
class Choice:
    """For channels without buttons (WeChat text messages): the person answered with the
    number of a button of the dialogue's last answer. The buttons are numbered from 1, row by
    row, across all the Says of that answer; Links are not counted."""

    number: int


Input = Text | Command | Photo | Location | Press | Choice


# Outputs.

@dataclass(frozen=True)
class Button:
    label: str
    action: str  # at most 8 ASCII letters
    arg: str = ""  # at most 40 bytes, no ":" (Telegram callback data holds 64 bytes)


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass
class Say:
    text: str
    buttons: list[list[Button | Link]] = field(default_factory=list)
    ask_location: bool = False  # offer the platform's "send my location" control
    replace: bool = False  # may replace the message whose button was pressed (paging)
    # The language it is written in: an adapter writes what it adds (a location button's
    # label) in the same one.
    language: str | None = None


class Ports(Protocol):
    """What the dialogue asks of the adapter."""

    async def fetch_photo(self, ref: str) -> bytes:
        """The picture's bytes, bounded by the platform's and our limits; raises PhotoUnavailable."""
        ...


class PhotoUnavailable(Exception):
    """The platform would not give us the picture (too big, expired, gone)."""
