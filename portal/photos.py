"""Photo evidence: bounded, decoded, re-encoded without EXIF (GPS, camera serials), stored by hash."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from portal.i18n import _

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "MPO"}


@dataclass
class StoredPhoto:
    path: str  # relative to the media directory
    width: int
    height: int
    size: int
    content_type: str = "image/jpeg"


class PhotoError(Exception):
    """Why an upload is not a photo we can keep; the message is meant for the uploader."""


def _reencode(data: bytes, max_bytes: int, max_pixels: int, max_side: int) -> bytes:
    if len(data) > max_bytes:
        raise PhotoError(_("The photo is too large."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise PhotoError(_("Send a JPEG, PNG, WebP or GIF photo."))
                if probe.width * probe.height > max_pixels:
                    raise PhotoError(_("The photo has too many pixels."))
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (max_side, max_side))
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGB")
                img.thumbnail((max_side, max_side))
                # Pillow writes some of what it read back out (a JPEG comment, for one), and
                # no exif= argument: the re-encoded file carries no metadata at all.
                img.info.clear()
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85, optimize=True)
                return out.getvalue()
    except PhotoError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, ValueError, SyntaxError) as exc:
        raise PhotoError(_("The file is not a photo we can read.")) from exc


async def store_photo(data: bytes, media_dir: Path, *, max_bytes: int, max_pixels: int,
                      max_side: int) -> StoredPhoto:
    jpeg = await asyncio.to_thread(_reencode, data, max_bytes, max_pixels, max_side)
    digest = hashlib.sha256(jpeg).hexdigest()
    rel = f"{digest[:2]}/{digest}.jpg"
    target = media_dir / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per writer: two processes may store the same photo at once.
        tmp = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(jpeg)
        tmp.replace(target)
    with Image.open(io.BytesIO(jpeg)) as img:
        width, height = img.size
    return StoredPhoto(path=rel, width=width, height=height, size=len(jpeg))
