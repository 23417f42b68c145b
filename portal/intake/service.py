"""submit(Submission) -> Receipt: the one door every channel goes through.

Order of work: validate, answer a second delivery from the first, then in one transaction
under a per-area lock: find the person, take a reporter's repeat as a repeat (not throttled),
throttle, pick the case (merge, flag, recurrence or new) and write the report, the case, the
subscription and the events (and a first report's person) together.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from portal.cases.categories import BY_KEY, related_to
from portal.cases.models import (
    OPEN_STATUSES,
    Identity,
    Person,
    Photo,
    Report,
    Status,
)
from portal.cases.service import SHANGHAI, CaseError, merge_cases, utcnow
from portal.db import run_sql
from portal.i18n import _, gettext_for
from portal.intake import geo, matching, text
from portal.intake.group_commit import GroupCommit
from portal.intake.submission import (
    CHANNELS,
    CRS,
    IDENTITY_KINDS,
    InvalidSubmission,
    Receipt,
    Submission,
    Throttled,
)
from portal.intake.throttle import Throttle
from portal.settings import Settings

# Same reporter, same problem: a resend this similar joins their earlier case as a repeat.
REPEAT_SIMILARITY = 0.6
# On SQLite the intake's writes that arrive together share one transaction and its commit.
_sqlite_writes = GroupCommit()


# Control characters (NUL breaks PostgreSQL text) other than newline and tab.


def validate(sub: Submission, settings: Settings) -> None:
    kind = sub.reporter.split(":", 1)[0] if ":" in sub.reporter else ""
    if kind not in IDENTITY_KINDS or len(sub.reporter) > 200 or len(sub.reporter) <= len(kind) + 1:
        raise InvalidSubmission(_("The reporter identity is not valid."), "reporter")
    if sub.channel not in CHANNELS:
        raise InvalidSubmission(_("Unknown channel."), "channel")
    if sub.category not in BY_KEY:
        raise InvalidSubmission(_("Choose one of the listed categories."), "category")
    sub.text = text.CONTROL_CHARS.sub("", sub.text or "").strip()
    if sub.address is not None:
        sub.address = text.CONTROL_CHARS.sub("", sub.address)
    if "\x00" in sub.reporter or (sub.external_ref and "\x00" in sub.external_ref):
        raise InvalidSubmission(_("The reporter identity is not valid."), "reporter")
    if not sub.text:
        raise InvalidSubmission(_("Describe the problem in a few words."), "text")
    if len(sub.text) > settings.max_text_chars:
        raise InvalidSubmission(_("The description is too long."), "text")
    if sub.address is not None:
        sub.address = sub.address.strip()[:300] or None
    if (sub.lat is None) != (sub.lng is None):
        raise InvalidSubmission(_("Give both latitude and longitude, or neither."), "lat")
    if sub.lat is not None:
        if not geo.valid_point(sub.lat, sub.lng):
            raise InvalidSubmission(_("The location is not a valid point."), "lat")
        if sub.crs not in CRS:
            raise InvalidSubmission(_("Unknown coordinate system."), "crs")
    if sub.lat is None and not sub.address:
        raise InvalidSubmission(_("Tell us where: share a location or type an address."),
                                "address")
    if len(sub.photos) > settings.max_photos:
        raise InvalidSubmission(_("Too many photos."), "media")


async def person_for(identity_key: str, language: str, email: str | None = None,
                     phone: str | None = None) -> Person:
    person = await _known_person(identity_key, email, phone)
    if person is not None:
        return person
    try:
        async with in_transaction() as conn:
            return await _new_person(identity_key, language, email, phone, conn)
    except IntegrityError:
        # Another request created the same identity a moment ago.
        return (await Identity.get(key=identity_key).select_related("person")).person


async def _known_person(identity_key: str, email: str | None, phone: str | None
                        ) -> Person | None:
    conn = connections.get("default")
    rows = await run_sql(conn, "SELECT p.* FROM identity i JOIN person p ON p.id = i.person_id "
                      "WHERE i.key = ?", [identity_key])
    if not rows:
        return None
    person = Person._init_from_db(**rows[0])
    person.email, person.phone = await _fill_contact(conn, person.id, person.email,
                                                     person.phone, email, phone)
    return person


async def _fill_contact(conn, person_id: int, email: str | None, phone: str | None,
                        new_email: str | None, new_phone: str | None
                        ) -> tuple[str | None, str | None]:
    """The person's contact details with the new ones filling gaps: never replacing what they
    gave before, since a channel (an Open311 client, say) must not be able to redirect
    someone's notifications."""
    filled = (new_email if new_email and not email else email,
              new_phone if new_phone and not phone else phone)
    if filled != (email, phone):
        await run_sql(conn, "UPDATE person SET email = ?, phone = ? WHERE id = ?",
                   [*filled, person_id])
    return filled


def _marks(values) -> str:
    return ", ".join("?" * len(values))


@dataclass(slots=True)
class CaseRow:
    """What the intake reads and writes of a case (a Case model costs more to build than the
    indexed read that fills it)."""

    id: int
    code: str
    category: str
    status: Status
    lat: float | None
    lng: float | None
    first_reported_at: datetime
    address_keys: str
    fingerprint: str
    cell: int | None = None
    report_count: int = 0
    reporter_count: int = 0
    last_reported_at: datetime | None = None
    master_id: int | None = None
    possible_duplicate_of_id: int | None = None
    recurrence_of_id: int | None = None

    @classmethod
    def of(cls, row) -> CaseRow:
        case = cls(**dict(row))
        case.status = Status(case.status)
        case.first_reported_at = _datetime(case.first_reported_at)
        if case.last_reported_at is not None:
            case.last_reported_at = _datetime(case.last_reported_at)
        return case


def _datetime(value) -> datetime:
    """A stored time as an aware datetime: PostgreSQL hands datetimes, SQLite the text the
    sqlite3 adapter wrote (isoformat with a space and the UTC offset)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# What scoring and the decision read of a candidate case.
_CANDIDATE_FIELDS = ("id", "code", "category", "status", "lat", "lng", "first_reported_at",
                     "address_keys", "fingerprint")
# ... and what filing a report into it reads and writes.
_CASE_FIELDS = (*_CANDIDATE_FIELDS, "cell", "report_count", "reporter_count",
                "last_reported_at", "master_id", "possible_duplicate_of_id", "recurrence_of_id")


async def _case(conn, case_id: int, *, lock: bool = False) -> CaseRow:
    """One case; `lock` holds its row until the transaction ends (PostgreSQL)."""
    sql = f"SELECT {', '.join(_CASE_FIELDS)} FROM case_ WHERE id = ?"
    if lock and conn.capabilities.dialect == "postgres":
        sql += " FOR UPDATE"
    rows = await run_sql(conn, sql, [case_id])
    if not rows:
        raise DoesNotExist("No such case")
    return CaseRow.of(rows[0])


async def _new_person(identity_key: str, language: str, email: str | None, phone: str | None,
                      conn) -> Person:
    now = utcnow()
    person_id = await _insert_person(conn, identity_key, language, email, phone, now)
    return Person._init_from_db(id=person_id, language=language, email=email, phone=phone,
                                created_at=now)


async def _insert_person(conn, identity_key: str, language: str, email: str | None,
                         phone: str | None, now: datetime) -> int:
    """A person with their first identity; on PostgreSQL in one round trip."""
    person = _person_sql(language, email, phone, now)
    if conn.capabilities.dialect == "postgres":
        return (await _write_all(conn, [
            ("p", *person), ("i", *_identity_sql(identity_key, _PERSON, now))],
            keep={"id": "p.id"}))["id"]
    person_id = (await run_sql(conn, *person))[0]["id"]
    await run_sql(conn, *_identity_sql(identity_key, person_id, now))
    return person_id


def _person_sql(language: str, email: str | None, phone: str | None, now: datetime
                ) -> tuple[str, list]:
    return ("INSERT INTO person (language, email, phone, updates_at_night, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id", [language, email, phone, False, now])


def _identity_sql(identity_key: str, person_id, now: datetime) -> tuple[str, list]:
    ref, ref_params = _id(person_id)
    return ("INSERT INTO identity (key, kind, created_at, person_id) "
            f"VALUES (?, ?, ?, {ref})",
            [identity_key, identity_key.split(":", 1)[0], now, *ref_params])


async def _find_repeat(person_id: int, feats: matching.Features, now: datetime,
                       settings: Settings, conn) -> CaseRow | None:
    since = now - timedelta(minutes=settings.repeat_window_minutes)
    recent = await run_sql(
        conn, "SELECT id, case_id, text, category, lat, lng, address, received_at FROM report "
        "WHERE person_id = ? AND received_at >= ? AND received_at <= ? "
        "ORDER BY received_at DESC LIMIT 10", [person_id, since, now])
    for rep in recent:
        if text.jaccard(feats.bigrams, text.bigrams(rep["text"])) < REPEAT_SIMILARITY:
            continue
        # The same words about another place or another kind of problem are a new report.
        if not matching.compatible(feats, matching.Features.of(
                category=rep["category"], lat=rep["lat"], lng=rep["lng"],
                at=_datetime(rep["received_at"]), body=rep["text"],
                address_text=rep["address"]), radius_m=settings.merge_radius_m):
            continue
        case = await _case(conn, rep["case_id"])
        while case.status == Status.MERGED and case.master_id:
            case = await _case(conn, case.master_id)
        if case.status in OPEN_STATUSES:
            return case
    return None


async def _locate(feats: matching.Features) -> tuple[float | None, float | None]:
    """A point for an address-only report, from what earlier reports taught us.

    A road and house number pins the spot; a crossing only roughly (feats.approx)."""
    if not feats.keys:
        return None, None
    keys = sorted(feats.keys)
    points = await run_sql(connections.get("default"),
                        f'SELECT "key", lat, lng, samples FROM address_point WHERE "key" IN '
                        f'({_marks(keys)}) ORDER BY "key"', keys)
    if not points:
        return None, None
    best = max(points, key=lambda p: ("#" in p["key"], p["samples"]))
    feats.approx = "#" not in best["key"]
    return best["lat"], best["lng"]


async def _learn(keys: set[str], lat: float, lng: float, conn) -> None:
    await run_sql(conn, *_learn_sql(keys, lat, lng))


def _learn_sql(keys: set[str], lat: float, lng: float) -> tuple[str, list]:
    """Where the address keys of a report with a point lie, in one statement: a new key is
    inserted; a known one moves towards the point, while it has fewer than _STEADY_SAMPLES
    samples and the point lies within 300 m of it (the distance on the plane tangent at the
    point: around 300 m it differs from geo.distance_m by a few millimetres)."""
    keys_ = sorted(keys)
    m_lat = math.radians(6371008.8)  # metres per degree, on geo.distance_m's sphere
    m_lng = m_lat * math.cos(math.radians(lat))
    return (
        'INSERT INTO address_point ("key", lat, lng, samples) VALUES '
        + ", ".join(["(?, ?, ?, 1)"] * len(keys_))
        + ' ON CONFLICT ("key") DO UPDATE SET '
        "lat = (address_point.lat * address_point.samples + excluded.lat) "
        "/ (address_point.samples + 1), "
        "lng = (address_point.lng * address_point.samples + excluded.lng) "
        "/ (address_point.samples + 1), "
        "samples = address_point.samples + 1 "
        "WHERE address_point.samples < ? "
        "AND (address_point.lat - excluded.lat) * ? * (address_point.lat - excluded.lat) * ? "
        "+ (address_point.lng - excluded.lng) * ? * (address_point.lng - excluded.lng) * ? < ?",
        [v for k in keys_ for v in (k, lat, lng)]
        + [_STEADY_SAMPLES, m_lat, m_lat, m_lng, m_lng, 300.0 ** 2])


def _case_keys_sql(keys: set[str], case_id) -> tuple[str, list]:
    keys_ = sorted(keys)
    ref, ref_params = _id(case_id)
    return ('INSERT INTO case_key ("key", case_id) VALUES '
            + ", ".join([f"(?, {ref})"] * len(keys_)) + " ON CONFLICT DO NOTHING",
            [v for k in keys_ for v in (k, *ref_params)])


def _subscription_sql(case_id, person_id, identity: str) -> tuple[str, list]:
    # As cases.service.subscribe: a person already subscribed stays as they were.
    ref, ref_params = _id(case_id)
    person_ref, person_params = _id(person_id)
    return ("INSERT INTO subscription (identity, reason, created_at, case_id, person_id) "
            f"VALUES (?, ?, ?, {ref}, {person_ref}) ON CONFLICT DO NOTHING",
            [identity, "reporter", utcnow(), *ref_params, *person_params])


async def _write_all(conn, writes: list[tuple[str, str, list]], keep: dict[str, str]
                     ) -> dict:
    """Writes (name, sql, params) in order; answers `keep` {alias: "name.column"}, read from
    the RETURNING rows of the writes. On PostgreSQL one statement, every write a
    data-modifying WITH part (which runs whether or not it is referred to; a later one may
    refer to an earlier one's rows): one round trip instead of one each. On SQLite a
    statement costs no round trip."""
    if conn.capabilities.dialect == "postgres":
        sql = ("WITH " + ", ".join(f"{name} AS ({part})" for name, part, _ in writes)
               + " SELECT " + ", ".join(
                   f"(SELECT {ref.split('.')[1]} FROM {ref.split('.')[0]}) AS {alias}"
                   for alias, ref in keep.items()))
        row = (await run_sql(conn, sql, [p for _, _, params in writes for p in params]))[0]
        return {alias: row[alias] for alias in keep}
    returned = {}
    for name, sql, params in writes:
        returned[name] = await run_sql(conn, sql, params)
    out = {}
    for alias, ref in keep.items():
        name, column = ref.split(".")
        out[alias] = returned[name][0][column]
    return out


# A learned address point this many samples old no longer moves.
_STEADY_SAMPLES = 50


async def _candidates(feats: matching.Features, lat: float | None, lng: float | None,
                      now: datetime, settings: Settings, conn) -> list[CaseRow]:
    since = now - timedelta(days=max(settings.merge_window_days,
                                     settings.recurrence_window_days))
    cats = related_to(feats.category)
    found: dict[int, CaseRow] = {}
    columns = ", ".join(_CANDIDATE_FIELDS)
    # Only what the decision can use: open cases within the merge window, closed ones within
    # the recurrence window (score() is 0 outside them; other statuses are never picked).
    opens = [s.value for s in OPEN_STATUSES]
    usable = (f"((status IN ({_marks(opens)}) AND first_reported_at >= ?) "
              "OR (status = ? AND first_reported_at >= ?))")
    usable_params = [*opens, now - timedelta(days=settings.merge_window_days),
                     Status.CLOSED.value, now - timedelta(days=settings.recurrence_window_days)]
    selects: list[str] = []
    params: list = []
    if lat is not None:
        # The ring of cells is wide; the box keeps only cases a point could match (matching
        # vetoes anything further), so that few rows are read and turned into objects. The
        # index (cell, first_reported_at, lat, lng) answers the box without reading cases.
        reach = max(matching.radius_for(c, settings.merge_radius_m) for c in cats) \
            + matching.APPROX_SLACK_M
        dlat = reach / 111_000.0
        dlng = dlat / max(0.1, math.cos(math.radians(lat)))
        cells = geo.cells_near(lat, lng)
        selects.append(
            f"SELECT {columns} FROM case_ WHERE cell IN ({_marks(cells)}) "
            f"AND first_reported_at >= ? AND category IN ({_marks(cats)}) "
            f"AND lat >= ? AND lat <= ? AND lng >= ? AND lng <= ? AND {usable}")
        params += [*cells, since, *cats, lat - dlat, lat + dlat, lng - dlng, lng + dlng,
                   *usable_params]
    if feats.keys:
        keys = sorted(feats.keys)
        selects.append(
            f"SELECT {columns} FROM case_ WHERE id IN (SELECT case_id FROM case_key "
            f'WHERE "key" IN ({_marks(keys)}) ORDER BY case_id DESC LIMIT {_MAX_KEYED}) '
            f"AND first_reported_at >= ? AND category IN ({_marks(cats)}) AND {usable}")
        params += [*keys, since, *cats, *usable_params]
    if selects:
        # Both searches in one round trip; a case found by both comes twice.
        for row in await run_sql(conn, " UNION ALL ".join(selects), params):
            if row["id"] not in found:
                found[row["id"]] = CaseRow.of(row)
    return list(found.values())


# Newest cases first when an address key (a busy crossing) was reported very often.
_MAX_KEYED = 200


def _lock_keys(lat: float | None, lng: float | None, feats: matching.Features) -> list[int]:
    if lat is not None:
        return geo.lock_cells(lat, lng)
    roads = sorted(k.split("#")[0].split("&")[0] for k in feats.keys) or ["-"]
    return sorted({int.from_bytes(hashlib.sha256(r.encode()).digest()[:7], "big") for r in roads})


def _message(language: str, join: str, code: str, reporters: int) -> str:
    t = gettext_for(language)
    if join == "repeat":
        return t("You have already reported this problem; we added your message to case {code}."
                 ).format(code=code)
    if join == "merged":
        return t("Thank you. Your report joined case {code}, which {n} people have reported."
                 ).format(code=code, n=reporters)
    return t("Thank you. Your report was received as case {code}.").format(code=code)


async def _receipt(conn, report_id: int, join: str, case: CaseRow, language: str, *,
                   duplicate: bool = False, codes: dict[int, str] | None = None) -> Receipt:
    """`codes`: case codes known already (a new case's flagged and recurred cases)."""
    known = codes or {}

    async def code_of(case_id: int | None) -> str | None:
        if case_id is None:
            return None
        if case_id not in known:
            rows = await run_sql(conn, "SELECT code FROM case_ WHERE id = ?", [case_id])
            known[case_id] = rows[0]["code"] if rows else None
        return known[case_id]

    return Receipt(
        case_code=case.code, case_id=case.id, report_id=report_id, status=case.status.value,
        join=join, report_count=case.report_count, reporter_count=case.reporter_count,
        message=_message(language, join, case.code, case.reporter_count),
        possible_duplicate_of=await code_of(case.possible_duplicate_of_id),
        recurrence_of=await code_of(case.recurrence_of_id), duplicate_delivery=duplicate,
    )


async def submit(sub: Submission, *, throttle: Throttle | None, settings: Settings) -> Receipt:
    """`throttle=None` for trusted systems (hotline lines) that are not throttled per caller."""
    validate(sub, settings)
    # SQLite compares stored times as text: keep every time in UTC.
    now = (sub.received_at or utcnow()).astimezone(UTC)
    db = connections.get("default")
    pg = db.capabilities.dialect == "postgres"
    if sub.external_ref:
        rows = await run_sql(db, 'SELECT id, "join", case_id FROM report WHERE external_ref = ?',
                          [sub.external_ref])
        if rows:
            case = await _case(db, rows[0]["case_id"])
            return await _receipt(db, rows[0]["id"], rows[0]["join"], case, sub.language,
                                  duplicate=True)

    lat = lng = None
    if sub.lat is not None:
        lat, lng = geo.to_wgs84(sub.lat, sub.lng, sub.crs)
    feats = matching.Features.of(category=sub.category, lat=lat, lng=lng, at=now,
                                 body=sub.text, address_text=sub.address)
    located_by_address = False
    if lat is None:
        lat, lng = await _locate(feats)
        located_by_address = lat is not None
        feats.lat, feats.lng = lat, lng

    first = False

    async def write(conn) -> tuple[int, str, CaseRow, dict[int, str], int]:
        nonlocal first
        # Advisory locks serialise twin submissions on PostgreSQL; SQLite has one writer.
        person_id = await _reporter(conn, sub, _lock_keys(lat, lng, feats) if pg else None)
        # None for a first report: the person is then created with the report.
        first = person_id is None
        repeat_of = None
        if not first:
            repeat_of = await _find_repeat(person_id, feats, now, settings, conn)
            if repeat_of is None:
                await _count_new_report(throttle, person_id, sub.language)
        filed = await _file(sub, person_id, feats, lat, lng, now, repeat_of,
                            located_by_address, settings, conn)
        if first:
            await _count_new_report(throttle, filed[4], sub.language)
        return filed

    try:
        if pg:
            async with in_transaction() as conn:
                report_id, join, case, codes, _ = await write(conn)
        else:
            report_id, join, case, codes, _ = await _sqlite_writes.run(write)
    except IntegrityError:
        # Two first reports of one identity at once (the other created the person), or two
        # deliveries of one submission at once (the other filed it): the retry finds theirs.
        if (first and await Identity.exists(key=sub.reporter)) or (
                sub.external_ref and await Report.exists(external_ref=sub.external_ref)):
            return await submit(sub, throttle=throttle, settings=settings)
        raise
    return await _receipt(db, report_id, join, case, sub.language, codes=codes)


async def _reporter(conn, sub: Submission, lock_keys: list[int] | None) -> int | None:
    """The reporter's person, None before their first report; their contact details fill
    gaps. On PostgreSQL the same statement takes the submission's advisory locks (in the
    keys' sorted order, so that two submissions wanting the same locks never wait for each
    other crosswise)."""
    person = ("SELECT p.id, p.email, p.phone FROM identity i JOIN person p "
              "ON p.id = i.person_id WHERE i.key = ?")
    if lock_keys:
        rows = await run_sql(
            conn, "WITH locks AS (SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) "
            "AS k) SELECT (SELECT count(*) FROM locks) AS locked, found.* FROM (SELECT 1) AS one "
            f"LEFT JOIN ({person}) AS found ON true", [lock_keys, sub.reporter])
    else:
        rows = await run_sql(conn, person, [sub.reporter])
    if not rows or rows[0]["id"] is None:
        return None
    row = rows[0]
    await _fill_contact(conn, row["id"], row["email"], row["phone"], sub.email, sub.phone)
    return row["id"]


async def _count_new_report(throttle: Throttle | None, person_id: int, language: str) -> None:
    if throttle is None:
        return
    retry_after = await throttle.hit(person_id)
    if retry_after is not None:
        raise Throttled(retry_after, _throttle_message(language, retry_after))


def _throttle_message(language: str, retry_after: float) -> str:
    t = gettext_for(language)
    minutes = max(1, math.ceil(retry_after / 60))
    if minutes >= 120:
        return t("You have sent many reports today. Please try again in about {h} hours."
                 ).format(h=math.ceil(minutes / 60))
    return t("You have sent several reports in a short time. Please try again in {m} minutes."
             ).format(m=minutes)


async def _file(sub: Submission, person_id: int | None, feats: matching.Features, lat, lng,
                now: datetime, repeat_of: CaseRow | None, located_by_address: bool,
                settings: Settings, conn) -> tuple[int, str, CaseRow, dict[int, str], int]:
    """Pick the case and write the report into it (and a first report's person): the
    report's id, how it joined, the case as it is now, the codes of the cases it was flagged
    against, and the person's id."""
    join, score, flag, recurrence = "new", None, None, None
    case: CaseRow | None = None
    bridge: CaseRow | None = None
    # A first report's person has no earlier report in any case.
    reported_before = False
    if repeat_of is not None:
        locked, reported_before = await _lock_case(conn, repeat_of.id, person_id)
        # Staff may have closed or merged it since it was found: then it is a new case.
        if locked.status in OPEN_STATUSES:
            case, join = locked, "repeat"
    else:
        best, best_score = None, 0.0
        closed_best, closed_score = None, 0.0
        sure: list[CaseRow] = []
        for cand in await _candidates(feats, lat, lng, now, settings, conn):
            s = matching.score(feats, matching.case_features(cand),
                               radius_m=settings.merge_radius_m,
                               window_days=settings.merge_window_days
                               if cand.status in OPEN_STATUSES
                               else settings.recurrence_window_days)
            if cand.status in OPEN_STATUSES:
                if s >= settings.merge_auto_score:
                    sure.append(cand)
                if s > best_score:
                    best, best_score = cand, s
            elif cand.status == Status.CLOSED and s > closed_score:
                closed_best, closed_score = cand, s
        locked = None
        if best is not None and best_score >= settings.merge_auto_score:
            locked, reported_before = await _lock_case(conn, best.id, person_id)
        # Staff may have closed or merged it since the candidate search read it.
        if locked is not None and locked.status in OPEN_STATUSES:
            case, join, score = locked, "merged", best_score
            bridge = _bridge_candidate(best, sure, settings)
        else:
            if best is not None and best_score >= settings.merge_flag_score:
                flag, score = best, best_score
            if closed_best is not None and closed_score >= settings.merge_flag_score:
                recurrence = closed_best

    pg = conn.capabilities.dialect == "postgres"
    wall = utcnow()
    report_lat, report_lng = (None, None) if located_by_address else (lat, lng)
    # A first report's person and identity are written with it (on PostgreSQL in the same
    # statement, as WITH parts the report and the subscription refer to).
    who, first_writes, keep_person = person_id, [], {}
    if person_id is None:
        if pg:
            who, keep_person = _PERSON, {"person_id": "p.id"}
            first_writes = [("p", *_person_sql(sub.language, sub.email, sub.phone, wall)),
                            ("i", *_identity_sql(sub.reporter, _PERSON, wall))]
        else:
            who = await _insert_person(conn, sub.reporter, sub.language, sub.email,
                                       sub.phone, wall)

    def report_sql(case_id) -> tuple[str, list]:
        ref, ref_params = _id(case_id)
        person_ref, person_params = _id(who)
        return ('INSERT INTO report (identity, channel, language, text, category, raw_lat, '
                'raw_lng, crs, lat, lng, address, received_at, external_ref, "join", score, '
                "extra, created_at, case_id, person_id) VALUES "
                f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {ref}, {person_ref}) "
                "RETURNING id",
                [sub.reporter, sub.channel, sub.language, sub.text, sub.category, sub.lat,
                 sub.lng, sub.crs, report_lat, report_lng, sub.address, now, sub.external_ref,
                 join, score, _json(sub.extra), wall, *ref_params, *person_params])

    def reporter_writes(case_id) -> list[tuple[str, str, list]]:
        # The case's address keys (those it has stay as they were), the reporter's
        # subscription (likewise) and what the point teaches about the address.
        writes = [("s", *_subscription_sql(case_id, who, sub.reporter))]
        if feats.keys:
            writes.append(("k", *_case_keys_sql(feats.keys, case_id)))
            if report_lat is not None:
                writes.append(("l", *_learn_sql(feats.keys, report_lat, report_lng)))
        return writes

    codes: dict[int, str] = {}
    if case is None:
        events = [("created", True, Status.NEW.value, {"channel": sub.channel})]
        if flag is not None:
            events.append(("flagged", False, None,
                           {"possible_duplicate_of": flag.code, "score": score}))
            codes[flag.id] = flag.code
        if recurrence is not None:
            events.append(("recurrence", True, None, {"recurrence_of": recurrence.code}))
            codes[recurrence.id] = recurrence.code
        case = CaseRow(
            id=0, code="", category=sub.category, status=Status.NEW, lat=lat, lng=lng,
            first_reported_at=now, address_keys=matching.join_keys(feats.keys),
            fingerprint=matching.fingerprint(sub.text),
            cell=geo.cell(lat, lng) if lat is not None else None, report_count=1,
            reporter_count=1, last_reported_at=now,
            possible_duplicate_of_id=flag.id if flag else None,
            recurrence_of_id=recurrence.id if recurrence else None)
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        case_sql, case_params = _new_case_sql(case, sub, wall)
        if pg:
            # The day's code, the case, its events, the report and the rest: one statement.
            ref = _Ref("(SELECT id FROM c)")
            code_sql = ("(SELECT 'GL-' || ? || '-' || lpad(value::text, "
                        "greatest(4, length(value::text)), '0') FROM n)")
            ids = await _write_all(conn, [
                *first_writes, ("n", _COUNTER_SQL, [day]),
                ("c", case_sql.replace("VALUES (?", f"VALUES ({code_sql}", 1)
                 + " RETURNING id, code", [day, *case_params]),
                ("e", *_events_sql(ref, events, now)),
                ("r", *report_sql(ref)), *reporter_writes(ref)],
                keep={"case_id": "c.id", "code": "c.code", "report_id": "r.id", **keep_person})
            case.id, case.code, report_id = ids["case_id"], ids["code"], ids["report_id"]
            who = ids.get("person_id", who)
        else:
            value = (await run_sql(conn, _COUNTER_SQL, [day]))[0]["value"]
            case.code = f"GL-{day}-{value:04d}"
            case.id = (await run_sql(conn, case_sql + " RETURNING id",
                                  [case.code, *case_params]))[0]["id"]
            report_id = (await _write_all(conn, [
                ("e", *_events_sql(case.id, events, now)), ("r", *report_sql(case.id)),
                *reporter_writes(case.id)], keep={"id": "r.id"}))["id"]
    else:
        case.report_count += 1
        case.reporter_count += 0 if reported_before else 1
        case.last_reported_at = max(case.last_reported_at, now)
        if case.lat is None and lat is not None:
            case.lat, case.lng, case.cell = lat, lng, geo.cell(lat, lng)
        if feats.keys:
            case.address_keys = matching.join_keys(
                feats.keys | {k for k in case.address_keys.split("|") if k})
        if len(case.fingerprint) < matching.FINGERPRINT_CHARS:
            case.fingerprint = (case.fingerprint + " " + matching.fingerprint(sub.text))[
                :matching.FINGERPRINT_CHARS]
        event = ("report_added", True, None,
                 {"channel": sub.channel, "join": join, "reports": case.report_count})
        ids = await _write_all(conn, [
            *first_writes, ("r", *report_sql(case.id)),
            ("e", *_events_sql(case.id, [event], now)),
            ("u", "UPDATE case_ SET report_count = ?, reporter_count = ?, "
                  "last_reported_at = ?, lat = ?, lng = ?, cell = ?, address_keys = ?, "
                  "fingerprint = ?, updated_at = ? WHERE id = ?",
             [case.report_count, case.reporter_count, case.last_reported_at, case.lat,
              case.lng, case.cell, case.address_keys, case.fingerprint, wall, case.id]),
            *reporter_writes(case.id)], keep={"id": "r.id", **keep_person})
        report_id, who = ids["id"], ids.get("person_id", who)
    for photo in sub.photos:
        await Photo.create(case_id=case.id, report_id=report_id, path=photo.path,
                           width=photo.width, height=photo.height, size=photo.size,
                           content_type=photo.content_type, using_db=conn)
    if bridge is not None:
        case = await _bridge(case, bridge, now, conn)
    return report_id, join, case, codes, who


async def _lock_case(conn, case_id: int, person_id: int | None) -> tuple[CaseRow, bool]:
    """The case, locked until the transaction ends (PostgreSQL), and whether the person
    reported into it before (None: a person created just now, who has not)."""
    columns = ", ".join(_CASE_FIELDS)
    if person_id is None:
        sql, params = f"SELECT {columns}, 0 AS reported FROM case_ WHERE id = ?", [case_id]
    else:
        sql = (f"SELECT {columns}, EXISTS (SELECT 1 FROM report WHERE case_id = case_.id "
               "AND person_id = ?) AS reported FROM case_ WHERE id = ?")
        params = [person_id, case_id]
    if conn.capabilities.dialect == "postgres":
        sql += " FOR UPDATE OF case_"
    rows = await run_sql(conn, sql, params)
    if not rows:
        raise DoesNotExist("No such case")
    row = dict(rows[0])
    reported = bool(row.pop("reported"))
    return CaseRow.of(row), reported


# As cases.service.next_code: the day's first case creates the counter, every later one
# counts on.
_COUNTER_SQL = ("INSERT INTO daily_counter (day, value) VALUES (?, 1) ON CONFLICT (day) "
                "DO UPDATE SET value = daily_counter.value + 1 RETURNING value")


def _new_case_sql(case: CaseRow, sub: Submission, wall: datetime) -> tuple[str, list]:
    """The insert of a new case; its code is the first parameter."""
    return ("INSERT INTO case_ (code, category, status, summary, lat, lng, cell, address, "
            "address_keys, fingerprint, report_count, reporter_count, first_reported_at, "
            "last_reported_at, possible_duplicate_of_id, recurrence_of_id, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [case.category, case.status.value, sub.text[:500], case.lat, case.lng, case.cell,
             sub.address, case.address_keys, case.fingerprint, case.report_count,
             case.reporter_count, case.first_reported_at, case.last_reported_at,
             case.possible_duplicate_of_id, case.recurrence_of_id, wall, wall])


def _events_sql(case_id, events: list[tuple[str, bool, str | None, dict]], at: datetime
                ) -> tuple[str, list]:
    """(kind, public, status_to, data) events of one case, by the system, in one insert."""
    ref, ref_params = _id(case_id)
    params: list = []
    for kind, public, status_to, data in events:
        params += [kind, status_to, "system", public, _json(data), at, *ref_params]
    return ("INSERT INTO case_event (kind, status_to, actor, public, data, created_at, "
            "case_id) VALUES " + ", ".join([f"(?, ?, ?, ?, ?, ?, {ref})"] * len(events)),
            params)


class _Ref(str):
    """SQL that names the id a WITH part of the same statement inserts (PostgreSQL)."""


# The person a WITH part "p" inserts.
_PERSON = _Ref("(SELECT id FROM p)")


def _id(value) -> tuple[str, list]:
    """An id as a parameter, or as a reference to the part that inserts it."""
    return (value, []) if isinstance(value, _Ref) else ("?", [value])


def _json(value: dict) -> str:
    # As Tortoise's JSONField writes it.
    return json.dumps(value, separators=(",", ":"))


def _bridge_candidate(best: CaseRow, sure: list[CaseRow], settings: Settings
                      ) -> CaseRow | None:
    """Another open case the report matches as surely as `best`: both hold the same problem
    (one was opened from an address, the other from a point before anything tied them).
    Only cases staff has not taken up yet, and only when nothing tells the two apart."""
    if not settings.merge_bridge_cases or best.status != Status.NEW:
        return None
    best_feats = matching.case_features(best)
    for other in sure:
        if other.id != best.id and other.status == Status.NEW and matching.compatible(
                best_feats, matching.case_features(other), radius_m=settings.merge_radius_m):
            return other
    return None


async def _bridge(case: CaseRow, other: CaseRow, now: datetime, conn) -> CaseRow:
    """Merge the two cases into the older one; the report is then in that one."""
    if (other.first_reported_at, other.id) < (case.first_reported_at, case.id):
        target, source = other, case
    else:
        target, source = case, other
    keys = {k for c in (case, other) for k in c.address_keys.split("|") if k}
    try:
        await merge_cases(source.id, target.id, actor="intake", now=now)
    except CaseError:
        return case
    await run_sql(conn, "UPDATE case_ SET address_keys = ? WHERE id = ?",
               [matching.join_keys(keys), target.id])
    return await _case(conn, target.id)
