"""Reading request bodies within a bound: the declared length is checked before anything is
read, and the streamed bytes are counted, since a client may lie about (or omit) the length."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request


class BodyTooLarge(Exception):
    pass


async def bounded_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in bounded_stream(request, limit)])
