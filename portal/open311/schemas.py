"""What the Open311 endpoints accept and answer, for the OpenAPI schema.

The handlers parse and render by hand (portal/open311/web.py) so that refusals come in the spec's
error format; these models and schemas only document the wire format, faithfully enough for
schemathesis to generate valid and invalid requests from them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from portal.cases.categories import CATEGORIES
from portal.open311.service import (
    ID_PATTERN,
    MAX_ADDRESS_CHARS,
    MAX_EMAIL_CHARS,
    MAX_ID_CHARS,
    MAX_URL_CHARS,
    PHONE_PATTERN,
)
from portal.settings import Settings

MAX_TEXT_CHARS = Settings.model_fields["max_text_chars"].default
MAX_PHOTOS = Settings.model_fields["max_photos"].default


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str = Field(description="Always realtime: the request id is answered at once.")
    keywords: str
    group: str


class DiscoveryEndpoint(BaseModel):
    specification: str = Field(description="http://wiki.open311.org/GeoReport_v2")
    url: str = Field(description="The API's base address (GRIDLINK_PUBLIC_BASE_URL + /open311/v2).")
    changeset: str = Field(description="When the service list or a definition last changed.")
    type: str = Field(description="production")
    formats: list[str]


class Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str = Field(description="How to get an API key for posting.")
    endpoints: list[DiscoveryEndpoint]


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[dict] = Field(description="Empty: no service asks for extra attributes.")


class PostedRequest(BaseModel):
    service_request_id: str = Field(description="The public case code, e.g. GL-20261128-0042; "
                                                "the existing case's code when merged.")
    service_notice: str | None
    account_id: str | None


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str = Field(description="open or closed")
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None = Field(description="Phone numbers and e-mail addresses masked.")
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None = Field(description="Road names only.")
    address_id: str | None
    zipcode: str | None
    lat: float | None = Field(description="Rounded to 3 decimals (about 100 m).")
    long: float | None = Field(description="Rounded to 3 decimals (about 100 m).")
    media_url: str | None = Field(description="A photo of the repair, when there is one.")


class Error(BaseModel):
    code: int = Field(description="The HTTP status.")
    description: str = Field(description="What to do, in the request's language.")


def _text(max_length: int, description: str, **extra) -> dict:
    return {"type": "string", "maxLength": max_length, "description": description, **extra}


_IDENT = {"pattern": ID_PATTERN}

FORM_PROPERTIES: dict[str, dict] = {
    "api_key": {"type": "string", "maxLength": 200,
                "description": "An Open311 key (`gridlink apikey NAME --kind open311`)."},
    "jurisdiction_id": _text(100, "Accepted and ignored: one jurisdiction."),
    "service_code": {"type": "string", "enum": [c.key for c in CATEGORIES]},
    "lat": {"type": "number", "minimum": -90, "maximum": 90,
            "description": "WGS-84 latitude, decimal degrees."},
    "long": {"type": "number", "minimum": -180, "maximum": 180,
             "description": "WGS-84 longitude, decimal degrees."},
    "address_string": _text(MAX_ADDRESS_CHARS, "Where the problem is.", pattern=r"\S"),
    "address_id": _text(MAX_ID_CHARS, "Kept with the report.", **_IDENT),
    "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL_CHARS,
              "description": "Private: never published."},
    "phone": {"type": "string", "pattern": PHONE_PATTERN,
              "description": "Private: never published."},
    "device_id": _text(MAX_ID_CHARS, "Identifies the reporter when there is no email.", **_IDENT),
    "account_id": _text(MAX_ID_CHARS, "Identifies the reporter when there is no email "
                                      "(before device_id).", **_IDENT),
    "first_name": _text(MAX_ID_CHARS, "Private: never published.", **_IDENT),
    "last_name": _text(MAX_ID_CHARS, "Private: never published.", **_IDENT),
    "description": _text(MAX_TEXT_CHARS, "The problem, in a few words.", pattern=r"\S"),
    "media_url": {"type": "string", "maxLength": MAX_URL_CHARS, "pattern": r"^https?://[^\s/]+",
                  "description": "Kept as a link; never fetched."},
    "locale": {"type": "string", "enum": ["zh-CN", "en"],
               "description": "Language of the answer (else Accept-Language; zh-CN by default)."},
}

_REQUIRED_ONE_OF = {
    "allOf": [
        {"anyOf": [{"required": ["lat", "long"]}, {"required": ["address_string"]}]},
        {"anyOf": [{"required": ["email"]}, {"required": ["phone"]},
                   {"required": ["device_id"]}, {"required": ["account_id"]}]},
    ],
}

_FORM_SCHEMA = {
    "type": "object",
    "properties": FORM_PROPERTIES,
    "required": ["api_key", "service_code", "description"],
    "dependentRequired": {"lat": ["long"], "long": ["lat"]},
    **_REQUIRED_ONE_OF,
}

_MEDIA = {"type": "array", "maxItems": MAX_PHOTOS,
          "items": {"type": "string", "format": "binary"},
          "description": "Photos (JPEG, PNG, WebP or GIF); stored re-encoded, without EXIF."}

POST_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
        "multipart/form-data": {
            "schema": {**_FORM_SCHEMA,
                       "properties": {**FORM_PROPERTIES, "media": _MEDIA}},
        },
    },
}

MEDIA_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"api_key": FORM_PROPERTIES["api_key"],
                               "locale": FORM_PROPERTIES["locale"],
                               "media": {**_MEDIA, "minItems": 1}},
                "required": ["api_key", "media"],
            },
        },
    },
}

_XML = {"application/xml": {"schema": {"type": "string"}}}


def responses(model, *codes: int, description: str = "") -> dict:
    """The OpenAPI `responses` of a route: the answer as JSON or XML, and its refusals."""
    meaning = {
        400: "A parameter or field is missing or not valid; the description says which.",
        403: "The api_key is missing or not valid.",
        404: "Unknown service_code or service_request_id, or a format other than json/xml.",
        413: "The body or a photo is too large.",
        415: "The body is neither form-encoded nor multipart/form-data.",
        429: "Too many new reports from this reporter; Retry-After says when to send again.",
    }
    out: dict = {200: {"model": model, "content": _XML, "description": description or "OK"}}
    for code in codes:
        out[code] = {"model": list[Error], "content": _XML, "description": meaning[code]}
        if code == 429:
            out[code]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                    "description": "Seconds to wait."}}
    return out
