"""Form-encoded bodies are read as Starlette's own form parser reads them, within the bounds."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers
from starlette.formparsers import FormParser

from portal.open311.service import Open311Error
from portal.open311.web import MAX_FIELDS, _read_urlencoded
from portal.settings import Settings

BODIES = [
    b"",
    b"a=1&b=2&a=3",
    b"&&a=1&&&b=&c&=d&",
    b"description=%E8%B7%AF%E7%81%AF+%E4%B8%8D%E4%BA%AE&lat=31.2&x=a%3Db%26c",
    b"bad=%E8%B7&plus=a+b%2Bc&raw=\xe8\xb7\xaf",
    b"attribute%5Bsize%5D%5B%5D=1&attribute[size][]=2",
]


async def _chunks(body: bytes, size: int):
    for i in range(0, len(body), size):
        yield body[i:i + size]


async def _starlette(body: bytes) -> dict[str, list[str]]:
    form = await FormParser(Headers({}), _chunks(body, 7)).parse()
    out: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        out.setdefault(name, []).append(value)
    return out


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("size", [1, 3, 4096])
async def test_fields_are_read_as_starlette_reads_them(body, size):
    ours = await _read_urlencoded(_chunks(body, size), 1000, Settings())
    assert ours == await _starlette(body)


async def test_a_field_over_the_bound_is_refused_even_when_streamed():
    body = b"a=1&description=" + b"x" * 5000 + b"&b=2"
    with pytest.raises(Open311Error) as err:
        await _read_urlencoded(_chunks(body, 100), 1000, Settings())
    assert err.value.status == 400 and "too long" in str(err.value)


async def test_too_many_fields_are_refused():
    body = b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS + 1))
    with pytest.raises(Open311Error) as err:
        await _read_urlencoded(_chunks(body, 64), 1000, Settings())
    assert err.value.status == 400 and "Too many fields" in str(err.value)
    fine = b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS))
    assert len(await _read_urlencoded(_chunks(fine, 64), 1000, Settings())) == MAX_FIELDS
