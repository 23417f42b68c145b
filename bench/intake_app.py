"""The product app plus one bare route, for bench/intake.py: `uvicorn intake_app:app`.

`POST /bench/insert` inserts one row into the bench table `bench_insert` (created by the bench)
and answers with its id: the floor cost of one durable write through this stack, to compare the
Open311 POST with. It exists only in this module, never in the product app.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from tortoise import connections

from portal.app import create_app

app = create_app()


async def bench_insert(request: Request) -> dict:
    body = (await request.body()).decode()
    conn = connections.get("default")
    now = datetime.now(UTC)
    values = "$1, $2" if conn.capabilities.dialect == "postgres" else "?, ?"
    rows = await conn.execute_query_dict(
        f"INSERT INTO bench_insert (body, created_at) VALUES ({values}) RETURNING id",
        [body, now])
    return {"id": rows[0]["id"]}


def _beside_open311_post() -> None:
    """The route goes where the Open311 POST is, so that matching it costs what matching the
    Open311 POST does (the app's routes are matched in order)."""
    routes = app.router.routes
    at = next(i for i, r in enumerate(routes)
              if getattr(r, "path", "") == "/open311/v2/requests.{fmt}"
              and "POST" in getattr(r, "methods", ()))
    app.post("/bench/insert", include_in_schema=False)(bench_insert)
    routes.insert(at, routes.pop())


_beside_open311_post()
