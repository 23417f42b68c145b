"""The in-process moving windows behind the default (no Redis) throttle."""

from __future__ import annotations

from limits import parse_many

from portal.intake.throttle import LocalWindows, Throttle, storage_for


def test_each_window_counts_and_says_when_to_retry():
    windows = LocalWindows()
    items = parse_many("2/10 minutes;3/day")
    assert windows.hit("p", items, 1000.0) is None
    assert windows.hit("p", items, 1010.0) is None
    # The first hit leaves the 10-minute window at 1600.
    assert windows.hit("p", items, 1100.0) == 500
    assert windows.hit("p", items, 1601.0) is None
    # Three in the day: the first leaves the day window at 1000 + 86400.
    assert windows.hit("p", items, 2300.0) == 1000 + 86400 - 2300
    # A refused hit is not counted, and other people are not affected.
    assert windows.hit("q", items, 2300.0) is None


def test_people_whose_hits_all_expired_are_forgotten():
    windows = LocalWindows()
    items = parse_many("5/minute")
    windows.hit("old", items, 0.0)
    windows.hit("new", items, 200.0)
    assert set(windows.hits) == {"new"}


async def test_throttle_without_redis_uses_local_windows():
    throttle = Throttle(storage_for(""), "1/minute", namespace="t")
    assert await throttle.hit(1) is None
    assert 1 <= await throttle.hit(1) <= 60
    assert await throttle.hit(2) is None
    await throttle.reset()
    assert await throttle.hit(1) is None
