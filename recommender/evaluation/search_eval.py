"""Cross-modal search quality on a catalog: each product's title finds its own image (text→image), and each
image finds its own title (image→text). Pure functions over vectors, plus an HTML report of examples."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from recommender.catalog.images import ImageLimits, ImageProblem, decode_image, read_image_bytes
from recommender.catalog.reader import CatalogReader
from recommender.domain import Product
from recommender.encoders.base import Encoder
from recommender.encoders.hubness import HubnessCorrection
from recommender.errors import ConfigError
from recommender.evaluation.metrics import chance, own_item_figures, ranked_rows

if TYPE_CHECKING:
    from recommender.encoders.image import OpenClipImageEncoder


def thumbnail_data_uri(image: Image.Image, size: int = 72) -> str:
    """A small JPEG of the image as a ``data:`` URI, so the report is one self-contained file."""
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def html_report(title: str, metrics: dict[str, object], examples: Sequence[tuple[str, Sequence[tuple[str, bool]]]]
                ) -> str:
    """The report page: the figures as a table, then one row per example query with its top images
    (``(data URI, is the right product)``), the right one outlined."""
    rows = []
    for name in ("text_to_image", "text_to_image_uncorrected", "image_to_text", "chance"):
        figures = metrics.get(name)
        if isinstance(figures, dict):
            cells = "".join(f"<td>{float(v):.3f}</td>" for v in figures.values())
            rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    columns = metrics.get("chance")
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in columns) if isinstance(columns, dict) else ""
    grid = []
    for query, hits in examples:
        imgs = "".join(f'<img src="{uri}" class="{"hit" if ok else ""}" alt="">' for uri, ok in hits)
        grid.append(f"<div class=q><p>{html.escape(query)}</p>{imgs}</div>")
    info = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in metrics.items()
                   if not isinstance(v, dict | list))
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:.2em .6em;"
            "border:1px solid #ccc}img{width:72px;height:72px;object-fit:contain;margin:2px;border:3px solid #fff}"
            "img.hit{border-color:#1a7f37}.q p{margin:.6em 0 .2em}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><ul>{info}</ul><table><tr><th></th>{head}</tr>{''.join(rows)}</table>"
            f"<h2>Examples: title → top images (the product's own image outlined)</h2>{''.join(grid)}</body></html>")


def pick_examples(n: int, count: int = 12) -> list[int]:
    """Evenly spread row indices for the report's examples (deterministic)."""
    if n <= 0:
        return []
    step = max(1, math.floor(n / count))
    return list(range(0, n, step))[:count]


@dataclass(frozen=True)
class SearchEvaluation:
    """Figures (``metrics``: stable JSON keys) and the self-contained HTML report of one evaluation."""

    metrics: dict[str, object]
    report_html: str


def evaluate_catalog(folder: Path, text_encoder: Encoder[str], image_encoder: Encoder[Image.Image], *,
                     only: Collection[str] | None = None, limits: ImageLimits | None = None, batch_size: int = 64,
                     hubness: HubnessCorrection | None = None, progress: bool = True) -> SearchEvaluation:
    """Encode a catalog folder in memory (titles and images; products without a readable image are left
    out and counted) and measure title→own image and image→own title retrieval among those products.

    With ``hubness`` text→image is ranked as search ranks it (cosine minus each image's penalty), and the
    uncorrected figures are reported beside it as ``text_to_image_uncorrected``."""
    limits = limits or ImageLimits()
    products = [p for p in CatalogReader(folder) if p.image and (only is None or p.product_id in only)]
    kept: list[Product] = []
    chunks: list[np.ndarray] = []
    bar = tqdm(total=len(products), desc="encode images", unit="img", disable=not progress)
    for start in range(0, len(products), batch_size):
        batch, images = [], []
        for product in products[start:start + batch_size]:
            image = _try_image(folder, product, limits)
            if image is not None:
                batch.append(product)
                images.append(image)
        if images:
            chunks.append(image_encoder.encode_batch(images))
            kept.extend(batch)
        bar.update(len(products[start:start + batch_size]))
    bar.close()
    if not kept:
        raise ValueError(f"{folder}: no product with a readable image to evaluate")
    image_vecs = np.concatenate(chunks)
    title_vecs = text_encoder.encode_batch([p.title for p in kept])
    penalty = hubness.penalty(image_vecs) if hubness is not None else None
    t2i = own_item_figures(title_vecs, image_vecs, penalty=penalty)
    i2t = own_item_figures(image_vecs, title_vecs)
    metrics: dict[str, object] = {
        "catalog": str(folder), "products": len(kept), "without_image": len(products) - len(kept),
        "text_encoder": text_encoder.identity, "image_encoder": image_encoder.identity,
        "image_encoder_untrained": bool(getattr(image_encoder, "is_untrained", False)),
        "text_to_image": t2i.as_dict(), "image_to_text": i2t.as_dict(), "chance": chance(len(kept)),
        "hubness": hubness.manifest() if hubness is not None else None}
    if penalty is not None:
        metrics["text_to_image_uncorrected"] = own_item_figures(title_vecs, image_vecs).as_dict()
    examples = _examples(folder, kept, title_vecs, image_vecs, penalty, limits)
    return SearchEvaluation(metrics, html_report(f"Search evaluation: {folder.name}", metrics, examples))


def _try_image(folder: Path, product: Product, limits: ImageLimits) -> Image.Image | None:
    try:
        return decode_image(read_image_bytes(product.image or "", folder, limits), limits, product.image or "image")
    except ImageProblem:
        return None


def _examples(folder: Path, products: Sequence[Product], title_vecs: np.ndarray, image_vecs: np.ndarray,
              penalty: np.ndarray | None, limits: ImageLimits, top: int = 5
              ) -> list[tuple[str, list[tuple[str, bool]]]]:
    rows = pick_examples(len(products))
    order = ranked_rows(title_vecs[rows], image_vecs, penalty)[:, :top]
    out = []
    for i, ranked in zip(rows, order, strict=True):
        hits = []
        for j in ranked.tolist():
            image = _try_image(folder, products[j], limits)
            uri = thumbnail_data_uri(image) if image is not None else ""
            hits.append((uri, j == i))
        out.append((products[i].title, hits))
    return out


@dataclass(frozen=True)
class SearchEvalOptions:
    """What `recsys evaluate-search` measures, and where it writes."""

    catalog: Path
    out: Path  # folder for metrics.json and report.html
    untrained: bool = False  # the checkpoint's architecture at random init (the baseline training must beat)
    products_from: Path | None = None  # a manifest.json: evaluate only its held-out products
    exclude_trained: bool = False  # with the checkpoint in use: evaluate only the products its manifest held out
    progress: bool = True


def run_search_evaluation(options: SearchEvalOptions, text_encoder: Encoder[str], image_encoder: OpenClipImageEncoder,
                          untrained: Callable[[Path | None], OpenClipImageEncoder], limits: ImageLimits,
                          batch_size: int) -> dict[str, object]:
    """Evaluate the image encoder (or, ``options.untrained``, ``untrained(its checkpoint)``) on the catalog, write
    metrics.json and report.html to ``options.out``; the metrics."""
    image_encoder.check_text_encoder(text_encoder.identity)
    checkpoint = image_encoder.checkpoint
    encoder = untrained(checkpoint) if options.untrained else image_encoder
    source = options.products_from or (checkpoint if options.exclude_trained else None)
    if options.exclude_trained and checkpoint is None:
        raise ConfigError("--exclude-trained needs a trained checkpoint (none configured, no current one)")
    only = held_out_ids(source) if source is not None else None
    result = evaluate_catalog(options.catalog, text_encoder, encoder, only=only, limits=limits, batch_size=batch_size,
                              hubness=encoder.hubness, progress=options.progress)
    metrics = {**result.metrics, "products_from": str(source) if source else None}
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (options.out / "report.html").write_text(result.report_html, encoding="utf-8")
    return metrics


def held_out_ids(manifest_path: Path) -> set[str]:
    """Product ids a training manifest lists as held out (never trained on)."""
    from recommender.encoders.checkpoint import checkpoint_dir  # imports torch: only when asked

    file = checkpoint_dir(manifest_path) / "manifest.json" if manifest_path.is_dir() else manifest_path
    try:
        ids = json.loads(file.read_text(encoding="utf-8"))["data"]["holdout_product_ids"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file}: not a training manifest with data.holdout_product_ids ({exc})") from exc
    if not ids:
        raise ConfigError(f"{file}: the training held out no products (train with --holdout-fraction)")
    return {str(i) for i in ids}
