"""Pictures made with Pillow for the media tests (nothing downloaded), and the upload call."""

from __future__ import annotations

import io
from typing import Any

from PIL import ExifTags, Image

from tests.support import Account

SECRET = "secret-serial-4711"
GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 14.0, 3.5),
       ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (121.0, 28.0, 9.25)}


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.BodySerialNumber] = SECRET
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return exif


def picture(size: tuple[int, int] = (600, 300), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation shows in the pixels."""
    img = Image.new(mode, size, (220, 30, 30, 255)[: len(mode)])
    img.paste((30, 30, 220, 255)[: len(mode)], (size[0] // 2, 0, size[0], size[1]))
    return img


def encoded(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg_with_gps(orientation: int = 1, size: tuple[int, int] = (600, 300)) -> bytes:
    return encoded(picture(size), "JPEG", exif=exif_with_gps(orientation), quality=90)


async def upload(client: Any, account: Account, data: bytes, name: str = "photo.jpg",
                 ctype: str = "image/jpeg") -> Any:
    return await client.post("/v1/media", files={"file": (name, data, ctype)}, headers=account.headers)


async def uploaded(client: Any, account: Account, data: bytes | None = None) -> dict[str, Any]:
    resp = await upload(client, account, data if data is not None else jpeg_with_gps())
    assert resp.status_code == 201, resp.text
    return resp.json()


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def no_metadata(data: bytes) -> Image.Image:
    """Asserts the served bytes carry no EXIF, GPS, XMP or the camera's strings."""
    assert SECRET.encode() not in data and b"PhoneCo" not in data and b"Exif\x00\x00" not in data
    img = opened(data)
    assert not img.getexif(), dict(img.getexif())
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment"} & set(img.info), img.info
    return img
