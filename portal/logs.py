"""Logging set-up that keeps phone numbers, e-mail addresses, identity keys, API keys and tokens
out of every log line, tracebacks included."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # Mainland mobile numbers, with or without +86.
    (re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\2****\3"),
    # Secrets passed in query strings or forms (WeChat's message server URL carries the
    # sender's openid).
    (re.compile(r"(?i)\b(api_key|token|secret|password|access_token|openid)=([^&\s\"']+)"),
     r"\1=***"),
    # Telegram bot tokens, which every Bot API URL carries (…/bot123456:AA…/getFile).
    (re.compile(r"\b(bot)?\d{5,}:[A-Za-z0-9_-]{20,}"), r"\1***"),
    # Bearer tokens in echoed headers.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    # E-mail addresses.
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "***@***"),
    # Identity keys and hotline tickets: tg:<user id>, wx:<openid>, hotline:12345-2026-T1, ...
    (re.compile(r"\b(tg|wx|web|tel|hotline|open311):[^\s\"'&,;)\]]+"), r"\1:***"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _clean(value):
    """Numbers stay numbers (for %d); anything else is redacted as the text it prints as."""
    if value is None or isinstance(value, int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Redacts the message, its arguments and its traceback in place, keeping the arguments'
    shape: formatters such as uvicorn's access log unpack `record.args`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        # An exception's text (a database error quoting a row, say) is personal data too.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def setup(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aiogram logs every update it handles at INFO.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # APScheduler logs every run of every sweep at INFO; the sweeps log what they did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install_filter()


def install_filter() -> None:
    """Attach the filter to every handler of the root and uvicorn loggers."""
    flt = RedactingFilter()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
