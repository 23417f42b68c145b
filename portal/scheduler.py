"""Scheduled work: idempotent sweeps over the database, run by APScheduler 3.

Each sweep is a plain async function of the settings that finds what is due and does it, so
that running it twice, late, or in two processes at once does no harm. `gridlink scheduler`
runs them in a process of their own (one per deployment is enough); in the one-process
default `gridlink serve` runs them too (with `GRIDLINK_WORKER_IN_SERVER`, like the delivery
worker).

A new sweep is one more line in SWEEPS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feedback.worker import prune, remind
from orgs.app import SWEEPS as ORG_SWEEPS
from portal.settings import Settings

log = logging.getLogger("gridlink.scheduler")


@dataclass(frozen=True)
class Sweep:
    name: str
    every: timedelta
    # Does what is due; returns how many things it did (for the log).
    run: Callable[[Settings], Awaitable[int | None]]


SWEEPS: tuple[Sweep, ...] = (
    Sweep("satisfaction reminders", timedelta(minutes=10), remind),
    Sweep("finished progress updates forgotten", timedelta(hours=6), prune),
    *(Sweep(name, every, run) for name, every, run in ORG_SWEEPS),
)


class Scheduler:
    """The sweeps on an asyncio loop: each runs at start and then every `every`; a run that
    is still going when the next is due is not doubled (max_instances=1), and runs missed
    while the loop was busy are made up by one run (coalesce)."""

    def __init__(self, settings: Settings, sweeps: tuple[Sweep, ...] = SWEEPS):
        self.settings = settings
        self.sweeps = sweeps
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        now = datetime.now(UTC)
        for sweep in self.sweeps:
            self._scheduler.add_job(self._run, "interval", args=[sweep], id=sweep.name,
                                    name=sweep.name, seconds=sweep.every.total_seconds(),
                                    next_run_time=now)
        self._scheduler.start()
        log.info("scheduler: %s", ", ".join(
            f"{s.name} every {s.every.total_seconds():g} s" for s in self.sweeps) or "nothing")

    async def _run(self, sweep: Sweep) -> None:
        # In a task of its own and shielded: shutting the scheduler down cancels what its
        # executor runs, and a sweep should rather finish its transaction (close waits).
        task = asyncio.create_task(run_sweep(sweep, self.settings), name=f"sweep {sweep.name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The scheduler is shutting down: the sweep goes on, and close() waits for it.
            pass

    async def close(self) -> None:
        """Stop starting sweeps, and let the ones running finish."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            # AsyncIOScheduler shuts down in a callback of the loop: let it run.
            await asyncio.sleep(0)
        self._scheduler = None
        await asyncio.gather(*self._running, return_exceptions=True)


async def run_sweep(sweep: Sweep, settings: Settings) -> int:
    """One run of a sweep; a failure is logged (the next run tries again), never raised."""
    try:
        done = await sweep.run(settings) or 0
    except Exception:
        log.exception("scheduled sweep %r failed", sweep.name)
        return 0
    if done:
        log.info("%s: %d", sweep.name, done)
    return done


async def run_all_once(settings: Settings, sweeps: tuple[Sweep, ...] = SWEEPS) -> dict[str, int]:
    """Every sweep once, one after the other (`gridlink scheduler --once`, e.g. from cron)."""
    return {sweep.name: await run_sweep(sweep, settings) for sweep in sweeps}


@asynccontextmanager
async def scheduling(settings: Settings):
    """The sweeps inside the server (the one-process default, `worker_in_server`)."""
    if not settings.worker_in_server:
        yield None
        return
    scheduler = Scheduler(settings)
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.close()
