"""WeChat's message-server protocol on the wire: signatures, the XML envelope (plain or AES
"safe mode"), and passive replies. Nothing here trusts the body before its signature checks
out, and no XML is handed to wechatpy (whose xmltodict would read a DTD) before defusedxml has
refused DTDs, entities and external references."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.messages import BaseMessage

# WeChat's messages are a few hundred bytes; a long text is 2048 bytes of content at most.
MAX_BODY_BYTES = 64 * 1024
# Query values are short (a 10-digit timestamp, a nonce, a 40-hex signature); longer is not WeChat.
_MAX_PARAM = 128
# How far a delivery's timestamp may be from our clock (WeChat retries within seconds; the rest
# is for clocks that disagree). Less than the inbox keeps a message (bot/wechat/inbox.py).
FRESH_S = 6 * 3600
# The fields the adapter reads as text (xmltodict would turn elements inside them into dicts).
FLAT = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "MediaId",
        "Recognition", "Location_X", "Location_Y", "Label", "Event", "EventKey", "Latitude",
        "Longitude")


class Refused(Exception):
    """Not from WeChat (signature, app id): 403."""


class Malformed(Exception):
    """Signed, but not a message we can read: 400."""


def signature(*parts: str) -> str:
    """WeChat's SHA-1 over the sorted parts (token, timestamp, nonce[, Encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _param(query, name: str) -> str:
    value = query.get(name, "")
    return value if len(value) <= _MAX_PARAM else ""


def signed(token: str, query) -> bool:
    """The `signature` every request carries (the handshake and every delivery, in both modes):
    checked before the body is read."""
    got = _param(query, "signature")
    if not got:
        return False
    want = signature(token, _param(query, "timestamp"), _param(query, "nonce"))
    return secrets.compare_digest(got.encode(), want.encode())


def recent(query, now: float | None = None) -> bool:
    """A delivery signed within FRESH_S of our clock. Older ones are refused: the inbox forgets
    a message after a day, so a replayed old delivery must not be taken for a new one."""
    stamp = _param(query, "timestamp")
    if not stamp.isdigit():
        return False
    return abs((time.time() if now is None else now) - int(stamp)) <= FRESH_S


def safe_xml(data: bytes | str) -> dict[str, str | None]:
    """The fields of an `<xml>` document (None for a field with elements inside), or Malformed.
    DTDs (and with them entity bombs and external entities) are refused before anything is
    expanded."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, UnicodeError) as exc:
        raise Malformed(f"not acceptable XML ({type(exc).__name__})") from None
    if root.tag != "xml":
        raise Malformed("not a WeChat message")
    return {child.tag: None if len(child) else child.text or "" for child in root}


@dataclass
class Envelope:
    """How a delivery came (and how its reply must go back)."""

    crypto: WeChatCrypto | None
    nonce: str


class Codec:
    """Plain mode without an AES key, safe mode with one (settings.wechat_aes_key)."""

    def __init__(self, token: str, aes_key: str, app_id: str):
        self.token = token
        self.app_id = app_id
        self.crypto = None
        if aes_key:
            try:
                self.crypto = WeChatCrypto(token, aes_key, app_id)
            except (AssertionError, ValueError) as exc:
                raise ValueError("GRIDLINK_WECHAT_AES_KEY must be the 43-character "
                                 "EncodingAESKey of the account") from exc

    @property
    def mode(self) -> str:
        return "safe" if self.crypto else "plain"

    def decode(self, body: bytes, query) -> tuple[BaseMessage, Envelope]:
        """The message of a delivery whose `signature` was checked already."""
        envelope = Envelope(self.crypto, _param(query, "nonce"))
        outer = safe_xml(body)
        if self.crypto is None:
            return _message(body.decode("utf-8", "replace"), outer), envelope
        encrypted = outer.get("Encrypt", "")
        if not encrypted or query.get("encrypt_type", "aes") != "aes":
            raise Refused("safe mode expects an encrypted message")
        want = signature(self.token, _param(query, "timestamp"), _param(query, "nonce"),
                         encrypted)
        if not secrets.compare_digest(_param(query, "msg_signature").encode(), want.encode()):
            raise Refused("wrong msg_signature")
        try:
            inner = PrpCrypto(self.crypto.key).decrypt(encrypted, self.app_id)
        except InvalidAppIdException:
            raise Refused("encrypted for another app id") from None
        except Exception as exc:  # bad base64, padding, length: whatever the bytes make it do
            raise Malformed(f"cannot decrypt ({type(exc).__name__})") from None
        return _message(inner, safe_xml(inner.encode())), envelope

    def reply(self, envelope: Envelope, message: BaseMessage, text: str) -> str:
        """A passive text reply, encrypted in safe mode."""
        xml = text_reply(message, text)
        if envelope.crypto is None:
            return xml
        return envelope.crypto.encrypt_message(xml, envelope.nonce or secrets.token_hex(8),
                                               str(int(time.time())))


def _message(xml: str, fields: dict[str, str | None]) -> BaseMessage:
    """wechatpy's message for XML defusedxml has read already."""
    if not fields.get("MsgType") or not fields.get("FromUserName"):
        raise Malformed("not a WeChat message")
    if any(name in fields and fields[name] is None for name in FLAT):
        raise Malformed("a field that holds text holds elements")
    if len(fields["FromUserName"]) > 64:
        raise Malformed("FromUserName too long")
    try:
        message = parse_message(xml)
        # Fields convert when read: a MsgId or CreateTime that is no number fails here.
        if not (0 <= message.time < 2**32 and 0 <= message.id < 2**63):
            raise ValueError("out of range")
    except (KeyError, ValueError, TypeError, AttributeError, ExpatError) as exc:
        raise Malformed(f"not a WeChat message ({type(exc).__name__})") from None
    return message


def _cdata(text: str) -> str:
    # "]]>" in a text (a description quoted back) would end the section early.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(message: BaseMessage, text: str) -> str:
    return ("<xml>"
            f"<ToUserName>{_cdata(message.source)}</ToUserName>"
            f"<FromUserName>{_cdata(message.target or '')}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(text)}</Content>"
            "</xml>")
