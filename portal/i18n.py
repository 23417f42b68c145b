"""gettext catalogs (zh_CN, en). Message ids are English; zh-CN is the default language."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGES = ("zh-CN", "en")


def normalise_language(value: str | None) -> str:
    """Map 'zh', 'zh_CN', 'zh-Hans', 'en-US', Accept-Language... to 'zh-CN' or 'en'."""
    if not value:
        return DEFAULT_LANGUAGE
    first = value.split(",")[0].strip().lower()
    if first.startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


@lru_cache
def translations(language: str) -> gettext.NullTranslations:
    code = "zh_CN" if normalise_language(language) == "zh-CN" else "en"
    return gettext.translation("messages", LOCALE_DIR, languages=[code], fallback=True)


def gettext_for(language: str):
    return translations(language).gettext


def _(message: str) -> str:
    """Marks a message for extraction; translate it later with gettext_for(language)."""
    return message
