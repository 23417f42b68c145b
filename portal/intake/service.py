"""submit(Submission) -> Receipt: the one door every channel goes through.

Order of work: validate, answer a second delivery from the first, find the person, take a
reporter's repeat as a repeat (not throttled), throttle, then under a per-area lock and in one
transaction pick the case (merge, flag, recurrence or new) and write the report, the case,
the subscription and the events together.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from portal.cases.categories import BY_KEY, related_to
from portal.cases.models import (
    OPEN_STATUSES,
    AddressPoint,
    Case,
    Identity,
    Person,
    Photo,
    Report,
    Status,
)
from portal.cases.service import CaseError, add_event, merge_cases, next_code, utcnow
from portal.i18n import _, gettext_for
from portal.intake import geo, matching, text
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
# On SQLite every writer queues anyway; this keeps candidate search and insert together.
_sqlite_lock = asyncio.Lock()


# Control characters (NUL breaks PostgreSQL text) other than newline and tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def validate(sub: Submission, settings: Settings) -> None:
    kind = sub.reporter.split(":", 1)[0] if ":" in sub.reporter else ""
    if kind not in IDENTITY_KINDS or len(sub.reporter) > 200 or len(sub.reporter) <= len(kind) + 1:
        raise InvalidSubmission(_("The reporter identity is not valid."), "reporter")
    if sub.channel not in CHANNELS:
        raise InvalidSubmission(_("Unknown channel."), "channel")
    if sub.category not in BY_KEY:
        raise InvalidSubmission(_("Choose one of the listed categories."), "category")
    sub.text = _CONTROL.sub("", sub.text or "").strip()
    if sub.address is not None:
        sub.address = _CONTROL.sub("", sub.address)
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
    rows = await _select(connections.get("default"),
                         "SELECT p.* FROM identity i JOIN person p ON p.id = i.person_id "
                         "WHERE i.key = ?", [identity_key])
    if not rows:
        return None
    person = Person._init_from_db(**rows[0])
    # Contact details fill gaps but never replace what the person gave before: a channel
    # (an Open311 client, say) must not be able to redirect someone's notifications.
    changed = False
    if email and not person.email:
        person.email, changed = email, True
    if phone and not person.phone:
        person.phone, changed = phone, True
    if changed:
        await person.save(update_fields=["email", "phone"])
    return person


async def _select(conn, sql: str, params: list) -> list[dict]:
    """A statement on the hot path, written out: Tortoise builds every ORM query anew, which
    costs a few times what the database does for these indexed reads. `?` marks the
    parameters."""
    if conn.capabilities.dialect == "postgres":
        parts = sql.split("?")
        sql = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
    return await conn.execute_query_dict(sql, params)


def _marks(values) -> str:
    return ", ".join("?" * len(values))


async def _case(conn, case_id: int, *, lock: bool = False) -> Case:
    """One whole case; `lock` holds its row until the transaction ends (PostgreSQL)."""
    sql = "SELECT * FROM case_ WHERE id = ?"
    if lock and conn.capabilities.dialect == "postgres":
        sql += " FOR UPDATE"
    rows = await _select(conn, sql, [case_id])
    if not rows:
        raise DoesNotExist(Case)
    return Case._init_from_db(**rows[0])


async def _new_person(identity_key: str, language: str, email: str | None, phone: str | None,
                      conn, lock_keys: list[int] | None = None) -> Person:
    """`lock_keys`: on PostgreSQL the submission's advisory locks are taken by the same
    statement (one round trip for the three); the caller takes them otherwise."""
    kind, now = identity_key.split(":", 1)[0], utcnow()
    if conn.capabilities.dialect == "postgres":
        # Person and identity in one round trip; a SELECT in WITH runs only when referenced.
        locks = ("WITH locks AS (SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k), "
                 if lock_keys else "WITH ")
        rows = await _select(
            conn, f"{locks}p AS (INSERT INTO person (language, email, phone, created_at) "
            "VALUES (?, ?, ?, ?) RETURNING id) INSERT INTO identity (key, kind, created_at, "
            "person_id) SELECT ?, ?, ?, id FROM p"
            + (", (SELECT count(*) FROM locks) AS locked" if lock_keys else "")
            + " RETURNING person_id",
            [*([lock_keys] if lock_keys else []), language, email, phone, now, identity_key,
             kind, now])
        person_id = rows[0]["person_id"]
    else:
        person_id = (await _select(
            conn, "INSERT INTO person (language, email, phone, created_at) VALUES (?, ?, ?, ?) "
            "RETURNING id", [language, email, phone, now]))[0]["id"]
        await _select(conn, "INSERT INTO identity (key, kind, created_at, person_id) "
                      "VALUES (?, ?, ?, ?)", [identity_key, kind, now, person_id])
    return Person._init_from_db(id=person_id, language=language, email=email, phone=phone,
                                created_at=now)


async def _find_repeat(person: Person, feats: matching.Features, now: datetime,
                       settings: Settings) -> Case | None:
    since = now - timedelta(minutes=settings.repeat_window_minutes)
    conn = connections.get("default")
    recent = [Report._init_from_db(**row) for row in await _select(
        conn, "SELECT id, case_id, text, category, lat, lng, address, received_at FROM report "
        "WHERE person_id = ? AND received_at >= ? AND received_at <= ? "
        "ORDER BY received_at DESC LIMIT 10", [person.id, since, now])]
    for rep in recent:
        if text.jaccard(feats.bigrams, text.bigrams(rep.text)) < REPEAT_SIMILARITY:
            continue
        # The same words about another place or another kind of problem are a new report.
        if not matching.compatible(feats, matching.Features.of(
                category=rep.category, lat=rep.lat, lng=rep.lng, at=rep.received_at,
                body=rep.text, address_text=rep.address), radius_m=settings.merge_radius_m):
            continue
        case = await _case(conn, rep.case_id)
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
    points = await AddressPoint.filter(key__in=sorted(feats.keys))
    if not points:
        return None, None
    best = max(points, key=lambda p: ("#" in p.key, p.samples))
    feats.approx = "#" not in best.key
    return best.lat, best.lng


async def _learn(keys: set[str], lat: float, lng: float, conn) -> None:
    await _select(conn, *_learn_sql(keys, lat, lng))


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


def _case_keys_sql(keys: set[str], case_id: int) -> tuple[str, list]:
    keys_ = sorted(keys)
    return ('INSERT INTO case_key ("key", case_id) VALUES '
            + ", ".join(["(?, ?)"] * len(keys_)) + " ON CONFLICT DO NOTHING",
            [v for k in keys_ for v in (k, case_id)])


def _subscription_sql(case_id: int, person_id: int, identity: str) -> tuple[str, list]:
    # As cases.service.subscribe: a person already subscribed stays as they were.
    return ("INSERT INTO subscription (identity, reason, created_at, case_id, person_id) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [identity, "reporter", utcnow(), case_id, person_id])


async def _write_all(conn, writes: list[tuple[str, list]]) -> None:
    """Independent writes to different tables. On PostgreSQL one statement (all but the last
    as data-modifying WITH parts, which run whether or not they are referenced): one round
    trip instead of one each. On SQLite a statement costs no round trip."""
    if conn.capabilities.dialect == "postgres" and len(writes) > 1:
        *parts, (last, _) = writes
        sql = "WITH " + ", ".join(f"w{n} AS ({part})" for n, (part, _) in enumerate(parts))
        await _select(conn, f"{sql} {last}", [p for _, params in writes for p in params])
        return
    for sql, params in writes:
        await _select(conn, sql, params)


# A learned address point this many samples old no longer moves.
_STEADY_SAMPLES = 50


async def _candidates(feats: matching.Features, lat: float | None, lng: float | None,
                      now: datetime, settings: Settings, conn) -> list[Case]:
    since = now - timedelta(days=max(settings.merge_window_days,
                                     settings.recurrence_window_days))
    cats = related_to(feats.category)
    found: dict[int, Case] = {}
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
        for row in await _select(conn, " UNION ALL ".join(selects), params):
            if row["id"] not in found:
                found[row["id"]] = Case._init_from_db(**row)
    return list(found.values())


# What scoring and the decision read of a candidate case.
_CANDIDATE_FIELDS = ("id", "code", "category", "status", "lat", "lng", "first_reported_at",
                     "address_keys", "fingerprint")
# Newest cases first when an address key (a busy crossing) was reported very often.
_MAX_KEYED = 200


def _lock_keys(lat: float | None, lng: float | None, feats: matching.Features) -> list[int]:
    if lat is not None:
        return geo.lock_cells(lat, lng)
    roads = sorted(k.split("#")[0].split("&")[0] for k in feats.keys) or ["-"]
    return sorted({int.from_bytes(hashlib.sha256(r.encode()).digest()[:7], "big") for r in roads})


async def _lock(conn, keys: list[int]) -> None:
    if conn.capabilities.dialect == "postgres":
        # One round trip; the locks are taken in the keys' (sorted) order, so that two
        # submissions wanting the same locks never wait for each other crosswise.
        await conn.execute_query(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", [keys])


def _message(language: str, join: str, code: str, reporters: int) -> str:
    t = gettext_for(language)
    if join == "repeat":
        return t("You have already reported this problem; we added your message to case {code}."
                 ).format(code=code)
    if join == "merged":
        return t("Thank you. Your report joined case {code}, which {n} people have reported."
                 ).format(code=code, n=reporters)
    return t("Thank you. Your report was received as case {code}.").format(code=code)


async def _receipt(report: Report, case: Case, language: str, duplicate: bool = False) -> Receipt:
    dup = await Case.get(id=case.possible_duplicate_of_id) if case.possible_duplicate_of_id else None
    rec = await Case.get(id=case.recurrence_of_id) if case.recurrence_of_id else None
    return Receipt(
        case_code=case.code, case_id=case.id, report_id=report.id, status=case.status.value,
        join=report.join, report_count=case.report_count, reporter_count=case.reporter_count,
        message=_message(language, report.join, case.code, case.reporter_count),
        possible_duplicate_of=dup.code if dup else None,
        recurrence_of=rec.code if rec else None, duplicate_delivery=duplicate,
    )


async def submit(sub: Submission, *, throttle: Throttle | None, settings: Settings) -> Receipt:
    """`throttle=None` for trusted systems (hotline lines) that are not throttled per caller."""
    validate(sub, settings)
    # SQLite compares stored times as text: keep every time in UTC.
    now = (sub.received_at or utcnow()).astimezone(UTC)
    if sub.external_ref:
        earlier = await Report.get_or_none(external_ref=sub.external_ref)
        if earlier is not None:
            case = await Case.get(id=earlier.case_id)
            return await _receipt(earlier, case, sub.language, duplicate=True)

    # None for a first report: the person is then created in the same commit as the report.
    person = await _known_person(sub.reporter, sub.email, sub.phone)
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

    repeat_of = None
    if person is not None:
        repeat_of = await _find_repeat(person, feats, now, settings)
        if repeat_of is None:
            await _count_new_report(throttle, person, sub.language)

    first = person is None
    try:
        async with _maybe_sqlite_lock():
            async with in_transaction() as conn:
                lock_keys = _lock_keys(lat, lng, feats)
                if first:
                    person = await _new_person(sub.reporter, sub.language, sub.email,
                                               sub.phone, conn, lock_keys)
                    await _count_new_report(throttle, person, sub.language)
                else:
                    await _lock(conn, lock_keys)
                report, case = await _file(sub, person, feats, lat, lng, now, repeat_of,
                                           located_by_address, settings, conn)
    except IntegrityError:
        if first and await Identity.exists(key=sub.reporter):
            # Two first reports of one identity at once: the other created the person.
            return await submit(sub, throttle=throttle, settings=settings)
        raise
    return await _receipt(report, case, sub.language)


async def _count_new_report(throttle: Throttle | None, person: Person, language: str) -> None:
    if throttle is None:
        return
    retry_after = await throttle.hit(person.id)
    if retry_after is not None:
        raise Throttled(retry_after, _throttle_message(language, retry_after))


def _maybe_sqlite_lock():
    from tortoise import connections

    if connections.get("default").capabilities.dialect == "sqlite":
        return _sqlite_lock
    return _NullLock()


class _NullLock:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False


def _throttle_message(language: str, retry_after: float) -> str:
    t = gettext_for(language)
    minutes = max(1, math.ceil(retry_after / 60))
    if minutes >= 120:
        return t("You have sent many reports today. Please try again in about {h} hours."
                 ).format(h=math.ceil(minutes / 60))
    return t("You have sent several reports in a short time. Please try again in {m} minutes."
             ).format(m=minutes)


async def _file(sub: Submission, person: Person, feats: matching.Features, lat, lng,
                now: datetime, repeat_of: Case | None, located_by_address: bool,
                settings: Settings, conn) -> tuple[Report, Case]:
    join, score, flag, recurrence = "new", None, None, None
    case: Case | None = None
    bridge: Case | None = None
    if repeat_of is not None:
        locked = await _case(conn, repeat_of.id, lock=True)
        # Staff may have closed or merged it since it was found: then it is a new case.
        if locked.status in OPEN_STATUSES:
            case, join = locked, "repeat"
    else:
        best, best_score = None, 0.0
        closed_best, closed_score = None, 0.0
        sure: list[Case] = []
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
        locked = (await _case(conn, best.id, lock=True)
                  if best is not None and best_score >= settings.merge_auto_score else None)
        # Staff may have closed or merged it since the candidate search read it.
        if locked is not None and locked.status in OPEN_STATUSES:
            case, join, score = locked, "merged", best_score
            bridge = _bridge_candidate(best, sure, settings)
        else:
            if best is not None and best_score >= settings.merge_flag_score:
                flag, score = best, best_score
            if closed_best is not None and closed_score >= settings.merge_flag_score:
                recurrence = closed_best

    report = Report(
        person=person, identity=sub.reporter, channel=sub.channel, language=sub.language,
        text=sub.text, category=sub.category, raw_lat=sub.lat, raw_lng=sub.lng, crs=sub.crs,
        lat=lat if not located_by_address else None, lng=lng if not located_by_address else None,
        address=sub.address, received_at=now, external_ref=sub.external_ref, join=join,
        score=score, extra=sub.extra,
    )
    if case is None:
        fields = matching.case_fields_for_report(report)
        if located_by_address:
            fields.update(lat=lat, lng=lng, cell=geo.cell(lat, lng))
        case = await Case.create(
            code=await next_code(now, conn), category=sub.category, status=Status.NEW,
            first_reported_at=now, last_reported_at=now, report_count=1, reporter_count=1,
            possible_duplicate_of=flag, recurrence_of=recurrence, **fields, using_db=conn,
        )
        await add_event(case, "created", conn, at=now, status_to=Status.NEW.value,
                        data={"channel": sub.channel})
        if flag is not None:
            await add_event(case, "flagged", conn, at=now, public=False,
                            data={"possible_duplicate_of": flag.code, "score": score})
        if recurrence is not None:
            await add_event(case, "recurrence", conn, at=now,
                            data={"recurrence_of": recurrence.code})
    report.case = case
    await report.save(using_db=conn)
    for photo in sub.photos:
        await Photo.create(case=case, report=report, path=photo.path, width=photo.width,
                           height=photo.height, size=photo.size,
                           content_type=photo.content_type, using_db=conn)
    if join != "new":
        # (A new case was created with this report counted.)
        is_new_reporter = not await _select(
            conn, "SELECT 1 FROM report WHERE case_id = ? AND person_id = ? AND id <> ? LIMIT 1",
            [case.id, person.id, report.id])
        case.report_count += 1
        case.reporter_count += 1 if is_new_reporter else 0
        case.last_reported_at = max(case.last_reported_at, now)
        if case.lat is None and lat is not None:
            case.lat, case.lng, case.cell = lat, lng, geo.cell(lat, lng)
        if feats.keys:
            case.address_keys = matching.join_keys(
                feats.keys | {k for k in case.address_keys.split("|") if k})
        if len(case.fingerprint) < matching.FINGERPRINT_CHARS:
            case.fingerprint = (case.fingerprint + " " + matching.fingerprint(sub.text))[
                :matching.FINGERPRINT_CHARS]
        await add_event(case, "report_added", conn, at=now, public=True,
                        data={"channel": sub.channel, "join": join,
                              "reports": case.report_count})
        await case.save(using_db=conn)
    # The case's address keys (those it has stay as they were), the reporter's subscription
    # (likewise) and what the point teaches about the address: independent writes.
    writes = [_subscription_sql(case.id, person.id, sub.reporter)]
    if feats.keys:
        writes.append(_case_keys_sql(feats.keys, case.id))
        if report.lat is not None:
            writes.append(_learn_sql(feats.keys, report.lat, report.lng))
    await _write_all(conn, writes)
    if bridge is not None:
        case = await _bridge(case, bridge, now, conn)
    return report, case


def _bridge_candidate(best: Case, sure: list[Case], settings: Settings) -> Case | None:
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


async def _bridge(case: Case, other: Case, now: datetime, conn) -> Case:
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
    merged = await Case.get(id=target.id).using_db(conn)
    merged.address_keys = matching.join_keys(keys)
    await merged.save(using_db=conn, update_fields=["address_keys"])
    return merged
