"""The unified social credit code (统一社会信用代码) of GB 32100-2015: 18 characters from a
31-character alphabet, the last one a check character over the first 17.

The weights 3^(i-1) mod 31 are distinct, non-zero and prime to 31, so any single changed
character fails the check.
"""

from __future__ import annotations

import unicodedata

from portal.i18n import _

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

LENGTH_ERROR = _("A unified social credit code has 18 characters.")
ALPHABET_ERROR = _("A unified social credit code uses digits and the letters A–Y except I, O, "
                   "S, V and Z.")
CHECK_ERROR = _("The last character of this code does not match: please check it.")


def normalise(raw: str | None) -> str:
    """Full-width characters and lower case as typed on a phone; spaces anywhere dropped."""
    return "".join(unicodedata.normalize("NFKC", raw or "").split()).upper()


def check_char(first17: str) -> str:
    total = sum(VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def shape_problem(code: str) -> str | None:
    """Length or alphabet wrong (never overridable), as an English msgid; None if the shape is
    right."""
    if len(code) != 18:
        return LENGTH_ERROR
    if any(c not in VALUE for c in code):
        return ALPHABET_ERROR
    return None


def problem(code: str) -> str | None:
    """None for a valid (normalised) code, else an English msgid saying what is wrong."""
    shape = shape_problem(code)
    if shape:
        return shape
    if check_char(code[:17]) != code[17]:
        return CHECK_ERROR
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None
