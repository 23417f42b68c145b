"""Logging set-up that keeps phone numbers, keys and tokens out of every log line."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # Mainland mobile numbers, with or without +86.
    (re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\2****\3"),
    # Secrets passed in query strings or forms.
    (re.compile(r"(?i)\b(api_key|token|secret|password|access_token)=([^&\s\"']+)"), r"\1=***"),
    # Bearer tokens in echoed headers.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _clean(value):
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Redacts the message and its arguments in place, keeping their shape: formatters such
    as uvicorn's access log unpack `record.args`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def setup(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_filter()


def install_filter() -> None:
    """Attach the filter to every handler of the root and uvicorn loggers."""
    flt = RedactingFilter()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
