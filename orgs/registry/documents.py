"""An organisation's documents (登记证书, 章程, the data-processing agreement's scan): uploaded by
its admins on /org, read by its own people there and by operators on the staff org page.

Never served publicly. A file is taken for what its bytes are, not for its name: a PDF is kept
as it is, a JPEG or PNG is re-encoded without EXIF like every photo. Files live under
media_dir/orgdocs/<org id>/, named by their SHA-256, never by what the uploader called them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.datastructures import UploadFile

from orgs import web
from orgs.registry.models import Organisation, OrgDocument
from orgs.registry.service import OrgError
from orgs.tenders.award_pages import _multipart
from portal.i18n import _, gettext_for
from portal.photos import PhotoError, store_photo
from portal.settings import Settings
from portal.staff.casework import centre
from portal.staff.pages import Console
from portal.web.lang import page_language

log = logging.getLogger("gridlink.orgs")
router = APIRouter(include_in_schema=False)
staff_router = APIRouter(prefix="/staff/orgs", include_in_schema=False)

KINDS = {"certificate": _("Registration certificate"), "charter": _("Charter"),
         "agreement": _("Data-processing agreement (scan)"), "other": _("Other document")}
MAX_BYTES = 10 * 1024 * 1024
MAX_DOCUMENTS = 20
PDF = b"%PDF-"
IMAGES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# What a shown file name may not carry: paths, quotes (Content-Disposition), controls.
UNSAFE = re.compile(r'[\\/"<>|:*?\x00-\x1f\x7f]')


def kind_names(lang: str) -> dict[str, str]:
    t = gettext_for(lang)
    return {k: t(v) for k, v in KINDS.items()}


def safe_name(name: str, suffix: str) -> str:
    """The uploader's name for the file, fit to show and to offer as a download name."""
    name = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = UNSAFE.sub("", name).strip(" .")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return (stem[:100] or "document") + suffix


def _write(target: Path, data: bytes) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: two uploads of the same file may land at once.
    tmp = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


async def add_document(org: Organisation, *, kind: str, filename: str, data: bytes,
                       actor: str, settings: Settings, now: datetime | None = None
                       ) -> OrgDocument:
    """Keep one document of `org`: a PDF as sent, a JPEG or PNG re-encoded without EXIF."""
    if kind not in KINDS:
        raise OrgError(_("Choose what kind of document this is."), 422)
    if not data:
        raise OrgError(_("Choose a file to upload."), 422)
    if len(data) > MAX_BYTES:
        raise OrgError(_("A document may be at most {n} MB."), 413, n=MAX_BYTES // 2**20)
    if await OrgDocument.filter(organisation_id=org.id).count() >= MAX_DOCUMENTS:
        raise OrgError(_("An organisation may keep at most {n} documents: remove one first."),
                       409, n=MAX_DOCUMENTS)
    folder = f"orgdocs/{org.id}"
    if data.startswith(PDF):
        digest = hashlib.sha256(data).hexdigest()
        path, content_type, size = f"{folder}/{digest}.pdf", "application/pdf", len(data)
        await asyncio.to_thread(_write, settings.media_dir / path, data)
        suffix = ".pdf"
    elif data.startswith(IMAGES):
        try:
            stored = await store_photo(data, settings.media_dir / folder, max_bytes=MAX_BYTES,
                                       max_pixels=settings.max_photo_pixels,
                                       max_side=settings.photo_max_side)
        except PhotoError as exc:
            raise OrgError(str(exc), 422) from exc
        path, content_type, size = f"{folder}/{stored.path}", stored.content_type, stored.size
        digest = Path(stored.path).stem
        suffix = ".jpg"
    else:
        raise OrgError(_("Upload a PDF, JPEG or PNG file."), 415)
    if await OrgDocument.filter(organisation_id=org.id, sha256=digest).exists():
        raise OrgError(_("This file is already among the organisation's documents."), 409)
    return await OrgDocument.create(
        organisation=org, kind=kind, filename=safe_name(filename, suffix), path=path,
        content_type=content_type, size=size, sha256=digest, uploaded_by=actor[:100],
        uploaded_at=now or datetime.now(UTC))


async def remove_document(doc: OrgDocument, settings: Settings) -> None:
    """Forget the document; its file goes once no row of the organisation names it."""
    await OrgDocument.filter(id=doc.id).delete()
    if not await OrgDocument.filter(path=doc.path).exists():
        (settings.media_dir / doc.path).unlink(missing_ok=True)


def download(request: Request, doc: OrgDocument | None) -> FileResponse:
    """The file as an attachment, never shown inline: a PDF could carry script."""
    path = web.media_path(request, doc)
    if path is None:
        raise web.refuse(request, _("There is no such document."), 404)
    return FileResponse(path, media_type=doc.content_type, filename=doc.filename,
                        content_disposition_type="attachment",
                        headers={"Cache-Control": "private, no-store",
                                 "X-Content-Type-Options": "nosniff"})


async def _own(request: Request, member: web.Member, doc_id: str) -> OrgDocument:
    doc = None
    n = web.number(doc_id)
    if member.organisation is not None and n is not None:
        doc = await OrgDocument.get_or_none(id=n, organisation_id=member.organisation.id)
    if doc is None:
        raise web.refuse(request, _("There is no such document."), 404)
    return doc


@router.post("/org/documents")
async def upload(request: Request, member: web.OrgAdmin):
    settings = request.app.state.settings
    form = await _multipart(request, MAX_BYTES + web.FORM_LIMIT, 1)
    t = gettext_for(page_language(request))
    try:
        sent = form.get("file")
        kind = form.get("kind", "")
        if not isinstance(sent, UploadFile) or not isinstance(kind, str):
            raise web.refuse(request, _("Choose a file to upload."), 422)
        data = await sent.read(MAX_BYTES + 1)
        try:
            doc = await add_document(member.organisation, kind=kind,
                                     filename=sent.filename or "", data=data,
                                     actor=f"account:{member.account.username}",
                                     settings=settings)
        except OrgError as exc:
            raise HTTPException(exc.status, exc.translated(t)) from None
    finally:
        await form.close()
    log.info("organisation %s: document %s uploaded", member.organisation.id, doc.id)
    return RedirectResponse("/org?done=document_added#documents", status_code=303)


@router.get("/org/documents/{doc_id}")
async def member_download(doc_id: str, request: Request, member: web.SignedIn):
    return download(request, await _own(request, member, doc_id))


@router.post("/org/documents/{doc_id}/remove")
async def remove(doc_id: str, request: Request, member: web.OrgAdmin):
    await web.read_form(request)
    doc = await _own(request, member, doc_id)
    await remove_document(doc, request.app.state.settings)
    log.info("organisation %s: document %s removed", doc.organisation_id, doc.id)
    return RedirectResponse("/org?done=document_removed#documents", status_code=303)


@staff_router.get("/{org_id}/documents/{doc_id}")
async def staff_download(org_id: str, doc_id: str, request: Request, user: Console):
    doc = None
    org, n = web.number(org_id), web.number(doc_id)
    if centre(user) and org is not None and n is not None:
        doc = await OrgDocument.get_or_none(id=n, organisation_id=org)
    return download(request, doc)
