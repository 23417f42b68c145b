"""Request and response bodies of the staff JSON API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from portal.cases.models import Status
from portal.hotline.schemas import Line
from portal.intake.text import CONTROL_CHARS
from portal.staff.models import Role
from portal.staff.service import API_KEY_KINDS

NOTE_CHARS = 2000
# C0 control characters other than tab and line breaks (PostgreSQL refuses NUL in text).
DEPARTMENT_CODE = r"^[a-z0-9_-]{1,32}$"


def _printable(value: str) -> str:
    if CONTROL_CHARS.search(value):
        raise ValueError("control characters are not allowed")
    return value


Text = Annotated[str, AfterValidator(_printable)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(_In):
    username: Text = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class StaffOut(BaseModel):
    username: str
    role: Role
    department: str | None = Field(None, description="Department code, for department accounts.")
    active: bool = True


class LoginOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: str = "bearer"
    expires_at: datetime
    user: StaffOut


class UserIn(_In):
    username: Text = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    department_code: str | None = Field(None, pattern=DEPARTMENT_CODE)


class UserList(BaseModel):
    items: list[StaffOut]


class ApiKeyIn(_In):
    name: Text = Field(min_length=1, max_length=100,
                       description="Who holds the key: the app's or hotline system's name.")
    kind: Literal[API_KEY_KINDS]
    line: Line | None = Field(
        None, description="For hotline keys: the only line whose tickets the key may send.")


class ApiKeyOut(BaseModel):
    """An API key's record; the key itself is never stored, only its SHA-256."""

    id: int
    name: str
    kind: str
    line: str | None
    active: bool
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key, shown this once: give it to the holder safely.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class CaseFilter(BaseModel):
    """Query parameters of the case list (all optional, combined with AND)."""

    model_config = ConfigDict(extra="forbid")

    status: list[Status] | None = Field(None, description="One or more statuses (repeat).")
    category: list[Text] | None = Field(None, description="One or more category keys (repeat).")
    department: str | None = Field(None, pattern=DEPARTMENT_CODE, description="Department code.")
    possible_duplicate: bool | None = Field(
        None, description="true: only cases flagged as a possible duplicate of another.")
    needs_review: bool | None = Field(
        None, description="true: only cases a reporter's poor rating or \"not fixed\" sent "
                          "back for review; false: only the others.")
    q: Text | None = Field(None, max_length=40, description="A case code, e.g. GL-20261128-0042.")
    created_from: date | datetime | None = Field(
        None, description="First reported at or after (a date is a Shanghai day; a time "
                          "without offset is Shanghai time).")
    created_to: date | datetime | None = Field(
        None, description="First reported at or before (a date includes that whole day).")
    before_id: int | None = Field(None, ge=1, le=2**63 - 1, description="Cursor: `next_before_id` of the "
                                                          "previous page.")
    limit: int = Field(50, ge=1, le=200)


class CaseSummary(BaseModel):
    id: int
    code: str
    category: str
    status: Status
    summary: str
    address: str | None
    department: str | None
    report_count: int
    reporter_count: int
    first_reported_at: datetime
    last_reported_at: datetime
    possible_duplicate_of: str | None = None
    master: str | None = Field(None, description="For a merged case: the case it went into.")
    review_requested_at: datetime | None = Field(
        None, description="When a reporter's poor rating or \"not fixed\" asked staff to look "
                          "again; cleared by the next status change or note.")


class CaseList(BaseModel):
    items: list[CaseSummary]
    next_before_id: int | None = Field(
        None, description="Pass as before_id for the next page; null on the last page.")


class Contact(BaseModel):
    email: str | None = None
    phone: str | None = None


class ReportOut(BaseModel):
    id: int
    channel: str
    identity: str
    language: str
    text: str
    category: str
    address: str | None
    lat: float | None
    lng: float | None
    raw_lat: float | None
    raw_lng: float | None
    crs: str
    received_at: datetime
    join: str
    score: float | None
    external_ref: str | None
    contact: Contact
    extra: dict[str, Any]


class EventOut(BaseModel):
    kind: str
    status_from: str | None
    status_to: str | None
    public_note: str | None
    internal_note: str | None
    actor: str
    public: bool
    data: dict[str, Any]
    created_at: datetime


class PhotoOut(BaseModel):
    id: int
    path: str
    kind: str
    report_id: int | None


class Candidate(BaseModel):
    code: str
    status: Status
    category: str
    summary: str
    address: str | None
    report_count: int
    first_reported_at: datetime
    score: float | None = None


class CaseDetail(CaseSummary):
    lat: float | None
    lng: float | None
    rejected_reason: str | None
    closed_at: datetime | None
    recurrence_of: str | None
    merged_from: list[str] = Field(description="Cases merged into this one.")
    possible_duplicate: Candidate | None = Field(
        None, description="The case this one may duplicate, as intake flagged it.")
    flagged_by: list[str] = Field(description="Cases flagged as possible duplicates of this one.")
    subscriber_count: int
    reports: list[ReportOut]
    events: list[EventOut]
    photos: list[PhotoOut]


class StatusIn(_In):
    status: Status
    public_note: Text | None = Field(None, max_length=NOTE_CHARS,
                                     description="Sent to everyone following the case.")
    internal_note: Text | None = Field(None, max_length=NOTE_CHARS, description="Staff only.")
    reason: Text | None = Field(None, max_length=NOTE_CHARS,
                               description="Required when the case is not accepted (rejected).")


class NoteIn(_In):
    public_note: Text | None = Field(None, max_length=NOTE_CHARS)
    internal_note: Text | None = Field(None, max_length=NOTE_CHARS)

    @model_validator(mode="after")
    def _some_note(self) -> NoteIn:
        if not (self.public_note or self.internal_note):
            raise ValueError("write a public or an internal note")
        return self


class DepartmentIn(_In):
    department_code: str | None = Field(
        pattern=DEPARTMENT_CODE,
        description="The responsible department; null takes the case back.")


class MergeIn(_In):
    into: Text = Field(min_length=1, max_length=40, description="Code of the case that lives on.")
