"""Registering organisations, the verification steps, training and data agreements.

Every status change is one guarded UPDATE (`WHERE status = <from>`) plus its `OrgEvent` in the
same transaction: two operators pressing at once make one change, and the other is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orgs import uscc
from orgs.accounts import service as accounts
from orgs.accounts.models import Account
from orgs.privacy import digits
from orgs.registry.models import (
    Area,
    DataAgreement,
    Membership,
    Organisation,
    OrgArea,
    OrgEvent,
    OrgStatus,
    TrainingRecord,
)
from orgs.service_types import BY_KEY as SERVICE_TYPES
from portal.cases.models import Person
from portal.cases.service import SHANGHAI, utcnow
from portal.i18n import _
from portal.intake.text import CONTROL_CHARS
from portal.staff.casework import centre
from portal.staff.models import StaffUser

EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,250}[A-Za-z0-9])?\.[A-Za-z]{2,}$")
REASON_CHARS = 1000

# What a data-processing agreement may cover (the form's checkboxes).
DATA_TYPES = {
    "name": _("names"), "phone": _("phone numbers"), "address": _("addresses"),
    "case_photos": _("case photos"), "health": _("health information"),
    "id_number": _("identity card numbers"),
}
END_ACTIONS = {"return": _("returned"), "delete": _("deleted")}

# (from, to) → the event kind it records.
TRANSITIONS = {
    (OrgStatus.PENDING, OrgStatus.VERIFIED): "verified",
    (OrgStatus.PENDING, OrgStatus.REJECTED): "rejected",
    (OrgStatus.REJECTED, OrgStatus.PENDING): "resubmitted",
    (OrgStatus.VERIFIED, OrgStatus.SUSPENDED): "suspended",
    (OrgStatus.SUSPENDED, OrgStatus.VERIFIED): "reinstated",
}
NEEDS_REASON = {OrgStatus.REJECTED, OrgStatus.SUSPENDED}
STATUS_LABELS = {OrgStatus.PENDING: _("waiting for verification"),
                 OrgStatus.VERIFIED: _("verified"), OrgStatus.REJECTED: _("rejected"),
                 OrgStatus.SUSPENDED: _("suspended")}


class OrgError(Exception):
    """A refused step: an English msgid with its parameters and an HTTP status."""

    def __init__(self, message: str, status: int = 409, **params):
        super().__init__(message)
        self.message, self.status, self.params = message, status, params

    def translated(self, t) -> str:
        # Parameters that are msgids (status names) are translated too; others pass unchanged.
        return t(self.message).format(**{k: t(v) if isinstance(v, str) else v
                                          for k, v in self.params.items()})


def need_centre(user: StaffUser) -> None:
    """Steps only the grid centre (operators, administrators) takes."""
    if not centre(user):
        raise OrgError(_("Only an operator can do this."), 403)


def _clean_text(value: str, limit: int) -> str:
    return " ".join(CONTROL_CHARS.sub(" ", value or "").split())[:limit + 1]


# --- registration ---------------------------------------------------------------------------

@dataclass
class Registration:
    name: str = ""
    uscc: str = ""
    pilot: bool = False
    address: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    service_types: list[str] = field(default_factory=list)
    area_ids: list[int] = field(default_factory=list)


def check_registration(r: Registration, known_areas: set[int]) -> dict[str, str]:
    """What is wrong with a registration, per field, as English msgids ({} when all is well).
    The values in `r` are normalised in place."""
    errors: dict[str, str] = {}
    r.name = _clean_text(r.name, 100)
    if not 2 <= len(r.name) <= 100:
        errors["name"] = _("Give the organisation's registered name (2 to 100 characters).")
    r.uscc = uscc.normalise(r.uscc)[:40]
    problem = uscc.problem(r.uscc)
    if problem and not (r.pilot and problem == uscc.CHECK_ERROR):
        errors["uscc"] = problem
    r.address = _clean_text(r.address, 200)
    if not 2 <= len(r.address) <= 200:
        errors["address"] = _("Give the organisation's address (up to 200 characters).")
    r.contact_name = _clean_text(r.contact_name, 50)
    if not 1 <= len(r.contact_name) <= 50:
        errors["contact_name"] = _("Give the name of a contact person (up to 50 characters).")
    phone = r.contact_phone.strip()
    if not re.fullmatch(r"\+?[0-9 ()\-]{7,24}", phone) or not 7 <= len(digits(phone)) <= 15:
        errors["contact_phone"] = _("Give a phone number of 7 to 15 digits, for example "
                                    "13812348000 or 021-63211234.")
    r.contact_phone = phone
    r.contact_email = r.contact_email.strip()
    if r.contact_email and (len(r.contact_email) > 254 or not EMAIL.match(r.contact_email)):
        errors["contact_email"] = _("This e-mail address does not look right.")
    if not r.service_types or any(k not in SERVICE_TYPES for k in r.service_types):
        errors["service_types"] = _("Choose at least one service the organisation offers.")
    r.service_types = sorted(set(r.service_types))
    if any(a not in known_areas for a in r.area_ids):
        errors["areas"] = _("Choose the areas from the list.")
    r.area_ids = sorted(set(r.area_ids))
    return errors


async def register(r: Registration, *, by: Account | None = None,
                   now: datetime | None = None) -> Organisation:
    """A new pending organisation; `r` must have passed `check_registration`. The account
    that registers it becomes its first administrator."""
    now = now or utcnow()
    if by is not None and await Membership.filter(account_id=by.id, status="active").exists():
        raise OrgError(_("Your account already belongs to an organisation."), 409)
    try:
        async with in_transaction() as conn:
            org = await Organisation.create(
                name=r.name, uscc=r.uscc, uscc_valid=uscc.is_valid(r.uscc), address=r.address,
                contact_name=r.contact_name, contact_phone=r.contact_phone,
                contact_email=r.contact_email or None, service_types=r.service_types,
                status=OrgStatus.PENDING, registered_by=by, created_at=now, updated_at=now,
                using_db=conn)
            for area_id in r.area_ids:
                await OrgArea.create(organisation=org, area_id=area_id, using_db=conn)
            if by is not None:
                await accounts.add_member(org, by, "admin", conn=conn)
            await OrgEvent.create(organisation=org, kind="registered", status_to="pending",
                                  actor=f"account:{by.username}" if by else "public",
                                  created_at=now, data={"pilot_code": not org.uscc_valid},
                                  using_db=conn)
    except IntegrityError as exc:
        raise OrgError(_("An organisation with this unified social credit code is already "
                         "registered."), 409) from exc
    return org


# --- verification ---------------------------------------------------------------------------

async def get(org_id: int) -> Organisation:
    org = await Organisation.get_or_none(id=org_id)
    if org is None:
        raise OrgError(_("There is no such organisation."), 404)
    return org


async def change_status(org_id: int, to: OrgStatus, *, actor: str, reason: str = "",
                        now: datetime | None = None) -> Organisation:
    """pending → verified | rejected (reason), rejected → pending, verified → suspended
    (reason) → verified. Anything else is refused with 409."""
    now = now or utcnow()
    reason = (reason or "").strip()
    org = await get(org_id)
    current = OrgStatus(org.status)
    kind = TRANSITIONS.get((current, to))
    if kind is None:
        raise OrgError(_("An organisation that is {current} cannot become {to}."), 409,
                       current=STATUS_LABELS[current], to=STATUS_LABELS[to])
    if to in NEEDS_REASON and not reason:
        raise OrgError(_("Please give the reason: the organisation will see it."), 422)
    if len(reason) > REASON_CHARS:
        raise OrgError(_("The reason may be at most {n} characters."), 422, n=REASON_CHARS)
    if to == OrgStatus.VERIFIED and not org.uscc_valid and org.uscc_override_at is None:
        raise OrgError(_("The credit code fails the check: an administrator must accept it "
                         "as an early pilot code before the organisation can be verified."), 409)
    changes = {"status": to, "status_reason": reason or None, "updated_at": now}
    if kind == "verified":
        changes.update(verified_at=now, verified_by=actor[:64])
    async with in_transaction():
        moved = await Organisation.filter(id=org.id, status=current).update(**changes)
        if not moved:
            raise OrgError(_("Someone else changed this organisation just now: please look "
                             "again."), 409)
        await OrgEvent.create(organisation_id=org.id, kind=kind, status_from=current.value,
                              status_to=to.value, reason=reason or None, actor=actor,
                              created_at=now)
    return await get(org.id)


async def override_uscc(org_id: int, *, actor: str, reason: str,
                        now: datetime | None = None) -> Organisation:
    """An administrator accepts a pilot code whose check character fails. Codes of the wrong
    length or alphabet are never accepted. Call it for administrators only."""
    now = now or utcnow()
    reason = (reason or "").strip()
    org = await get(org_id)
    if org.uscc_valid or org.uscc_override_at is not None:
        raise OrgError(_("This credit code needs no override."), 409)
    if uscc.shape_problem(org.uscc):
        raise OrgError(_("Only a code with the right length and characters can be accepted."),
                       409)
    if not reason:
        raise OrgError(_("Please give the reason for accepting this code."), 422)
    if len(reason) > REASON_CHARS:
        raise OrgError(_("The reason may be at most {n} characters."), 422, n=REASON_CHARS)
    async with in_transaction():
        moved = await Organisation.filter(id=org.id, uscc_override_at__isnull=True).update(
            uscc_override_by=actor[:64], uscc_override_at=now, uscc_override_reason=reason,
            updated_at=now)
        if not moved:
            raise OrgError(_("This credit code needs no override."), 409)
        await OrgEvent.create(organisation_id=org.id, kind="uscc_override", reason=reason,
                              actor=actor, created_at=now, data={"uscc": org.uscc})
    return await get(org.id)


# --- training -------------------------------------------------------------------------------

def day_of(at: date | datetime) -> date:
    """The Shanghai calendar day of a time (a date is itself)."""
    if isinstance(at, datetime):
        return at.astimezone(SHANGHAI).date() if at.tzinfo else at.date()
    return at


async def record_training(*, organisation_id: int | None = None, person_id: int | None = None,
                          service_type: str, certificate_no: str, issued_by: str,
                          issued_at: date, valid_until: date, actor: str,
                          now: datetime | None = None) -> TrainingRecord:
    now = now or utcnow()
    if (organisation_id is None) == (person_id is None):
        raise ValueError("training belongs to an organisation or a person")
    if service_type not in SERVICE_TYPES:
        raise OrgError(_("There is no such service type."), 422)
    certificate_no = _clean_text(certificate_no, 64)
    issued_by = _clean_text(issued_by, 100)
    if not certificate_no or len(certificate_no) > 64:
        raise OrgError(_("Give the certificate number (up to 64 characters)."), 422)
    if not issued_by or len(issued_by) > 100:
        raise OrgError(_("Give who issued the certificate (up to 100 characters)."), 422)
    if valid_until < issued_at:
        raise OrgError(_("A certificate cannot end before it was issued."), 422)
    async with in_transaction():
        record = await TrainingRecord.create(
            organisation_id=organisation_id, person_id=person_id, service_type=service_type,
            certificate_no=certificate_no, issued_by=issued_by, issued_at=issued_at,
            valid_until=valid_until, recorded_by=actor[:64], recorded_at=now)
        if organisation_id is not None:
            await OrgEvent.create(organisation_id=organisation_id, kind="training_recorded",
                                  actor=actor, created_at=now,
                                  data={"service_type": service_type,
                                        "valid_until": valid_until.isoformat()})
    return record


async def has_current_training(subject: Organisation | Person, service_type: str,
                               at: date | datetime) -> bool:
    """Whether the organisation or person holds an unrevoked certificate for the service type
    that covers the day of `at` (issued on or before it, valid through it)."""
    day = day_of(at)
    owner = ({"organisation_id": subject.id} if isinstance(subject, Organisation)
             else {"person_id": subject.id})
    return await TrainingRecord.filter(
        **owner, service_type=service_type, revoked_at__isnull=True, issued_at__lte=day,
        valid_until__gte=day).exists()


# --- data-processing agreements ------------------------------------------------------------

async def record_agreement(org_id: int, *, purpose: str, data_types: list[str],
                           starts_on: date, ends_on: date, end_action: str, actor: str,
                           now: datetime | None = None) -> DataAgreement:
    now = now or utcnow()
    org = await get(org_id)
    purpose = (CONTROL_CHARS.sub(" ", purpose or "")).strip()
    if not 2 <= len(purpose) <= 2000:
        raise OrgError(_("Describe the purpose (2 to 2000 characters)."), 422)
    if not data_types or any(d not in DATA_TYPES for d in data_types):
        raise OrgError(_("Choose the kinds of data the agreement covers."), 422)
    if end_action not in END_ACTIONS:
        raise OrgError(_("Choose whether the data is returned or deleted at the end."), 422)
    if ends_on < starts_on:
        raise OrgError(_("The agreement cannot end before it starts."), 422)
    async with in_transaction():
        agreement = await DataAgreement.create(
            organisation_id=org.id, purpose=purpose, data_types=sorted(set(data_types)),
            starts_on=starts_on, ends_on=ends_on, end_action=end_action,
            recorded_by=actor[:64], recorded_at=now)
        await OrgEvent.create(organisation_id=org.id, kind="dpa_recorded", actor=actor,
                              created_at=now, data={"agreement": agreement.id,
                                                    "ends_on": ends_on.isoformat()})
    return agreement


async def agreement_covers(org: Organisation, start: date, end: date) -> bool:
    """A data-processing agreement on record covers the whole of [start, end]."""
    return await DataAgreement.filter(organisation_id=org.id, starts_on__lte=start,
                                      ends_on__gte=end).exists()


# --- areas ----------------------------------------------------------------------------------

async def add_area(code: str, name_zh: str, name_en: str, kind: str = "grid",
                   parent: Area | None = None) -> Area:
    if kind not in ("street", "grid"):
        raise ValueError(kind)
    return await Area.create(code=code, name_zh=name_zh, name_en=name_en, kind=kind,
                             parent=parent)


DEMO_AREAS = (("HP-NJD", "南京东路街道", "Nanjing Road East Subdistrict", None),
              ("HP-NJD-01", "南京东路第一网格", "Nanjing Road East Grid 1", "HP-NJD"),
              ("HP-NJD-02", "南京东路第二网格", "Nanjing Road East Grid 2", "HP-NJD"),
              ("HP-NJD-03", "南京东路第三网格", "Nanjing Road East Grid 3", "HP-NJD"))


async def ensure_demo_areas() -> None:
    """One street and its three grids, for the demo (areas are otherwise added in code)."""
    for code, name_zh, name_en, parent in DEMO_AREAS:
        if not await Area.filter(code=code).exists():
            await add_area(code, name_zh, name_en, "grid" if parent else "street",
                           parent=await Area.get(code=parent) if parent else None)
