"""Every user-facing text marked in the code and the templates has a Chinese translation, compiled and in use."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.i18n import LOCALE_DIR, gettext_for, normalise_language

ROOT = Path(__file__).resolve().parents[1]


def _marked_in_code() -> set[str]:
    found = set()
    for package in ("portal", "bot", "orgs", "feedback"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
                ROOT / package,
                method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
                options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
                keywords={"_": None, "t": None, "ngettext": (1, 2)}):
            if isinstance(message, tuple):  # ngettext: (singular, plural)
                message = message[0]
            if isinstance(message, str) and message:
                found.add(message)
    return found


def test_every_marked_text_has_a_chinese_translation_in_the_compiled_catalog():
    with open(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale="zh_CN")
    # Plural entries have a tuple id and one string per form: every form must be filled.
    translated = {m.id: m.string for m in catalog if m.id and not m.fuzzy and
                  (all(m.string) if m.pluralizable else m.string)}
    singular = {(i[0] if isinstance(i, tuple) else i) for i in translated}
    missing = sorted(_marked_in_code() - singular)
    assert not missing, f"run `make messages` and translate: {missing}"
    compiled = gettext.translation("messages", LOCALE_DIR, languages=["zh_CN"])
    stale = [i for i, text in translated.items()
             if (compiled.ngettext(i[0], i[1], 1) != text[0] if isinstance(i, tuple)
                 else compiled.gettext(i) != text)]
    assert not stale, f"run `pybabel compile -d portal/locale`: {stale[:5]}"


def test_language_choice():
    assert normalise_language("en-US,en;q=0.9") == "en"
    assert normalise_language("zh-Hans-CN") == "zh-CN"
    assert normalise_language(None) == "zh-CN"
    assert gettext_for("en")("Please sign in.") == "Please sign in."
    assert gettext_for("zh-CN")("Please sign in.") == "请先登录。"
