"""Points: datum conversion (GCJ-02 to WGS-84), distances and cells for the candidate search."""

from __future__ import annotations

import math

# Cells as integers throughout (the column type): the string API converts every cell twice.
from h3.api import basic_int as h3

# Resolution 8 cells have an edge of about 460 m: a cell and its first ring cover every
# point within that distance, more than any merge radius.
CELL_RES = 8
# Coarse cells serialise twin submissions (advisory lock per category and cell).
LOCK_RES = 6

_A = 6378245.0
_EE = 0.00669342162296594323


def _out_of_china(lat: float, lng: float) -> bool:
    return not (73.66 < lng < 135.05 and 3.86 < lat < 53.55)


def _transform(lat: float, lng: float) -> tuple[float, float]:
    x, y = lng - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
            + 0.2 * math.sqrt(abs(x)))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlng += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlng += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlng += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlat, dlng


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if _out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _transform(lat, lng)
    return lat + dlat, lng + dlng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """Invert the GCJ-02 offset by fixed-point iteration (centimetre accuracy)."""
    if _out_of_china(lat, lng):
        return lat, lng
    wlat, wlng = lat, lng
    for _ in range(10):
        glat, glng = wgs84_to_gcj02(wlat, wlng)
        dlat, dlng = glat - lat, glng - lng
        wlat, wlng = wlat - dlat, wlng - dlng
        if abs(dlat) < 1e-9 and abs(dlng) < 1e-9:
            break
    return wlat, wlng


def to_wgs84(lat: float, lng: float, crs: str) -> tuple[float, float]:
    if crs == "gcj02":
        return gcj02_to_wgs84(lat, lng)
    return lat, lng


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(min(1.0, a)))


def cell(lat: float, lng: float) -> int:
    return h3.latlng_to_cell(lat, lng, CELL_RES)


def cells_near(lat: float, lng: float) -> list[int]:
    """The point's cell and its first ring."""
    return h3.grid_disk(h3.latlng_to_cell(lat, lng, CELL_RES), 1)


def lock_cells(lat: float, lng: float) -> list[int]:
    """Coarse cells under the candidate ring: twin submissions there take the same locks."""
    centre = h3.latlng_to_cell(lat, lng, CELL_RES)
    return sorted({h3.cell_to_parent(c, LOCK_RES) for c in h3.grid_disk(centre, 1)})


def valid_point(lat: float, lng: float) -> bool:
    return (math.isfinite(lat) and math.isfinite(lng)
            and -90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0)
