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


def test_e_mail_addresses_and_identity_keys_are_masked():
    out = redact("reporter tg:123456789 wx:oAbC-12_x web:zhang.wei@example.org "
                 "hotline:12345-2026-T0042 ticket hotline:12345:T0042 wrote li@example.cn")
    for secret in ("123456789", "oAbC-12_x", "zhang.wei", "T0042", "li@example.cn"):
        assert secret not in out
    assert "tg:***" in out and "hotline:***" in out


def test_tracebacks_and_objects_logged_are_masked(caplog):
    logger = logging.getLogger("gridlink.test")
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise ValueError('duplicate key (external_ref)=(hotline:12345:T0042), '
                         'caller 13812345678, zhang@example.org')
    except ValueError as exc:
        logger.exception("filing failed")
        logger.warning("filing failed: %s (%d tickets)", exc, 3)
    assert "filing failed" in caplog.text and "ValueError" in caplog.text
    assert "(3 tickets)" in caplog.text
    for secret in ("T0042", "13812345678", "zhang@example.org"):
        assert secret not in caplog.text
