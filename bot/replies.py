"""What every chat adapter does alike with what it sends: cut a long answer into the platform's
messages, and apologise for a failure with a reference that is also in the log."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from portal.i18n import _

SORRY = _("Sorry, something went wrong on our side and your last message was not handled. "
          "Please try again; if it keeps happening, tell us this reference: {ref}")


def new_ref() -> str:
    return "E" + secrets.token_hex(4).upper()


def split_text(text: str, limit: int, size: Callable[[str], int]) -> list[str]:
    """Pieces of at most `limit`, measured by `size` per character (Telegram counts UTF-16
    units, WeChat UTF-8 bytes), cut at a line break where one is near."""
    pieces = []
    while sum(size(c) for c in text) > limit:
        total, cut = 0, 0
        for i, ch in enumerate(text):
            total += size(ch)
            if total > limit:
                cut = i
                break
        newline = text.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return [p for p in pieces if p.strip()]
