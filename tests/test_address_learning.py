"""What reports with an address and a point teach the intake about where an address lies."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from portal.cases.models import AddressPoint
from portal.intake import service


async def learn(keys: set[str], lat: float, lng: float) -> None:
    async with in_transaction() as conn:
        await service._learn(keys, lat, lng, conn)


async def test_new_keys_are_placed_and_known_ones_move_towards_new_points(clean_db):
    await learn({"江宁路#1083", "江宁路&昌平路"}, 31.2390, 121.4448)
    assert await AddressPoint.all().count() == 2
    await learn({"江宁路#1083"}, 31.2392, 121.4450)  # ~30 m away: averaged in
    point = await AddressPoint.get(key="江宁路#1083")
    assert point.samples == 2
    assert abs(point.lat - 31.2391) < 1e-9 and abs(point.lng - 121.4449) < 1e-9
    assert (await AddressPoint.get(key="江宁路&昌平路")).samples == 1


async def test_a_point_far_from_a_known_key_does_not_move_it(clean_db):
    await learn({"江宁路#1083"}, 31.2390, 121.4448)
    await learn({"江宁路#1083"}, 31.2390, 121.4490)  # ~400 m east
    point = await AddressPoint.get(key="江宁路#1083")
    assert (point.samples, point.lat, point.lng) == (1, 31.2390, 121.4448)


async def test_a_steady_point_no_longer_moves(clean_db):
    await AddressPoint.create(key="江宁路#1083", lat=31.2390, lng=121.4448,
                              samples=service._STEADY_SAMPLES)
    await learn({"江宁路#1083"}, 31.2391, 121.4449)
    point = await AddressPoint.get(key="江宁路#1083")
    assert (point.samples, point.lat, point.lng) == (service._STEADY_SAMPLES, 31.2390, 121.4448)


async def test_a_report_writes_its_keys_subscription_and_learned_point_together(settings,
                                                                                throttle):
    from portal.cases.models import CaseKey, Subscription
    from portal.intake.submission import Submission

    receipt = await service.submit(Submission(
        reporter="tg:5150", channel="telegram", category="garbage", lat=31.2390, lng=121.4448,
        text="江宁路1083号门口垃圾堆了三天", address="上海市静安区江宁路1083号"),
        throttle=throttle, settings=settings)
    assert await CaseKey.filter(case_id=receipt.case_id).values_list("key", flat=True) == [
        "江宁路#1083"]
    assert await Subscription.filter(case_id=receipt.case_id).count() == 1
    point = await AddressPoint.get(key="江宁路#1083")
    assert (point.lat, point.lng, point.samples) == (31.2390, 121.4448, 1)
