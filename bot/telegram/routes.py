"""POST /bot/telegram/webhook: Telegram delivers updates here (set with `gridlink telegram
set-webhook URL`). The secret header is checked before the body is read; the update is claimed in
the inbox and handled in the background, so Telegram gets its 200 at once."""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.telegram.channel import InvalidUpdate
from portal.http import BodyTooLarge, read_body

router = APIRouter()
# Updates are a few KB (a long text with its entities); files never come inline.
MAX_BODY_BYTES = 1024 * 1024


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"ok": status == 200, "detail": detail}, status_code=status)


@router.post("/bot/telegram/webhook", include_in_schema=False)
async def webhook(request: Request):
    channel = request.app.state.telegram
    if not channel.secret:
        return _answer(404, "The webhook is off (no secret configured).")
    # Bytes: compare_digest refuses non-ASCII str, and headers arrive decoded as latin-1.
    got = request.headers.get("x-telegram-bot-api-secret-token", "").encode("latin-1")
    if not secrets.compare_digest(got, channel.secret.encode()):
        return _answer(401, "Wrong or missing secret token.")
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _answer(413, "The update is too large.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _answer(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return _answer(400, "The body is not a Telegram update.")
    try:
        new = await channel.ingest(payload)
    except InvalidUpdate as exc:
        return _answer(400, str(exc))
    return _answer(200, "accepted" if new else "received before")
