"""Bounded images: formats allow-listed, sides/aspect/pixels refused from the header, shrink before pad."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from recommender.catalog.images import ImageLimits, ImageProblem, ImageTooLarge, decode_image
from recommender.encoders.image import square_thumbnail

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=25_000_000, max_side=10_000, max_aspect_ratio=20.0)
ROOT = Path(__file__).resolve().parents[2]


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` (1-bit grey) over one all-zero row stream: a bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = zlib.compress(row * min(height, 64), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would decode pixels: the refusal must come from the header alone."""
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"pixels of a {self.size} image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def psd_header() -> bytes:
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 8, 8, 8, 3) + b"\x00" * 64


@pytest.mark.parametrize("fmt", ["EPS", "TIFF", "BMP", "PSD"])
def test_formats_outside_the_allow_list_are_unprocessable(fmt: str) -> None:
    data = psd_header() if fmt == "PSD" else encoded(Image.new("RGB", (8, 8), (1, 2, 3)), fmt)
    with pytest.raises(ImageProblem, match="allowed format") as info:
        decode_image(data, LIMITS, "upload")
    assert not isinstance(info.value, ImageTooLarge)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    img = decode_image(encoded(Image.new("RGB", (16, 12), (200, 10, 10)), fmt), LIMITS)
    assert img.mode == "RGB" and img.size == (16, 12)


@pytest.mark.parametrize(("size", "needle"), [((1, 100_000), "side limit"), ((100_000, 1), "side limit"),
                                              ((1, 4000), "aspect ratio"), ((4000, 150), "aspect ratio")])
def test_strips_are_refused_from_the_header(size: tuple[int, int], needle: str, no_pixel_decoding: None) -> None:
    data = png_header_only(*size)
    assert len(data) < 2000
    with pytest.raises(ImageTooLarge, match=needle):
        decode_image(data, LIMITS, "image")


def test_real_1x100000_png_is_refused_too() -> None:
    data = encoded(Image.new("L", (1, 100_000), 0), "PNG")
    assert len(data) < 2000
    with pytest.raises(ImageTooLarge, match="side limit"):
        decode_image(data, LIMITS)


@pytest.mark.parametrize("side", [9000, 60_000])
def test_decompression_bomb_png_is_refused(side: int, no_pixel_decoding: None) -> None:
    limits = LIMITS if side < LIMITS.max_side else ImageLimits(max_side=100_000)
    with pytest.raises(ImageTooLarge, match=r"pixel|too large"):
        decode_image(png_header_only(side, side), limits)


def test_bytes_over_the_limit_are_too_large() -> None:
    with pytest.raises(ImageTooLarge, match="byte limit"):
        decode_image(b"\x89PNG" + b"\x00" * 2000, ImageLimits(max_bytes=1000))


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = decode_image(data, LIMITS)
    assert img.size == (8, 8) and img.getpixel((4, 4)) == (255, 0, 0)


def test_large_jpeg_is_decoded_scaled_down() -> None:
    data = encoded(Image.new("RGB", (4096, 3000), (90, 120, 200)), "JPEG", quality=80)
    img = decode_image(data, LIMITS)
    assert img.size == (2048, 1500)  # 1/2 keeps both sides ≥ decode_side (1024); 1/4 would not
    small = decode_image(encoded(Image.new("RGB", (640, 640), (90, 120, 200)), "JPEG"), LIMITS)
    assert small.size == (640, 640)  # normal photos decode at full size: their vectors do not change


def test_square_thumbnail_shrinks_then_pads() -> None:
    strip = Image.new("RGB", (50, 1000), (0, 0, 0))
    out = square_thumbnail(strip, 128)
    assert out.size == (128, 128)
    assert out.getpixel((0, 64)) == (255, 255, 255) and out.getpixel((64, 64)) == (0, 0, 0)
    assert out.getpixel((64, 0)) == (0, 0, 0)  # scaled to fit: the long side spans the square
    square = Image.new("RGB", (300, 300), (10, 20, 30))
    assert square_thumbnail(square, 128).tobytes() == square.resize((128, 128), Image.Resampling.BICUBIC,
                                                                    reducing_gap=3.0).tobytes()


PEAK_SCRIPT = """
import resource, sys
from PIL import Image
from recommender.encoders.image import square_thumbnail
strip = Image.new("RGB", (1, 30_000), (0, 0, 0))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = square_thumbnail(strip, 128)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out.size[0], out.size[1], (after - before) * 1024)
"""


def test_padding_a_strip_allocates_the_target_not_the_square_of_its_side() -> None:
    # Pillow allocates pixels outside Python's allocator (tracemalloc cannot see them): peak RSS, fresh process.
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
    width, height, grown = (int(v) for v in run.stdout.split())
    naive = 30_000 * 30_000 * 4  # the padded 30000² RGB square (3.6 GB) the old order built first
    assert (width, height) == (128, 128)
    assert grown < 64 * 1024 * 1024 < naive // 50
