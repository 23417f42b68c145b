"""Test photos as phones take them: JPEGs whose EXIF tells the camera and where it stood."""

from __future__ import annotations

import io

from PIL import ExifTags, Image


def jpeg_with_gps(size: tuple[int, int] = (120, 80),
                  color: tuple[int, int, int] | str = (200, 40, 40),
                  make: str = "SecretCam") -> bytes:
    """A JPEG whose EXIF carries a camera make and a GPS position (People's Square)."""
    img = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 21.84)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (121.0, 29.0, 3.12)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def has_exif_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        return bool(img.getexif().get_ifd(ExifTags.IFD.GPSInfo))
