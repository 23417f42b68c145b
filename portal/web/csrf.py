"""CSRF protection for every HTML form: a random per-browser cookie, and in each form an HMAC of
it under the site's secret. A forged cross-site post carries the cookie but cannot know the
HMAC. Over https the cookie is a `__Host-` cookie: another host of the same site (a sibling
subdomain) cannot plant one whose HMAC it fetched for itself, which would make its posts pass."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request, Response

from portal.i18n import _, gettext_for

COOKIE = "gl_csrf"
SECURE_COOKIE = "__Host-gl_csrf"
FIELD = "csrf_token"


def _sign(key: bytes, browser_token: str) -> str:
    return hmac.new(key, browser_token.encode(), hashlib.sha256).hexdigest()


def _cookie(request: Request) -> str:
    return SECURE_COOKIE if request.app.state.settings.secure_cookies else COOKIE


def browser_token(request: Request) -> str:
    """This browser's token, made on its first page (the page's response sets the cookie)."""
    token = getattr(request.state, "csrf_browser", None) or request.cookies.get(_cookie(request))
    if not token or len(token) > 64:
        token = secrets.token_urlsafe(32)
    request.state.csrf_browser = token
    return token


def form_token(request: Request) -> str:
    return _sign(request.app.state.secret_key, browser_token(request))


def set_cookie(request: Request, response: Response) -> None:
    """Send the browser its token if the page made a new one."""
    token = getattr(request.state, "csrf_browser", None)
    if token and token != request.cookies.get(_cookie(request)):
        response.set_cookie(_cookie(request), token, httponly=True, samesite="lax",
                            secure=request.app.state.settings.secure_cookies)


def check(request: Request, submitted: str | None, language: str) -> None:
    """Refuse (403) a form post whose token does not belong to this browser."""
    cookie = request.cookies.get(_cookie(request))
    expected = _sign(request.app.state.secret_key, cookie) if cookie else None
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a hostile form).
    if not expected or not submitted or not hmac.compare_digest(
            expected.encode(), submitted.encode("utf-8", "replace")):
        t = gettext_for(language)
        raise HTTPException(403, t(_("This form has expired or did not come from this site. "
                                     "Go back, reload the page and send it again.")))
