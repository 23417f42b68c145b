"""The one JSON schema hotline systems post, and what they get back.

A batch is `{"tickets": [ticket, ...]}` with 1 to MAX_TICKETS tickets in at most MAX_BODY_BYTES.
Unknown fields are refused, so that a misspelt field name is noticed rather than dropped.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from portal.i18n import _

LINES = ("12345", "12319", "962121")
MAX_TICKETS = 500
# 500 tickets of 2,000 characters, even with every character \u-escaped, fit.
MAX_BODY_BYTES = 8 * 1024 * 1024

# C0 control characters other than tab and line breaks (PostgreSQL refuses NUL in text).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Line = Literal[LINES]
TicketStatus = Literal["created", "merged", "duplicate", "rejected"]


class HotlineTicket(BaseModel):
    """One call as the hotline system recorded it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line: Line = Field(description="The hotline that took the call: 12345, 12319 or 962121.")
    ticket_no: str = Field(
        min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The line's own ticket number (letters, digits, '-', '_', '.'); unique "
                    "per line. Sending it again returns the first answer.",
    )
    received_at: AwareDatetime = Field(
        description="When the call was taken: ISO 8601 with an offset, e.g. "
                    "2026-11-28T09:30:00+08:00.",
    )
    category: str | None = Field(
        None, max_length=32,
        description="Our category key (garbage, illegal_parking, road_damage, street_light, "
                    "noise, illegal_construction, water_leak, greenery, street_vendor, "
                    "manhole, other), when the line knows it.",
    )
    category_text: str | None = Field(
        None, max_length=100,
        description="The line's own category in words (e.g. 路灯不亮); mapped to our keys by "
                    "keywords when `category` is absent.",
    )
    address: str | None = Field(None, max_length=300, description="Where, as the caller said.")
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False,
                              description="WGS-84 latitude, with lng, when known.")
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False,
                              description="WGS-84 longitude, with lat, when known.")
    description: str = Field(min_length=1, max_length=2000,
                             description="What the caller reported.")
    caller_phone: str | None = Field(
        None, max_length=32, pattern=r"^\+?[0-9][0-9 -]{2,30}$",
        description="Kept privately for follow-up calls; never shown publicly or logged.",
    )

    @field_validator("line", "ticket_no", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        # Lines and ticket numbers are identifiers; a system that sends them as JSON numbers
        # means the same thing.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("received_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(_("Use an ISO 8601 date and time with an offset."))
        return value

    @field_validator("category", "category_text", "address", "caller_phone", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("category", "category_text", "address", "description")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and CONTROL.search(value):
            raise ValueError(_("Control characters are not allowed."))
        return value

    @model_validator(mode="after")
    def _both_coordinates(self) -> HotlineTicket:
        if (self.lat is None) != (self.lng is None):
            raise ValueError(_("Give both lat and lng, or neither."))
        return self


class HotlineBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tickets: list[HotlineTicket] = Field(min_length=1, max_length=MAX_TICKETS)


class TicketResult(BaseModel):
    ticket_no: str
    line: str
    status: TicketStatus = Field(
        description="created: a new case; merged: joined an existing case; duplicate: this "
                    "ticket was received before (the first answer's case); rejected: see error.")
    case_code: str | None = None
    error: str | None = None
    field: str | None = None


class BatchResult(BaseModel):
    results: list[TicketResult]
    created: int = 0
    merged: int = 0
    duplicate: int = 0
    rejected: int = 0


class FieldError(BaseModel):
    loc: str
    message: str
    type: str


class BatchRefused(BaseModel):
    detail: str
    errors: list[FieldError] = []


def _inline(schema: dict) -> dict:
    """The batch's JSON schema with its $defs inlined, for the OpenAPI request body."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


BATCH_JSON_SCHEMA = _inline(HotlineBatch.model_json_schema())
