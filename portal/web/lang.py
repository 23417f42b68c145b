"""Which language a page is shown in: ?lang=, then the cookie, then Chinese."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from portal.i18n import DEFAULT_LANGUAGE, LANGUAGES

COOKIE = "gl_lang"
router = APIRouter(include_in_schema=False)


def page_language(request: Request) -> str:
    for value in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if value in LANGUAGES:
            return value
    return DEFAULT_LANGUAGE


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or len(target) > 2000:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


@router.get("/lang/{language}")
async def switch(language: str, request: Request, next: str | None = None):
    response = RedirectResponse(local_path(next), status_code=303)
    if language in LANGUAGES:
        settings = request.app.state.settings
        response.set_cookie(COOKIE, language, max_age=365 * 24 * 3600, httponly=True,
                            samesite="lax", secure=settings.secure_cookies)
    return response
