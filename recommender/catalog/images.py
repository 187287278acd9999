"""Fetch and decode product images (local paths inside the catalog folder, or http(s) URLs).

Any failure is an ImageProblem with a reason; callers keep the product and drop only its image vector.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image, UnidentifiedImageError

from recommender.errors import RecommenderError


class ImageProblem(RecommenderError):
    """An image could not be fetched or decoded; the reason is shown to the user."""


class ImageTooLarge(ImageProblem):
    """An image is over a byte or pixel limit (an API answers 413, not 'not an image')."""


@dataclass(frozen=True)
class ImageLimits:
    """Bounds that keep one bad image from exhausting memory or time."""

    timeout_s: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000


def is_url(ref: str) -> bool:
    """True for http(s) image references."""
    return ref.lower().startswith(("http://", "https://"))


def read_image_bytes(ref: str, catalog_root: Path, limits: ImageLimits) -> bytes:
    """The raw bytes of an image reference, or ImageProblem saying why not."""
    if is_url(ref):
        return _download(ref, limits)
    root = catalog_root.resolve()
    path = (root / ref).resolve()
    if not path.is_relative_to(root):
        raise ImageProblem(f"image path {ref!r} points outside the catalog folder")
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageProblem(f"image {ref} is {size} bytes, over the {limits.max_bytes}-byte limit")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageProblem(f"image file not found: {ref}") from exc
    except IsADirectoryError as exc:
        raise ImageProblem(f"image path is a directory: {ref}") from exc
    except OSError as exc:
        raise ImageProblem(f"cannot read image {ref}: {exc.strerror or exc}") from exc


def _download(url: str, limits: ImageLimits) -> bytes:
    try:
        with requests.get(url, timeout=limits.timeout_s, stream=True) as resp:
            if resp.status_code != 200:
                raise ImageProblem(f"image URL {url} answered HTTP {resp.status_code}")
            chunks, total = [], 0
            for chunk in resp.iter_content(64 * 1024):
                total += len(chunk)
                if total > limits.max_bytes:
                    raise ImageProblem(f"image URL {url} is over the {limits.max_bytes}-byte limit")
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.RequestException as exc:
        raise ImageProblem(f"cannot download image {url}: {type(exc).__name__}") from exc


def decode_image(data: bytes, limits: ImageLimits, ref: str = "image") -> Image.Image:
    """Decode bytes into a fully loaded RGB image (white behind transparency)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > limits.max_pixels:
                raise ImageTooLarge(f"{ref} is {img.width}x{img.height} px, over the pixel limit")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{ref} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageProblem(f"{ref} is not a readable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"{ref} is corrupt or truncated: {exc}") from exc
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB copy of an image, compositing any alpha onto white (product shots sit on white)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
