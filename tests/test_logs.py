"""Logs never carry phone numbers, API keys or tokens."""

import logging

from portal.logs import RedactingFilter, redact


def test_phone_numbers_keys_and_tokens_are_masked():
    line = ('caller 13812345678 and +86 139-0000-1111? api_key=abcDEF123 '
            'Authorization: Bearer eyJhbGciOi.x.y token=s3cr3t')
    out = redact(line)
    assert "13812345678" not in out and "138****5678" in out
    assert "abcDEF123" not in out and "eyJhbGciOi" not in out and "s3cr3t" not in out
    assert redact("case GL-20261128-0042 at 南京东路100号") == "case GL-20261128-0042 at 南京东路100号"


def test_filter_rewrites_formatted_records(caplog):
    logger = logging.getLogger("gridlink.test")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    logger.warning("ticket from %s", "13900001111")
    assert "13900001111" not in caplog.text and "139****1111" in caplog.text


def test_uvicorn_access_lines_keep_their_shape_and_lose_the_key(caplog):
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/x?api_key=secret123", "1.1", 200),
                               None)
    RedactingFilter().filter(record)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
    assert "secret123" not in line and "GET /x?api_key=*** HTTP/1.1" in line
