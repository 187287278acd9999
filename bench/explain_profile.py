"""Benchmark: CPU of a page's template explanations (evidence, claims, sentences), in-process, on captured pages.

Prints figures (it is not a test). On the data and store of an earlier `bench/api_load.py --workdir DIR` run (its
refreshed release), it serves pages through Flask's test client as `bench/api_profile.py` does (anonymous,
personalised, "for you"), records what each page's explanations were built from (``list_evidence``'s arguments and
the co-occurrence counts it read), then times ``list_evidence`` and the template sentence of every item on those
inputs alone: the least CPU of several passes, so other load on the machine moves it little. Run from two trees
(``PYTHONPATH``), alternated, to compare them; a second output file is a digest of every evidence hash and sentence.

    PYTHONPATH=$PWD .venv/bin/python bench/explain_profile.py --workdir /tmp/api
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from api_load import REPO, bench_weaviate, job_env, page_routes, shoppers
from threadpoolctl import threadpool_limits

import api.explanation as explanation
from recommender.catalog.reader import CatalogReader
from recommender.config import load_settings
from recommender.domain import ItemView, RankedItem
from recommender.explain.evidence import Evidence, TemplateExplainer, list_evidence

Page = tuple[ItemView | None, list[RankedItem], dict[str, ItemView], dict[tuple[str, str], Any], list[ItemView]]


def capture(pages: list[Page]) -> None:
    """Record each page's ``list_evidence`` inputs (the views it reads, the counts it asked for) into ``pages``."""
    def recording(anchor: ItemView | None, ranked: Sequence[RankedItem], views: Mapping[str, ItemView],
                  co_counts: Callable[[str, str], Mapping[str, float]], history: Sequence[ItemView] = ()) -> Any:
        asked: dict[tuple[str, str], Any] = {}

        def counts(a: str, b: str) -> Mapping[str, float]:
            asked[(a, b)] = co_counts(a, b)
            return asked[(a, b)]

        out = list_evidence(anchor, ranked, views, counts, history)
        shown = {r.product_id: views[r.product_id] for r in ranked if r.product_id in views}
        pages.append((anchor, list(ranked), shown, asked, list(history)))
        return out

    explanation.list_evidence = recording


def evidence_of(page: Page) -> list[Evidence | None]:
    """A captured page's evidence, built as the API builds it."""
    anchor, ranked, views, asked, history = page
    return list_evidence(anchor, ranked, views, lambda a, b: asked[(a, b)], history)


def explain_page(page: Page, template: TemplateExplainer) -> list[str | None]:
    """The template sentence of each item of a captured page."""
    return [template.explain(e).text if e is not None else None for e in evidence_of(page)]


def least_cpu(pages: list[Page], passes: int) -> float:
    """The least CPU (µs) per page of ``passes`` passes over all pages."""
    template, best = TemplateExplainer(), float("inf")
    for _ in range(passes):
        started = time.process_time()
        for page in pages:
            explain_page(page, template)
        best = min(best, time.process_time() - started)
    return best / len(pages) * 1e6


def main() -> None:
    """Serve and capture pages per route, then time their explanations and print µs per page."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True, help="the --workdir of an earlier bench/api_load.py run")
    ap.add_argument("--catalog", type=Path, default=REPO / "fixtures")
    ap.add_argument("--pages", type=int, default=200, help="captured pages per route")
    ap.add_argument("--passes", type=int, default=9, help="timed passes over the captured pages")
    ap.add_argument("--digest", type=Path, default=None, help="write each sentence and evidence hash here")
    args = ap.parse_args()
    captured: dict[str, list[Page]] = {}
    with bench_weaviate(load_settings(), args.workdir / "weaviate", "BenchApi") as settings:
        os.environ.update(job_env(settings, args.catalog, args.workdir / "data", 64))
        from api.app import create_app

        threadpool_limits(1, "blas")
        app = create_app(load_settings())
        client, rng = app.test_client(), random.Random(0)
        ids, users = [p.product_id for p in CatalogReader(args.catalog)], shoppers(args.catalog)
        routes = page_routes(rng, ids, users)
        try:
            for name, make in routes.items():
                capture(captured.setdefault(name, []))
                for _ in range(args.pages):
                    assert client.get(make()).status_code == 200
        finally:
            explanation.list_evidence = list_evidence
            app.extensions["recsys"].close()
    gc.collect()
    gc.freeze()  # as a worker freezes its warm heap: the captured pages are not scanned again and again
    for name, pages in captured.items():
        print(f"{name}: {least_cpu(pages, args.passes):.1f} µs CPU per page ({len(pages)} pages of 10 items)")
    if args.digest is not None:
        write_digest(args.digest, [p for pages in captured.values() for p in pages])


def write_digest(path: Path, pages: list[Page]) -> None:
    """Each item's sentence and evidence hash, one line per page, to compare two trees."""
    template = TemplateExplainer()
    with path.open("w") as out:
        for page in pages:
            line = " ".join(f"{e.evidence_hash}:{template.explain(e).text}" if e else "-" for e in evidence_of(page))
            out.write(hashlib.sha256(line.encode()).hexdigest()[:16] + "\n")


if __name__ == "__main__":
    main()
