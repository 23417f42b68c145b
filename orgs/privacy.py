"""How contact data reads where people other than its owner see it."""

from __future__ import annotations

import re

MOBILE = re.compile(r"^(?:86)?(1[3-9][0-9]{9})$")


def digits(phone: str) -> str:
    return "".join(c for c in phone or "" if c.isdigit())


def mask_phone(phone: str | None) -> str:
    """`13812348000` → `138****8000`; any other number keeps only its last 4 digits."""
    number = digits(phone or "")
    mobile = MOBILE.match(number)
    if mobile:
        m = mobile.group(1)
        return f"{m[:3]}****{m[-4:]}"
    if len(number) <= 4:
        return "****"
    return "****" + number[-4:]


def mask_email(email: str | None) -> str:
    """`li@ex.org` → `l***@ex.org`."""
    if not email or "@" not in email:
        return ""
    local, _at, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str | None) -> str:
    """`李明华` → `李**`: enough to ask for the person on the phone, not to identify them."""
    name = (name or "").strip()
    return f"{name[:1]}{'*' * min(max(len(name) - 1, 1), 4)}" if name else ""
