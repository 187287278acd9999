"""Image fetching and decoding: every failure is an ImageProblem with a reason, never a crash."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from recommender.catalog.images import ImageLimits, ImageProblem, decode_image, is_url, read_image_bytes

LIMITS = ImageLimits(timeout_s=2.0, max_bytes=50_000, max_pixels=1_000_000)


def png_bytes(size: tuple[int, int] = (8, 8), mode: str = "RGB", color: object = (255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")  # type: ignore[arg-type]
    return buf.getvalue()


def test_local_path_read_and_decode(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(png_bytes())
    data = read_image_bytes("images/a.png", tmp_path, LIMITS)
    img = decode_image(data, LIMITS)
    assert img.mode == "RGB" and img.size == (8, 8) and img.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("ref,needle", [
    ("images/missing.png", "not found"),
    ("../outside.png", "outside the catalog"),
    ("/etc/passwd", "outside the catalog"),
    ("images", "directory"),
])
def test_bad_local_references(tmp_path: Path, ref: str, needle: str) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(ImageProblem, match=needle):
        read_image_bytes(ref, tmp_path, LIMITS)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"\0" * (LIMITS.max_bytes + 1))
    with pytest.raises(ImageProblem, match="limit"):
        read_image_bytes("big.bin", tmp_path, LIMITS)


def test_corrupt_truncated_and_huge_images() -> None:
    good = png_bytes((64, 64))
    with pytest.raises(ImageProblem):
        decode_image(b"not an image", LIMITS)
    with pytest.raises(ImageProblem):
        decode_image(good[: len(good) // 2], LIMITS)
    with pytest.raises(ImageProblem, match="pixel limit"):
        decode_image(png_bytes((1200, 1000)), LIMITS)


def test_transparency_is_composited_on_white() -> None:
    img = decode_image(png_bytes((4, 4), "RGBA", (0, 0, 0, 0)), LIMITS)
    assert img.getpixel((0, 0)) == (255, 255, 255)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ok.png":
            body = png_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big.png":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"\0" * (LIMITS.max_bytes + 10))
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_urls_download_with_limits(http_base: str, tmp_path: Path) -> None:
    assert is_url(f"{http_base}/ok.png") and not is_url("images/a.png")
    assert decode_image(read_image_bytes(f"{http_base}/ok.png", tmp_path, LIMITS), LIMITS).size == (8, 8)
    with pytest.raises(ImageProblem, match="HTTP 404"):
        read_image_bytes(f"{http_base}/missing.png", tmp_path, LIMITS)
    with pytest.raises(ImageProblem, match="limit"):
        read_image_bytes(f"{http_base}/big.png", tmp_path, LIMITS)


def test_unreachable_url_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    from recommender.store.ports import free_port

    with pytest.raises(ImageProblem, match="cannot download"):
        read_image_bytes(f"http://127.0.0.1:{free_port()}/x.png", tmp_path, LIMITS)
