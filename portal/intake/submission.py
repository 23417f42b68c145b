"""What every channel hands to the intake, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from portal.photos import StoredPhoto

CHANNELS = ("telegram", "wechat", "web", "hotline", "open311")
IDENTITY_KINDS = ("tg", "wx", "web", "hotline", "tel", "open311")
CRS = ("wgs84", "gcj02")


@dataclass
class Submission:
    reporter: str  # identity key: tg:<id>, wx:<openid>, web:<email>, hotline:<line>-<year>-<no>
    channel: str
    text: str
    category: str
    lat: float | None = None
    lng: float | None = None
    crs: str = "wgs84"
    address: str | None = None
    language: str = "zh-CN"
    photos: list[StoredPhoto] = field(default_factory=list)
    # The channel's own id of this submission: a second delivery returns the first receipt.
    external_ref: str | None = None
    email: str | None = None
    phone: str | None = None
    extra: dict = field(default_factory=dict)
    # When it was received; the replay bench sets it, channels leave it to the clock.
    received_at: datetime | None = None


@dataclass
class Receipt:
    case_code: str
    case_id: int
    report_id: int
    status: str
    # new: a case of its own; repeat: the reporter said it again; merged: joined others' case.
    join: str
    report_count: int
    reporter_count: int
    message: str
    possible_duplicate_of: str | None = None
    recurrence_of: str | None = None
    # True when this was a second delivery of an already received submission.
    duplicate_delivery: bool = False

    @property
    def merged(self) -> bool:
        return self.join in ("repeat", "merged")


class InvalidSubmission(Exception):
    """The submission cannot be taken; `message` (English, translatable) says what to fix."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class Throttled(Exception):
    def __init__(self, retry_after: float, message: str):
        super().__init__(message)
        self.retry_after = int(retry_after)
        self.message = message
