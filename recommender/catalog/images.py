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

from recommender.config import SearchSettings, VectorizeSettings
from recommender.errors import RecommenderError

# Formats decoded at all: PIL would otherwise try every plugin it has (EPS reaches Ghostscript, TIFF/PSD/BMP
# bring their own decoders and bombs). Names as PIL's Image.open(formats=...) knows them.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


class ImageProblem(RecommenderError):
    """An image could not be fetched or decoded; the reason is shown to the user."""


class ImageTooLarge(ImageProblem):
    """An image is over a byte, side, aspect-ratio or pixel limit (an API answers 413, not 'not an image')."""


@dataclass(frozen=True)
class ImageLimits:
    """Bounds that keep one bad image from exhausting memory or time."""

    timeout_s: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 10_000  # width and height each, read from the header before any pixel is decoded
    max_aspect_ratio: float = 20.0  # long side / short side: a 1×N strip is refused, not padded to N²
    # JPEGs decode at a scale of 1/2, 1/4 or 1/8 while both sides stay ≥ this (the tower wants ≤ 224 px)
    decode_side: int = 1024


def image_limits(settings: SearchSettings | VectorizeSettings) -> ImageLimits:
    """The ImageLimits a search query or a vectorize run applies (one mapping from the settings)."""
    return ImageLimits(timeout_s=getattr(settings, "image_timeout_s", ImageLimits.timeout_s),
                       max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels,
                       max_side=settings.max_image_side, max_aspect_ratio=settings.max_image_aspect_ratio)


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
    """Decode bytes into a fully loaded RGB image (white behind transparency), refusing anything unbounded.

    Format, sides, aspect ratio and pixel count are checked from the header, before any pixel is decoded;
    a GIF yields its first frame only; a large JPEG is decoded already scaled down (``decode_side``).
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{ref} is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            check_size(img.width, img.height, limits, ref)
            if img.format == "JPEG":
                img.draft(None, (limits.decode_side, limits.decode_side))
            img.load()  # a GIF loads frame 0 only: later frames are never read
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{ref} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageProblem(f"{ref} is not a readable image in an allowed format "
                           f"({', '.join(ALLOWED_FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageProblem(f"{ref} is corrupt or truncated: {exc}") from exc
    return to_rgb(img)


def check_size(width: int, height: int, limits: ImageLimits, ref: str = "image") -> None:
    """ImageTooLarge unless both sides, their ratio and the pixel count are within ``limits``."""
    if width < 1 or height < 1:
        raise ImageProblem(f"{ref} is {width}x{height} px: empty")
    if max(width, height) > limits.max_side:
        raise ImageTooLarge(f"{ref} is {width}x{height} px, over the {limits.max_side}-px side limit")
    if max(width, height) / min(width, height) > limits.max_aspect_ratio:
        raise ImageTooLarge(f"{ref} is {width}x{height} px, over the {limits.max_aspect_ratio:g}:1 "
                            f"aspect ratio limit")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"{ref} is {width}x{height} px, over the {limits.max_pixels}-pixel limit")


def to_rgb(img: Image.Image) -> Image.Image:
    """The image in RGB (itself when already RGB), compositing any alpha onto white (product shots sit on white)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        # Pasting through the alpha onto an RGB canvas gives alpha_composite's pixels with two full-size
        # buffers instead of five (a 5000² RGBA PNG: ~200 MB, not ~500 MB).
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)
        return background
    return img if img.mode == "RGB" else img.convert("RGB")
