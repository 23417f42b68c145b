"""Bids sealed at rest (AES-256-GCM, a key per tender derived by HKDF from one master key).

A bid's content exists only as ciphertext until the opening: `unseal` refuses while the tender
is not opened or its deadline is still ahead, so no page, export or log can read a bid early.
The digest is the bidder's receipt; the salt inside the plaintext keeps it from telling the
price, and the padding keeps the length from telling anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.settings import Settings
from portal.web.keys import secret_key

VERSION = b"\x01"
BLOCK = 4096


class StillSealed(Exception):
    """The tender is not opened (or its deadline is ahead): the bid stays sealed."""


class SealBroken(Exception):
    """The ciphertext does not open with this tender's key and label, or its digest differs."""


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


@lru_cache(maxsize=4)
def _master(bid_seal_key: str, secret: bytes) -> bytes:
    if bid_seal_key:
        try:
            key = base64.b64decode(bid_seal_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("GRIDLINK_BID_SEAL_KEY is not base64") from exc
        if len(key) != 32:
            raise ValueError("GRIDLINK_BID_SEAL_KEY must be 32 bytes")
        return key
    return _hkdf(secret, b"gridlink bid seal master")


def key_present(settings: Settings) -> bool:
    try:
        return len(_master(settings.bid_seal_key, secret_key(settings))) == 32
    except (ValueError, RuntimeError, OSError):
        return False


def _tender_key(settings: Settings, tender_id: int) -> AESGCM:
    master = _master(settings.bid_seal_key, secret_key(settings))
    return AESGCM(_hkdf(master, f"gridlink/bid-seal/v1/tender/{tender_id}".encode()))


def _aad(tender_id: int, org_id: int, version: int) -> bytes:
    return f"v1|tender:{tender_id}|org:{org_id}|version:{version}".encode()


def _encrypt(settings: Settings, tender_id: int, plaintext: bytes, aad: bytes) -> bytes:
    padded = plaintext + b" " * (-len(plaintext) % BLOCK)
    nonce = secrets.token_bytes(12)
    return VERSION + nonce + _tender_key(settings, tender_id).encrypt(nonce, padded, aad)


def _decrypt(settings: Settings, tender_id: int, blob: bytes, aad: bytes) -> bytes:
    if not blob or blob[:1] != VERSION or len(blob) < 29:
        raise SealBroken("unknown seal format")
    try:
        return _tender_key(settings, tender_id).decrypt(blob[1:13], blob[13:], aad).rstrip(b" ")
    except InvalidTag as exc:
        raise SealBroken("the seal does not open") from exc


def seal(settings: Settings, *, tender_id: int, org_id: int, version: int, price: str,
         proposal: str, team: list[dict]) -> tuple[bytes, str]:
    """The sealed blob and the digest of the salted canonical plaintext."""
    plaintext = json.dumps({"price": price, "proposal": proposal, "team": team,
                            "salt": secrets.token_hex(16)}, ensure_ascii=False,
                           sort_keys=True, separators=(",", ":")).encode()
    return (_encrypt(settings, tender_id, plaintext, _aad(tender_id, org_id, version)),
            hashlib.sha256(plaintext).hexdigest())


def _opened(tender, now: datetime | None) -> None:
    now = now or datetime.now(UTC)
    if tender.opened_at is None or tender.deadline > now:
        raise StillSealed(tender.code)


def unseal(settings: Settings, tender, bid, now: datetime | None = None) -> dict:
    """The bid's content, only once the tender is opened and past its deadline."""
    _opened(tender, now)
    plaintext = _decrypt(settings, tender.id, bid.sealed,
                         _aad(tender.id, bid.organisation_id, bid.version))
    if hashlib.sha256(plaintext).hexdigest() != bid.digest:
        raise SealBroken("the digest differs")
    return json.loads(plaintext)


def seal_seed(settings: Settings, tender_id: int, seed: str) -> bytes:
    return _encrypt(settings, tender_id, seed.encode(), f"v1|tender:{tender_id}|seed".encode())


def unseal_seed(settings: Settings, tender, now: datetime | None = None) -> str:
    _opened(tender, now)
    return _decrypt(settings, tender.id, tender.draw_seed_sealed,
                    f"v1|tender:{tender.id}|seed".encode()).decode()
