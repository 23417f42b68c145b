"""/bot/wechat: the Official Account's message server URL. GET is the verification handshake;
POST brings messages and events. The signature is checked before the body is read, the body is
capped, and hostile XML is refused before anything parses it (bot/wechat/wire.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.background import BackgroundTask

from bot.wechat.wire import MAX_BODY_BYTES, Malformed, Refused, recent, signed
from portal.http import BodyTooLarge, read_body

router = APIRouter()


def _text(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status)


@router.get("/bot/wechat", include_in_schema=False)
async def verify(request: Request):
    channel = request.app.state.wechat
    if not signed(channel.codec.token, request.query_params):
        return _text(403, "Wrong signature.")
    return _text(200, request.query_params.get("echostr", ""))


@router.post("/bot/wechat", include_in_schema=False)
async def deliver(request: Request):
    channel = request.app.state.wechat
    query = request.query_params
    if not signed(channel.codec.token, query):
        return _text(403, "Wrong signature.")
    if not recent(query):
        return _text(403, "The timestamp is too far from now.")
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _text(413, "The message is too large.")
    try:
        message, envelope = channel.codec.decode(body, query)
    except Refused as exc:
        return _text(403, str(exc))
    except Malformed as exc:
        return _text(400, str(exc))
    answer = await channel.receive(message)
    later = (BackgroundTask(channel.send_later, message.source, answer.later)
             if answer.later else None)
    if answer.passive is None:
        # WeChat's word for "received, no reply": it does not retry and shows nothing.
        return PlainTextResponse("success", background=later)
    return PlainTextResponse(channel.codec.reply(envelope, message, answer.passive),
                             media_type="application/xml", background=later)
