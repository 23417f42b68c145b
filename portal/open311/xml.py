"""GeoReport v2 XML documents, written with xml.etree.ElementTree.

Lists become a wrapper element holding one element per item (`<services><service>…`); a list
inside an item is named in the plural and holds singular elements (`<attributes><attribute>…`).
None is an empty element, booleans are true/false.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _singular(tag: str) -> str:
    return tag[:-1] if tag.endswith("s") else f"{tag}_item"


def _fill(parent: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(parent, key), inner)
    elif isinstance(value, list):
        for inner in value:
            _fill(ET.SubElement(parent, _singular(parent.tag)), inner)
    else:
        parent.text = _text(value)


def _bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def document(root_tag: str, item_tag: str, items: list[dict]) -> bytes:
    """`<root_tag><item_tag>…</item_tag>…</root_tag>`."""
    root = ET.Element(root_tag)
    for item in items:
        _fill(ET.SubElement(root, item_tag), item)
    return _bytes(root)


def single(root_tag: str, item: dict) -> bytes:
    """One object as the document element, e.g. `<service_definition>`."""
    root = ET.Element(root_tag)
    _fill(root, item)
    return _bytes(root)
