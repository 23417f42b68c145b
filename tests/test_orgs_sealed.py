"""Sealed bids against every role and every GET route (DESIGN §5.5): before the deadline and
after it until the opening, nothing of a bid's content shows anywhere, in responses, logs or
the database's text. After the opening operators see it and the public only the count. A
replaced version and a withdrawn bid never show at all."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from tortoise import connections

from orgs.registry.models import Organisation
from orgs.tenders import bids, opening, seal
from orgs.tenders.models import Bid, Tender, TenderEvaluator
from portal.staff.models import Role, StaffUser
from tests import orgs_setup
from tests.staff import create_staff, password_hash
from tests.tenders_setup import close, published

TABLES = ("bid", "bid_event", "ocds_release", "person_notice", "delivery", "tender")
SKIP = ("/static", "/docs", "/redoc")
STAFF = ("op", "boss", "roads", "judge")
# Roles that may see the prices of the opening record (§5.4): the bidders' own people.
BIDDERS = ("bidder_admin", "bidder_member", "rival_admin")


def renderings(price: str) -> list[str]:
    whole = Decimal(price)
    return [price[:-1], f"{whole:,.2f}"[:-1], f"{whole / 10000:.2f}万"]


@dataclass
class Markers:
    price: list[str]
    words: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.price + self.words


def marker_set(price: str) -> Markers:
    return Markers(renderings(price), [f"SEAL-{uuid.uuid4()}", f"测试{uuid.uuid4().hex[:12]}"])


CURRENT = marker_set("987654.32")
CURRENT.price.append("九十八万")
REPLACED = marker_set("876543.21")
WITHDRAWN = marker_set("765432.19")


def walk(routes):
    for route in routes:
        if hasattr(route, "path"):
            yield route.path, getattr(route, "methods", None) or set()


def get_paths(app, values: dict[str, str]) -> list[str]:
    """Every GET route, its parameters filled; fails on a parameter the map does not know."""
    paths = []
    for path, methods in walk(app.routes):
        if "GET" not in methods or path.startswith(SKIP):
            continue
        for name in [p.split("}")[0].split(":")[0] for p in path.split("{")[1:]]:
            assert name in values, f"{path}: add '{name}' to the sealed-bid matrix"
            path = path.replace("{" + name + "}", values[name]).replace(
                "{" + name + ":path}", values[name])
        paths.append(path)
    extra = [f"/api/v1/orgs/ocds/releases.json?tender={values['code']}",
             f"/tenders/{values['code']}?lang=en"]
    return sorted(set(paths)) + extra


@pytest.fixture
async def world(settings, app):
    await create_staff()
    judge = await StaffUser.create(username="judge", password_hash=password_hash(),
                                   role=Role.EVALUATOR)
    tender = await published(settings, budget=Decimal("1000000"))
    await TenderEvaluator.create(tender_id=tender.id, staff_user_id=judge.id)
    bidder, rival, third, outsider, quitter = [
        await orgs_setup.organisation(n) for n in range(1, 6)]
    people = {
        "bidder_admin": await orgs_setup.account("bidder", org=bidder),
        "bidder_member": await orgs_setup.account("bidmember", org=bidder, role="member"),
        "rival_admin": await orgs_setup.account("rival", org=rival),
        "outsider_admin": await orgs_setup.account("outsider", org=outsider),
        "member_without_org": await orgs_setup.account("lonely"),
    }
    third_admin = await orgs_setup.account("third", org=third)
    quitter_admin = await orgs_setup.account("quitter", org=quitter)

    async def send(org, markers: Markers, price: str):
        await bids.submit(settings, tender, org, actor="test", price=price,
                          proposal=f"方案 {markers.words[0]}",
                          team=[{"name": markers.words[1], "role": "队长",
                                 "qualification": "社工师"}])

    await send(bidder, REPLACED, "876543.21")
    await send(bidder, CURRENT, "987654.32")
    await send(quitter, WITHDRAWN, "765432.19")
    await bids.withdraw(tender, quitter, actor="test")
    await bids.submit(settings, tender, rival, actor="test", price="900000", proposal="对手方案",
                      team=[])
    await bids.submit(settings, tender, third, actor="test", price="950000", proposal="第三方案",
                      team=[])
    clients = {"anonymous": httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                              base_url="http://testserver")}
    resident = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver")
    await resident.get("/report")
    clients["resident"] = resident
    for role, acct in people.items():
        clients[role] = await orgs_setup.member_client(app, acct)
    for name in STAFF:
        clients[name] = await orgs_setup.staff_client(app, name)
    bid = await Bid.get(tender_id=tender.id, organisation_id=bidder.id)
    values = {"code": tender.code, "tender_id": str(tender.id), "bid_id": str(bid.id),
              "org_id": str(bidder.id), "id": str(bidder.id),
              "ocid": f"{settings.ocid_prefix}-{tender.code}", "fmt": "json",
              "service_code": "x", "service_request_id": "x", "media_id": "1",
              "photo_id": "1", "task_id": "1", "contract_id": "1", "token": "x", "doc_id": "1",
              "period_id": "1", "assessment_id": "1", "language": "en"}
    yield {"tender": tender, "clients": clients, "paths": get_paths(app, values),
           "third_admin": third_admin, "quitter_admin": quitter_admin}
    for c in clients.values():
        await c.aclose()


async def _db_text() -> str:
    conn = connections.get("default")
    return "\n".join([str(await conn.execute_query_dict(f"SELECT * FROM {t}")) for t in TABLES])


async def _responses(world, paths) -> dict[tuple[str, str], str]:
    seen = {}
    for role, client in world["clients"].items():
        for path in paths:
            res = await client.get(path, headers={"Accept": "text/html"})
            seen[(role, path)] = res.text + str(dict(res.headers))
    return seen


def _absent(texts: dict, markers: list[str], where: str = "") -> None:
    for key, text in texts.items():
        for marker in markers:
            assert marker not in text, f"{marker} leaked in {key} {where}"


def _no_bidder_logged(records, tender: Tender, bidders: list[Organisation]) -> None:
    """Before the opening no log record tells who bid: no bidder's name anywhere, and no
    record about the tender carries a bidder's id."""
    for record in records:
        text = record.getMessage()
        args = record.args if isinstance(record.args, tuple) else ()
        for org in bidders:
            assert org.name not in text, f"bidder named in the log: {text}"
            if tender.code in text:
                assert org.id not in args and str(org.id) not in args, \
                    f"bidder's id in the log: {text}"


async def _bid_through_the_pages(app, tender: Tender, acct, *, withdraw: bool) -> None:
    async with await orgs_setup.member_client(app, acct) as c:
        url = f"/org/tenders/{tender.code}/bid"
        token = await orgs_setup.csrf_of(c, url)
        sent = await c.post(url, data={"csrf_token": token, "price": "990000",
                                       "proposal": "页面提交的方案"})
        assert sent.status_code == 303
        if withdraw:
            gone = await c.post(f"/org/tenders/{tender.code}/withdraw",
                                data={"csrf_token": token})
            assert gone.status_code == 303


async def test_nothing_shows_before_the_opening(world, settings, caplog, app):
    caplog.set_level(logging.DEBUG)
    tender = world["tender"]
    hidden = CURRENT.all() + REPLACED.all() + WITHDRAWN.all()
    await _bid_through_the_pages(app, tender, world["third_admin"], withdraw=False)
    await _bid_through_the_pages(app, tender, world["quitter_admin"], withdraw=True)
    bidders = await Organisation.filter(bids__tender_id=tender.id)
    assert len(bidders) == 4
    seen = await _responses(world, world["paths"])
    _absent(seen, hidden, "before the deadline")
    _absent({"db": await _db_text(), "log": caplog.text}, hidden)
    _no_bidder_logged(caplog.records, tender, bidders)
    bid = await Bid.get(tender_id=tender.id, status="pending", price__isnull=True,
                        organisation__name__endswith="1")
    # The bidder sees its receipt, so the walk did reach its signed-in pages.
    assert bid.digest[:16] in seen[("bidder_admin", f"/org/tenders/{tender.code}/bid")]
    assert bid.digest[:16] not in seen[("rival_admin", f"/org/tenders/{tender.code}/bid")]
    with pytest.raises(seal.StillSealed):
        seal.unseal(settings, tender, bid)
    # Forged: opened_at set while the deadline is ahead.
    tender.opened_at = datetime.now(UTC)
    with pytest.raises(seal.StillSealed):
        seal.unseal(settings, tender, bid)

    # After the deadline, before any opening: routes that do not open the tender, the DB, logs.
    tender = await close(tender)
    with pytest.raises(seal.StillSealed):
        seal.unseal(settings, tender, bid)
    quiet = [p for p in world["paths"] if tender.code not in p]
    _absent(await _responses(world, quiet), hidden, "after the deadline")
    _absent({"db": await _db_text(), "log": caplog.text}, hidden)
    _no_bidder_logged(caplog.records, tender, bidders)
    assert (await Tender.get(id=tender.id)).opened_at is None


async def test_after_the_opening_staff_see_content_and_the_public_a_count(world, settings,
                                                                          caplog):
    caplog.set_level(logging.DEBUG)
    tender = await close(world["tender"])
    assert await opening.open_due(settings) == 1
    seen = await _responses(world, world["paths"])
    never = REPLACED.all() + WITHDRAWN.all()
    _absent(seen, never, "after the opening")
    _absent({"db": await _db_text(), "log": caplog.text}, never)
    staff_page = seen[("op", f"/staff/tenders/{tender.code}")]
    for marker in (CURRENT.price[1], *CURRENT.words):
        assert marker in staff_page
        assert marker in seen[("boss", f"/staff/tenders/{tender.code}")]
    assert "3 valid bids" in seen[("anonymous", f"/tenders/{tender.code}?lang=en")]
    for role in world["clients"]:
        if role in STAFF:
            continue
        mine = {k: v for k, v in seen.items() if k[0] == role}
        _absent(mine, CURRENT.words, "(proposal or team)")
        if role not in BIDDERS:
            _absent(mine, CURRENT.price, "(price)")
    for role in ("roads",):
        _absent({k: v for k, v in seen.items() if k[0] == role}, CURRENT.all())
    # The OCDS update carries the statistics only.
    releases = seen[("anonymous", f"/api/v1/orgs/ocds/releases.json?tender={tender.code}")]
    assert '"validBids"' in releases


async def test_unseal_refuses_a_future_deadline_even_when_opened(world, settings):
    tender = world["tender"]
    bid = await Bid.filter(tender_id=tender.id, status="pending").first()
    forged = await Tender.get(id=tender.id)
    forged.opened_at = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(seal.StillSealed):
        seal.unseal(settings, forged, bid)
    with pytest.raises(seal.StillSealed):
        seal.unseal_seed(settings, forged)


def test_unseal_is_called_only_by_opening():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    callers = {p.relative_to(root).as_posix() for p in root.glob("**/*.py")
               if ".venv" not in p.parts and "tests" not in p.parts
               and "unseal(" in p.read_text(encoding="utf-8", errors="ignore")}
    assert callers <= {"orgs/tenders/seal.py", "orgs/tenders/opening.py",
                       "orgs/tenders/scoring.py"}
