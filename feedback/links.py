"""Signed links that stand for one person and one case: rating it and stopping its updates
from an e-mail (or a WeChat template), where there is no chat to tell who is asking."""

from __future__ import annotations

import hashlib
import hmac
import re

_TOKEN = re.compile(r"^(GL-\d{8}-\d{4,6})\.(\d{1,18})\.([0-9a-f]{32})$")


def _sig(secret: bytes, purpose: str, code: str, person_id: int) -> str:
    msg = f"{purpose}|{code}|{person_id}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:32]


def token(secret: bytes, purpose: str, code: str, person_id: int) -> str:
    return f"{code}.{person_id}.{_sig(secret, purpose, code, person_id)}"


def read(secret: bytes, purpose: str, value: str) -> tuple[str, int] | None:
    """(case code, person id) of a genuine token, else None."""
    match = _TOKEN.match(value or "")
    if match is None:
        return None
    code, person_id = match.group(1), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _sig(secret, purpose, code, person_id)):
        return None
    return code, person_id


def rate_url(base_url: str, secret: bytes, code: str, person_id: int) -> str:
    return f"{base_url.rstrip('/')}/rate/{token(secret, 'rate', code, person_id)}"


def unsubscribe_url(base_url: str, secret: bytes, code: str, person_id: int) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/{token(secret, 'unsubscribe', code, person_id)}"
