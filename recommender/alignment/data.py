"""Training pairs from a catalog folder: each product's image (decoded once, kept as a small uint8 tensor)
and the frozen text encoder's vectors of its words (computed once)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from recommender.catalog.images import ImageLimits, ImageProblem, decode_image, read_image_bytes
from recommender.catalog.reader import CatalogReader
from recommender.domain import Product
from recommender.encoders.base import Encoder
from recommender.encoders.image import square_thumbnail


@dataclass(frozen=True)
class PairSet:
    """Aligned rows: product ``i`` has image ``images[i]`` and text vectors ``texts[i]`` / ``titles[i]``.

    ``texts`` embed the product's full text (title, category, colour, …: what its stored text vector is);
    ``titles`` embed the title alone (what a shopper types). ``attributes`` holds each product's visible
    attributes (category, colour; "" when unknown) as extra training labels. Products without a usable image
    are left out and listed in ``problems``.
    """

    product_ids: tuple[str, ...]
    titles_text: tuple[str, ...]
    images: torch.Tensor  # uint8, N×3×S×S
    texts: torch.Tensor  # float32, N×D, unit rows
    titles: torch.Tensor  # float32, N×D, unit rows
    data_hash: str
    problems: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.product_ids)

    def subset(self, rows: Sequence[int]) -> PairSet:
        """The pairs at ``rows``, in that order (same data hash: it names the source catalog)."""
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        return PairSet(tuple(self.product_ids[i] for i in rows), tuple(self.titles_text[i] for i in rows),
                       self.images[idx], self.texts[idx], self.titles[idx], self.data_hash, self.problems,
                       tuple(self.attributes[i] for i in rows) if self.attributes else ())


def load_pairs(folder: Path, text_encoder: Encoder[str], image_size: int, *, only: Collection[str] | None = None,
               limits: ImageLimits | None = None, threads: int = 2, progress: bool = True) -> PairSet:
    """Read the catalog, decode every image once at ``image_size`` px, embed texts once."""
    products = [p for p in CatalogReader(folder) if p.image and (only is None or p.product_id in only)]
    limits = limits or ImageLimits()
    bar = tqdm(total=len(products), desc="decode images", unit="img", disable=not progress)

    def load(product: Product) -> tuple[np.ndarray | None, str, str]:
        try:
            data = read_image_bytes(product.image or "", folder, limits)
            image = decode_image(data, limits, product.image or "image")
            return np.asarray(square_thumbnail(image, image_size)), hashlib.sha256(data).hexdigest(), ""
        except ImageProblem as exc:
            return None, "", str(exc)
        finally:
            bar.update(1)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        decoded = list(pool.map(load, products))
    bar.close()
    kept = [(p, arr, digest) for p, (arr, digest, _) in zip(products, decoded, strict=True) if arr is not None]
    problems = tuple((p.product_id, why) for p, (arr, _, why) in zip(products, decoded, strict=True) if arr is None)
    return _assemble(kept, problems, text_encoder, image_size)


def _assemble(kept: list[tuple[Product, np.ndarray, str]], problems: tuple[tuple[str, str], ...],
              text_encoder: Encoder[str], image_size: int) -> PairSet:
    h = hashlib.sha256(f"{text_encoder.identity}|{image_size}".encode())
    for product, _, digest in kept:
        h.update(f"{product.product_id}\x1f{product.text_for_embedding()}\x1f{digest}\x1e".encode())
    if kept:
        images = torch.from_numpy(np.stack([arr for _, arr, _ in kept])).permute(0, 3, 1, 2).contiguous()
    else:
        images = torch.zeros((0, 3, image_size, image_size), dtype=torch.uint8)
    texts = text_encoder.encode_batch([p.text_for_embedding() for p, _, _ in kept])
    titles = text_encoder.encode_batch([p.title for p, _, _ in kept])
    return PairSet(tuple(p.product_id for p, _, _ in kept), tuple(p.title for p, _, _ in kept), images,
                   torch.from_numpy(texts), torch.from_numpy(titles), h.hexdigest()[:16], problems,
                   tuple(visible_attributes(p) for p, _, _ in kept))


ATTRIBUTES = ("category", "colour")


def visible_attributes(product: Product) -> tuple[str, str]:
    """The attributes a photo shows, in ``ATTRIBUTES`` order ("" when the catalog does not say)."""
    return (product.category_path, product.color)


def split_rows(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of ``range(n)`` into (kept, held out) with ``round(n * fraction)`` rows held out."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    cut = min(n, max(0, round(n * fraction)))
    return sorted(order[cut:]), sorted(order[:cut])
