"""HEAD works wherever GET does (link checkers, uptime monitors and some proxies send HEAD)."""

from __future__ import annotations

import asyncio


def get_paths(routes) -> set[str]:
    """The GET routes' paths."""
    return {route.path.replace("{fmt}", "json") for route in routes
            if "GET" in (getattr(route, "methods", None) or ())}


async def test_every_get_route_answers_head_like_get_without_a_body(app, client):
    paths = sorted(p for p in get_paths(app.routes) if "{" not in p)
    paths += ["/cases/GL-20261128-0042", "/cases/GL-20261128-0042/events",
              "/open311/v2/services/manhole.json", "/lang/en?next=/cases", "/static/app.css",
              "/no/such/page"]
    assert "/" in paths and "/healthz" in paths
    for path in paths:
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        if got.status_code == 200:
            assert int(head.headers["content-length"]) == len(got.content), path


async def test_head_does_not_open_post_only_routes(client):
    r = await client.head("/staff/logout")
    assert r.status_code == 405 and r.content == b""


async def test_head_on_a_live_update_stream_answers_at_once(settings, throttle, client):
    from portal.intake.service import submit
    from portal.intake.submission import Submission

    receipt = await submit(Submission(reporter="web:head@example.org", channel="web",
                                      text="南京东路100号门口垃圾满了", category="garbage",
                                      address="南京东路100号"), throttle=throttle,
                           settings=settings)
    # The stream itself runs for many seconds; HEAD wants only its headers.
    head = await asyncio.wait_for(client.head(f"/cases/{receipt.case_code}/events"), timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
