"""The composition root: builds the FastAPI app and wires every package into it."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.telegram import app as telegram
from bot.wechat import app as wechat
from feedback.live import LiveBus
from portal import db, logs
from portal.cases.service import CaseError
from portal.i18n import gettext_for, normalise_language
from portal.intake.submission import InvalidSubmission, Throttled
from portal.intake.throttle import Throttle, storage_for
from portal.scheduler import scheduling
from portal.seed import ensure_reference_data
from portal.settings import Settings, get_settings
from portal.web import lang, templating
from portal.web.keys import secret_key
from portal.web.routing import add_routes

log = logging.getLogger("gridlink")


class HeadAsGet:
    """HEAD answered as GET without the body, for every GET route at once (FastAPI's GET
    routes answer HEAD with 405; link checkers and monitors send HEAD). The headers stay
    those of GET, Content-Length included, as HTTP asks."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message):
            if message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                if message.get("more_body", False):
                    # A streamed answer (live updates) could run for long: HEAD is answered
                    # with the headers, so stop producing the body now.
                    raise _HeadAnswered
                return
            await send(message)

        try:
            await self.app({**scope, "method": "GET"}, receive, without_body)
        except* _HeadAnswered:  # a streamed response raises it from inside its task group
            pass


class _HeadAnswered(Exception):
    pass


@asynccontextmanager
async def delivering(app: FastAPI, settings: Settings):
    """The progress-update worker inside the server (the one-process default); the live-update
    bus closed at the end."""
    lock = None
    try:
        if settings.worker_in_server and not settings.redis_url:
            # Without Redis each worker keeps its platforms' pace alone: with
            # `serve --workers N`, the one process that holds the lock delivers.
            lock = _deliverer_lock(settings)
            if lock is None:
                log.info("progress updates: another server process delivers them")
        if not settings.worker_in_server or (lock is None and not settings.redis_url):
            yield
            return
        from portal.delivery import build_worker

        worker = build_worker(settings, app.state.live)
        worker.start()
        try:
            yield
        finally:
            await worker.close()
    finally:
        await app.state.live.close()
        if lock is not None:
            lock.close()


def _deliverer_lock(settings: Settings):
    """An open file holding an exclusive lock, or None when another process holds it."""
    import fcntl
    from pathlib import Path

    path = Path(settings.media_dir).parent / "delivery.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 (held open as long as the process delivers)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def create_app(settings: Settings | None = None, *, manage_db: bool = True) -> FastAPI:
    """`manage_db=False` leaves opening and closing the database to the caller (tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # uvicorn sets up its handlers before the app starts; filter them here.
        # Every worker process runs this, `--workers N` children included (basicConfig leaves
        # handlers that are already set alone).
        logs.setup()
        if not manage_db:
            async with telegram.running(app), wechat.running(app):
                yield
            return
        await db.init_db(settings.database_url)
        # In place already when `gridlink serve` started us (it migrates first): only read.
        await ensure_reference_data()
        log.info("Gridlink started with %s, %s state; public address %s", db.dialect(),
                 "Redis" if settings.redis_url else "in-memory", settings.public_base_url)
        try:
            # Stopped first: pending updates still need the database.
            async with telegram.running(app), wechat.running(app), delivering(app, settings), \
                    scheduling(settings):
                yield
        finally:
            await db.close_db()

    app = FastAPI(title="Gridlink", version="0.1.0", lifespan=lifespan,
                  description="网格联动 — citizen reports, Open311 GeoReport v2, hotline intake.")
    app.state.settings = settings
    app.state.secret_key = secret_key(settings)
    app.state.throttle = Throttle(storage_for(settings.redis_url), settings.throttle_new_reports)
    app.state.live = LiveBus(settings.redis_url)
    telegram.attach(app, settings, app.state.throttle)
    wechat.attach(app, settings, app.state.throttle)

    from feedback.routes import router as feedback_pages
    from orgs import app as orgs_app
    from orgs.web import report_as
    from portal.cases.pages import router as resident_pages
    from portal.hotline.routes import router as hotline_router
    from portal.open311.routes import discovery_router
    from portal.open311.routes import router as open311_router
    from portal.staff.pages import router as staff_pages
    from portal.staff.routes import router as staff_router

    app.state.report_as = report_as
    for router in (open311_router, discovery_router, hotline_router, staff_router,
                   *orgs_app.staff_routers(), staff_pages, *orgs_app.public_routers(),
                   resident_pages, feedback_pages, lang.router):
        add_routes(app, router)
    app.mount("/static", StaticFiles(directory=templating.STATIC), name="static")
    app.add_middleware(HeadAsGet)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"ok": True}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if templating.wants_html(request):
            return templating.error_page(request, exc)
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidSubmission)
    async def invalid(request: Request, exc: InvalidSubmission):
        t = gettext_for(normalise_language(request.headers.get("accept-language")))
        return JSONResponse({"detail": t(exc.message), "field": exc.field}, status_code=400)

    @app.exception_handler(Throttled)
    async def throttled(request: Request, exc: Throttled):
        return JSONResponse({"detail": exc.message, "retry_after": exc.retry_after},
                            status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(CaseError)
    async def case_error(request: Request, exc: CaseError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    return app
