"""Uploaded images lose their metadata (contract: Privacy, Media): the shared helper
:func:`solomo.core.images.strip_metadata`, ready for the media upload route."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from solomo.core.errors import ApiError
from solomo.core.images import MAX_PIXELS, strip_metadata
from tests.media.helpers import SECRET, exif_with_gps


def picture(mode: str = "RGB", size: tuple[int, int] = (40, 20)) -> Image.Image:
    img = Image.new(mode, size)
    for x in range(size[0]):
        for y in range(size[1]):
            img.putpixel((x, y), (x * 6, y * 12, 90, 255)[: len(mode)] if mode != "L" else x * 6)
    return img


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def assert_clean(data: bytes, fmt: str) -> Image.Image:
    assert SECRET.encode() not in data and b"PhoneCo" not in data
    img = Image.open(io.BytesIO(data))
    assert img.format == fmt
    assert not img.getexif(), dict(img.getexif())
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Location"} & set(img.info), img.info
    return img


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_exif_and_gps_are_gone_and_the_picture_kept(fmt):
    original = picture()
    xmp = {"xmp": f"<x>{SECRET}</x>".encode()} if fmt != "PNG" else {}
    data = encoded(original, fmt, exif=exif_with_gps(), **xmp)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input has a position
    clean = assert_clean(strip_metadata(data), fmt)
    assert clean.size == original.size
    if fmt == "PNG":  # lossless: the very same pixels
        assert clean.convert("RGB").tobytes() == original.tobytes()


def test_orientation_is_applied_before_it_is_dropped():
    data = encoded(picture(), "JPEG", exif=exif_with_gps(orientation=6))  # "rotate 90° clockwise to view"
    clean = assert_clean(strip_metadata(data), "JPEG")
    assert clean.size == (20, 40)


def test_png_text_chunks_and_gif_comments_are_gone():
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", SECRET)
    info.add_itxt("Comment", SECRET)
    assert_clean(strip_metadata(encoded(picture("RGBA"), "PNG", pnginfo=info)), "PNG")
    frames = [picture(), picture().rotate(90)]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], comment=SECRET.encode())
    clean = assert_clean(strip_metadata(gif), "GIF")
    assert getattr(clean, "n_frames", 1) == 1


def test_unsupported_corrupt_and_huge_images_are_refused():
    def refused(data: bytes) -> tuple[int, str]:
        with pytest.raises(ApiError) as caught:
            strip_metadata(data)
        return caught.value.status, caught.value.code

    assert refused(b"not an image at all") == (415, "unsupported_media_type")
    assert refused(encoded(picture(), "BMP")) == (415, "unsupported_media_type")
    jpeg = encoded(picture(), "JPEG")
    assert refused(jpeg[: len(jpeg) // 2]) == (422, "invalid_image")
    side = int(MAX_PIXELS ** 0.5) + 10
    bomb = encoded(Image.new("L", (side, side)), "PNG")  # small file, too many pixels
    assert len(bomb) < 200_000
    assert refused(bomb) == (422, "invalid_image")
