"""An organisation's documents (uploaded on /org, read by its people and by operators, never by
anyone else) and members whose chat reports count for the organisation."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from orgs.accounts import service as accounts
from orgs.accounts.service import identity_key
from orgs.registry import documents
from orgs.registry.models import Membership, OrgDocument, OrgStatus
from orgs.registry.service import change_status
from orgs.volunteers.jobs import discoveries
from orgs.volunteers.models import Discovery
from portal.cases.models import Case, Subscription
from portal.intake.service import submit
from portal.intake.submission import Submission
from tests import orgs_setup
from tests.staff import create_staff

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0)}  # GPS
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


async def _upload(client, token: str, data: bytes, *, kind: str = "certificate",
                  name: str = "登记证书.pdf"):
    return await client.post("/org/documents", data={"csrf_token": token, "kind": kind},
                             files={"file": (name, data, "application/octet-stream")})


async def test_documents_are_uploaded_by_admins_and_read_by_their_people_only(app, client,
                                                                           settings):
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("docadmin", org=org)
    helper = await orgs_setup.account("dochelper", org=org, role="member")
    other_org = await orgs_setup.organisation(2)
    stranger = await orgs_setup.account("stranger", org=other_org)
    async with await orgs_setup.member_client(app, admin) as c:
        page = await c.get("/org")
        assert 'enctype="multipart/form-data"' in page.text
        token = await orgs_setup.csrf_of(c, "/org")
        r = await _upload(c, token, PDF, name="..\\..\\evil<x>|name.pdf")
        assert r.status_code == 303 and r.headers["location"].startswith("/org?done=document")
        r = await _upload(c, token, _jpeg_with_gps(), kind="charter", name="章程.JPG")
        assert r.status_code == 303
        r = await _upload(c, token, _png(), kind="other", name="scan.png")
        assert r.status_code == 303
        for data, name, kind, status in (
                (b"<html><script>alert(1)</script>", "x.pdf", "certificate", 415),
                (b"GIF89a" + b"\0" * 20, "x.png", "certificate", 415),
                (b"", "x.pdf", "certificate", 422),
                (PDF + b"other", "x.pdf", "passport", 422),
                (PDF, "again.pdf", "certificate", 409),
                (b"\xff\xd8\xff" + b"broken", "x.jpg", "certificate", 422),
                (PDF + b"\0" * documents.MAX_BYTES, "big.pdf", "certificate", 413)):
            r = await _upload(c, token, data, kind=kind, name=name)
            assert r.status_code == status, (name, kind, r.status_code)
        r = await c.post("/org/documents", data={"kind": "other"},
                         files={"file": ("x.pdf", PDF + b"1", "application/pdf")})
        assert r.status_code == 403
        r = await c.post("/org/documents", data={"csrf_token": token, "kind": "other"})
        assert r.status_code == 415
        page = await c.get("/org?lang=en")
        assert "Registration certificate" in page.text and "章程.jpg" in page.text
    docs = {d.kind: d for d in await OrgDocument.filter(organisation_id=org.id)}
    assert len(docs) == 3
    pdf = docs["certificate"]
    assert pdf.path == f"orgdocs/{org.id}/{hashlib.sha256(PDF).hexdigest()}.pdf"
    assert (settings.media_dir / pdf.path).read_bytes() == PDF
    assert pdf.filename == "evilxname.pdf" and pdf.uploaded_by == "account:docadmin"
    photo = docs["charter"]
    assert photo.path.startswith(f"orgdocs/{org.id}/") and photo.content_type == "image/jpeg"
    stored = (settings.media_dir / photo.path).read_bytes()
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif()
    assert docs["other"].filename == "scan.jpg"

    url = f"/org/documents/{pdf.id}"
    for acct in (admin, helper):
        async with await orgs_setup.member_client(app, acct) as c:
            r = await c.get(url)
            assert r.status_code == 200 and r.content == PDF
            assert r.headers["content-disposition"].startswith("attachment")
            assert r.headers["x-content-type-options"] == "nosniff"
    async with await orgs_setup.member_client(app, helper) as c:
        token = await orgs_setup.csrf_of(c, "/account")
        page = await c.get("/org")
        assert page.status_code == 200 and org.name in page.text
        assert 'action="/org/documents"' not in page.text
        assert (await _upload(c, token, PDF + b"2")).status_code == 403
        assert (await c.post(f"{url}/remove", data={"csrf_token": token})).status_code == 403
    async with await orgs_setup.member_client(app, stranger) as c:
        for path in (url, "/org/documents/99999999", "/org/documents/abc",
                     "/org/documents/99999999999999999999"):
            assert (await c.get(path)).status_code == 404
        token = await orgs_setup.csrf_of(c, "/org")
        assert (await c.post(f"{url}/remove", data={"csrf_token": token})).status_code == 404
    async with await orgs_setup.member_client(app, await orgs_setup.account("nobody")) as c:
        assert (await c.get(url)).status_code == 404
    r = await client.get(url, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/account/login")

    await create_staff()
    staff_url = f"/staff/orgs/{org.id}/documents/{pdf.id}"
    async with await orgs_setup.staff_client(app, "op") as op:
        page = await op.get(f"/staff/orgs/{org.id}")
        assert f'href="{staff_url}"' in page.text
        r = await op.get(staff_url)
        assert r.status_code == 200 and r.content == PDF
        assert r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert (await op.get(f"/staff/orgs/{other_org.id}/documents/{pdf.id}")).status_code \
            == 404
        assert (await op.get(f"/staff/orgs/{org.id}/documents/x")).status_code == 404
    async with await orgs_setup.staff_client(app, "roads") as roads:
        assert (await roads.get(staff_url)).status_code == 404

    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/org")
        assert (await c.post(f"{url}/remove", data={"csrf_token": token})).status_code == 303
        assert (await c.get(url)).status_code == 404
    assert not (settings.media_dir / pdf.path).exists()


async def test_an_organisation_keeps_a_bounded_number_of_documents(app, settings):
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("docadmin", org=org)
    now = datetime.now(UTC)
    await OrgDocument.bulk_create([OrgDocument(
        organisation=org, kind="other", filename=f"{n}.pdf", path=f"orgdocs/{org.id}/{n}.pdf",
        content_type="application/pdf", size=1, sha256=f"{n:064d}", uploaded_by="test",
        uploaded_at=now) for n in range(documents.MAX_DOCUMENTS)])
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/org")
        page = await c.get("/org")
        assert page.status_code == 200 and f"{documents.MAX_DOCUMENTS - 1}.pdf" in page.text
        assert 'action="/org/documents"' not in page.text
        r = await _upload(c, token, PDF)
        assert r.status_code == 409 and str(documents.MAX_DOCUMENTS) in r.text
    assert await OrgDocument.filter(organisation_id=org.id).count() == documents.MAX_DOCUMENTS


# --- members' chat reports ----------------------------------------------------------------------

async def _report(settings, throttle, identity: str, text: str, lat: float, **extra):
    channel = "telegram" if identity.startswith("tg:") else "web"
    return await submit(Submission(reporter=identity, channel=channel, text=text,
                                   category="garbage", lat=lat, lng=121.4852,
                                   received_at=datetime.now(UTC) - timedelta(hours=1),
                                   extra=extra), throttle=throttle, settings=settings)


async def test_a_members_chat_reports_count_once_an_admin_says_so(app, settings, throttle):
    org = await orgs_setup.organisation(1)
    admin = await orgs_setup.account("orgadmin", org=org)
    member = await orgs_setup.account("runner", org=org, role="member")
    other = await orgs_setup.account("otheradmin", org=await orgs_setup.organisation(2))
    code = await accounts.new_link_code(member, app.state.secret_key)
    assert (await accounts.redeem_link_code("tg:5151", code, app.state.secret_key)).id \
        == member.id
    membership = await Membership.get(account_id=member.id)

    before = await _report(settings, throttle, "tg:5151", "南京东路100号垃圾满了没人清", 31.2401)
    await discoveries(settings)
    assert not await Discovery.filter(report_id=before.report_id).exists()

    toggle = f"/org/members/{membership.id}/reports"
    async with await orgs_setup.member_client(app, member) as c:
        token = await orgs_setup.csrf_of(c, "/account")
        r = await c.post(toggle, data={"csrf_token": token, "reports_for_org": "1"})
        assert r.status_code == 403
    async with await orgs_setup.member_client(app, other) as c:
        token = await orgs_setup.csrf_of(c, "/org")
        r = await c.post(toggle, data={"csrf_token": token, "reports_for_org": "1"})
        assert r.status_code == 404
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/org")
        for bad in ("", "yes", "2"):
            r = await c.post(toggle, data={"csrf_token": token, "reports_for_org": bad})
            assert r.status_code == 400
        assert (await c.post(toggle, data={"reports_for_org": "1"})).status_code == 403
        r = await c.post(toggle, data={"csrf_token": token, "reports_for_org": "1"})
        assert r.status_code == 303
    assert (await Membership.get(id=membership.id)).reports_for_org

    counted = await _report(settings, throttle, "tg:5151", "福州路300号井盖破损很危险", 31.2501)
    # A web report of the member says itself whether it counts: this one does not.
    web = await _report(settings, throttle, identity_key(member.id), "九江路20号路灯不亮了",
                        31.2601)
    assert await discoveries(settings) == 1
    found = await Discovery.get(report_id=counted.report_id)
    assert found.organisation_id == org.id and found.person_id == member.person_id
    assert not await Discovery.filter(report_id=web.report_id).exists()
    followers = await Subscription.filter(case_id=counted.case_id, reason="follower") \
        .values_list("person_id", flat=True)
    assert list(followers) == [admin.person_id]
    case = await Case.get(id=counted.case_id)
    async with await orgs_setup.member_client(app, admin) as c:
        page = await c.get("/org")
        assert case.code in page.text

    # A suspended organisation counts nothing, and neither does a member switched off.
    await change_status(org.id, OrgStatus.SUSPENDED, actor="staff:op", reason="检查")
    suspended = await _report(settings, throttle, "tg:5151", "汉口路5号垃圾堆积", 31.2701)
    await discoveries(settings)
    assert not await Discovery.filter(report_id=suspended.report_id).exists()
    await change_status(org.id, OrgStatus.VERIFIED, actor="staff:op")
    async with await orgs_setup.member_client(app, admin) as c:
        token = await orgs_setup.csrf_of(c, "/org")
        r = await c.post(toggle, data={"csrf_token": token, "reports_for_org": "0"})
        assert r.status_code == 303
    off = await _report(settings, throttle, "tg:5151", "四川中路8号树枝断了", 31.2801)
    await discoveries(settings)
    assert not await Discovery.filter(report_id=off.report_id).exists()
