"""Jinja2 templates with gettext: `{{ _("English text") }}` is shown in the page's language.

Every page gets `lang`, `other_lang`, `csrf_token`, `settings` and `path` in its context, and
the response carries the CSRF cookie when the page made one.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal.i18n import _, gettext_for, translations
from portal.web import csrf
from portal.web.lang import page_language

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@jinja2.pass_context
def _gettext(context, message: str) -> str:
    return translations(context["lang"]).gettext(message)


@jinja2.pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return translations(context["lang"]).ngettext(singular, plural, n)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times are stored in UTC and shown in Asia/Shanghai."""
    if value is None:
        return ""
    return value.astimezone(SHANGHAI).strftime(fmt)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(default=True),
                             extensions=["jinja2.ext.i18n"], trim_blocks=True,
                             lstrip_blocks=True, auto_reload=False)
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)
    env.filters["local_time"] = local_time
    return env


env = _environment()


@lru_cache
def content_policy(map_tile_url: str) -> str:
    """Scripts, styles, requests and frames of a page only from this site (the pages have no
    inline script or style), images also from the map's tile server; never framed elsewhere."""
    tiles = ""
    parts = urlsplit(map_tile_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        # Leaflet's {s} picks a subdomain (a.tile..., webrd01...): a policy's wildcard stands
        # for the whole first label only.
        first, dot, rest = parts.netloc.partition(".")
        host = ("*" if "{" in first else first) + dot + rest
        tiles = f" {parts.scheme}://{host}" if "{" not in host else f" {parts.scheme}:"
    return (f"default-src 'self'; img-src 'self' data:{tiles}; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "strict-origin-when-cross-origin"}


def render(request: Request, name: str, context: dict | None = None, *,
           status_code: int = 200, headers: dict | None = None) -> HTMLResponse:
    lang = page_language(request)
    ctx = {"request": request, "lang": lang, "other_lang": "en" if lang == "zh-CN" else "zh-CN",
           "csrf_token": csrf.form_token(request), "settings": request.app.state.settings,
           "path": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
    ctx.update(context or {})
    html = env.get_template(name).render(ctx)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers.setdefault("Content-Language", lang)
    response.headers.setdefault("Content-Security-Policy",
                                content_policy(request.app.state.settings.map_tile_url))
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    csrf.set_cookie(request, response)
    return response


def wants_html(request: Request) -> bool:
    """Pages (not the JSON APIs) answer errors with a page."""
    path = request.url.path
    if path.startswith(("/api/", "/open311/", "/bot/", "/docs", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


ERROR_TITLES = {
    400: _("The request could not be read"), 401: _("Please sign in"),
    403: _("Not allowed"), 404: _("Page not found"), 405: _("Not allowed"),
    409: _("That cannot be done now"), 413: _("Too large"), 422: _("Please check what you entered"),
    429: _("Too many attempts"),
}
OTHER_ERROR = _("Something went wrong")


def error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    t = gettext_for(page_language(request))
    title = t(ERROR_TITLES.get(exc.status_code, OTHER_ERROR))
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if detail in (title, HTTPStatus(exc.status_code).phrase):
        detail = ""
    return render(request, "error.html", {"title": title, "detail": detail,
                                          "status": exc.status_code},
                  status_code=exc.status_code, headers=getattr(exc, "headers", None))
