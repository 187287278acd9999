"""Benchmark: text encoder candidates against today's (fp32) encoder, on the same texts, in one run.

Prints figures (it is not a test). The texts are built exactly as the vectorize job builds them
(``Product.text_for_embedding``) from the H&M catalog and from a generated catalog, plus a "long" set
(four H&M texts joined, ~250 tokens) where a length limit can matter. Each candidate encodes each set in
chunks of ``vectorize.chunk_size`` (one ``encode_batch`` call per chunk, as the job does). Candidates run
interleaved, ``--rounds`` times, and the median is reported, because the shared machine's load drifts.
Columns: products/s (wall), ratio to today's in the same run, CPU ms per text of this process (all threads;
n/a for the process pool), and mean/min cosine of each vector to today's vector of the same text.

    PYTHONPATH=. .venv/bin/python bench/text_encoding.py --texts 128 --rounds 2
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from recommender.catalog.reader import CatalogReader
from recommender.config import TextEncoderSettings
from recommender.encoders.text import SentenceTransformerEncoder
from recommender.synthetic.shop import generate_catalog

DEFAULT_THREADS = torch.get_num_threads()  # before any encoder loads (it sets its own count process-wide)
TODAY = TextEncoderSettings(precision="fp32", batch_size=64, max_seq_length=0, threads=0)  # before this change
NEW = TextEncoderSettings()


@dataclass(frozen=True)
class Candidate:
    """One configuration: encoder settings (``threads`` applied around each measure), or a process pool."""

    label: str
    settings: TextEncoderSettings
    processes: int = 0  # >0: that many single-thread worker processes share each chunk


CANDIDATES = [
    Candidate("today: fp32, batch 64, torch's threads", TODAY),
    Candidate("fp32, batch 16", replace(TODAY, batch_size=16)),
    Candidate("fp32, batch 64, max_seq_length 128", replace(TODAY, max_seq_length=128)),
    Candidate("fp32, batch 64, 1 thread", replace(TODAY, threads=1)),
    Candidate("int8 (dynamic, per channel), batch 16, 1 thread", replace(NEW, precision="int8")),
    Candidate("bf16, batch 64, torch's threads", replace(TODAY, precision="bf16")),
    Candidate("bf16, batch 16, torch's threads", replace(NEW, threads=0)),
    Candidate("bf16, batch 64, 1 thread", replace(NEW, batch_size=64)),
    Candidate("**bf16, batch 16, 1 thread (new default)**", NEW),
    Candidate("bf16, batch 16, 2 processes x 1 thread", NEW, processes=2),
    Candidate("bf16, batch 16, 1 thread, max_seq_length 128", replace(NEW, max_seq_length=128)),
]


@dataclass
class Runner:
    """A loaded candidate: its encoder in this process, or a pool of worker processes."""

    candidate: Candidate
    encoder: SentenceTransformerEncoder | None = None
    pool: ProcessPoolExecutor | None = None

    def start(self) -> Runner:
        c = self.candidate
        if c.processes:
            self.pool = ProcessPoolExecutor(c.processes, mp_context=get_context("spawn"), initializer=_worker_init,
                                            initargs=(c.settings,))
            list(self.pool.map(_worker_encode, [["warm up"]] * c.processes))
        else:
            self.encoder = SentenceTransformerEncoder(c.settings)
            self.encoder.encode_batch(["warm up"] * 8)
        return self

    def encode(self, texts: Sequence[str], chunk: int) -> tuple[np.ndarray, float, float | None]:
        """Vectors of ``texts`` in chunks; wall seconds and this process's CPU seconds (None for a pool)."""
        torch.set_num_threads(self.candidate.settings.threads or DEFAULT_THREADS)
        w0, c0 = time.perf_counter(), time.process_time()
        out = [self._chunk(list(texts[i:i + chunk])) for i in range(0, len(texts), chunk)]
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        return np.vstack(out), wall, (None if self.pool else cpu)

    def _chunk(self, texts: list[str]) -> np.ndarray:
        if self.pool is None:
            assert self.encoder is not None
            return self.encoder.encode_batch(texts)
        n = self.candidate.processes
        parts = [texts[i::n] for i in range(n)]  # strided: each worker gets a similar length mix
        vecs = list(self.pool.map(_worker_encode, parts))
        out = np.empty((len(texts), vecs[0].shape[1]), dtype=np.float32)
        for i, v in enumerate(vecs):
            out[i::n] = v
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


_WORKER: SentenceTransformerEncoder | None = None


def _worker_init(settings: TextEncoderSettings) -> None:
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = SentenceTransformerEncoder(settings)


def _worker_encode(texts: list[str]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER.encode_batch(texts)


def text_sets(hm: Path, n: int, work: Path) -> dict[str, list[str]]:
    """The texts each candidate encodes: H&M, a generated catalog, and long texts (4 H&M texts joined)."""
    rng = random.Random(0)
    hm_texts = [p.text_for_embedding() for p in CatalogReader(hm)]
    generated = work / "catalog"
    if not generated.exists():
        generate_catalog(generated, n_products=n, n_shoppers=20, n_events=50, seed=5, image_size=32, progress=False)
    long_texts = [". ".join(rng.sample(hm_texts, 4)) for _ in range(max(8, n // 4))]
    return {"H&M": rng.sample(hm_texts, min(n, len(hm_texts))),
            "generated": [p.text_for_embedding() for p in CatalogReader(generated)][:n], "long": long_texts}


def measure(runners: list[Runner], sets: dict[str, list[str]], rounds: int, chunk: int
            ) -> dict[tuple[str, str], tuple[list[float], list[float | None], np.ndarray]]:
    """Every candidate on every set, interleaved, ``rounds`` times: walls, CPU seconds, last vectors."""
    out: dict[tuple[str, str], tuple[list[float], list[float | None], np.ndarray]] = {}
    for r in range(rounds):
        for name, texts in sets.items():
            for runner in runners:
                vecs, wall, cpu = runner.encode(texts, chunk)
                walls, cpus, _ = out.get((runner.candidate.label, name), ([], [], vecs))
                out[(runner.candidate.label, name)] = ([*walls, wall], [*cpus, cpu], vecs)
            print(f"round {r + 1}/{rounds}: {name} done", flush=True)
    return out


def report(runners: list[Runner], sets: dict[str, list[str]], results: dict) -> None:  # type: ignore[type-arg]
    """One table per text set: rate, ratio to today's, CPU ms per text, cosine to today's vectors."""
    base_label = runners[0].candidate.label
    for name, texts in sets.items():
        base_walls, _, base_vecs = results[(base_label, name)]
        base_rate = len(texts) / statistics.median(base_walls)
        print(f"\n{name}: {len(texts)} texts")
        print("| candidate | products/s | ratio | CPU ms/text | cosine mean | cosine min |\n|---|---|---|---|---|---|")
        for runner in runners:
            walls, cpus, vecs = results[(runner.candidate.label, name)]
            rate = len(texts) / statistics.median(walls)
            cpu = "n/a" if cpus[0] is None else f"{1000 * statistics.median(c or 0.0 for c in cpus) / len(texts):.1f}"
            cos = (vecs * base_vecs).sum(axis=1)
            print(f"| {runner.candidate.label} | {rate:.1f} | {rate / base_rate:.2f}x | {cpu} | "
                  f"{cos.mean():.4f} | {cos.min():.4f} |")


def image_tower(catalog: Path, checkpoint: Path | None, n: int, rounds: int) -> None:
    """The image tower at torch's threads against one thread, fp32 and bf16 (bf16 is not a setting: a probe)."""
    import copy

    from recommender.catalog.images import ImageLimits, decode_image, read_image_bytes
    from recommender.config import ImageEncoderSettings
    from recommender.encoders.base import l2_normalize
    from recommender.encoders.image import OpenClipImageEncoder

    enc = OpenClipImageEncoder(ImageEncoderSettings(checkpoint=checkpoint, threads=0))
    limits = ImageLimits()
    products = [p for _, p in zip(range(n), (p for p in CatalogReader(catalog) if p.image), strict=False)]
    batch = [enc.preprocess(decode_image(read_image_bytes(p.image or "", catalog, limits), limits)) for p in products]
    enc.encode_prepared(batch[:8])  # loads the tower
    towers = {"fp32": enc._tower, "bf16": copy.deepcopy(enc._tower).to(torch.bfloat16)}
    results: dict[tuple[str, int], list[tuple[float, float, np.ndarray]]] = {}
    for _ in range(rounds):
        for (precision, tower), threads in [(t, th) for t in towers.items() for th in (DEFAULT_THREADS, 1)]:
            torch.set_num_threads(threads)
            w0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                out = np.vstack([l2_normalize(tower(torch.stack(batch[i:i + 32]).to(getattr(torch, {
                    "fp32": "float32", "bf16": "bfloat16"}[precision]))).float().numpy())
                    for i in range(0, len(batch), 32)])
            results.setdefault((precision, threads), []).append(
                (time.perf_counter() - w0, time.process_time() - c0, out))
    _, _, base = results[("fp32", DEFAULT_THREADS)][-1]
    base_rate = len(batch) / statistics.median(r[0] for r in results[("fp32", DEFAULT_THREADS)])
    print(f"\nimage tower {enc.identity}: {len(batch)} images of {catalog.name}, batches of 32")
    print("| tower | images/s | ratio | CPU ms/image | cosine mean / min |\n|---|---|---|---|---|")
    for (precision, threads), runs in results.items():
        rate = len(batch) / statistics.median(r[0] for r in runs)
        cos = (runs[-1][2] * base).sum(axis=1)
        print(f"| {precision}, {threads} thread(s) | {rate:.1f} | {rate / base_rate:.2f}x | "
              f"{1000 * statistics.median(r[1] for r in runs) / len(batch):.1f} | {cos.mean():.4f} / {cos.min():.4f} |")


def main() -> None:
    """Build the texts, load every candidate, measure interleaved, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hm", type=Path, default=Path("/work/shared/datasets/hm"), help="H&M catalog folder")
    ap.add_argument("--texts", type=int, default=256, help="texts per set (the long set gets a quarter)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=128, help="texts per encode_batch call (vectorize.chunk_size)")
    ap.add_argument("--only", default="", help="comma-separated candidate numbers (1 = today's, always run)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--image-catalog", type=Path, default=None, help="also measure the image tower on this catalog")
    ap.add_argument("--image-checkpoint", type=Path, default=None, help="its trained tower (default: untrained)")
    ap.add_argument("--images-only", action="store_true", help="skip the text candidates")
    args = ap.parse_args()
    if args.image_catalog is not None:
        image_tower(args.image_catalog, args.image_checkpoint, args.texts, args.rounds)
    if args.images_only:
        return
    picked = {int(i) for i in args.only.split(",") if i} | {1}
    candidates = [c for i, c in enumerate(CANDIDATES, 1) if not args.only or i in picked]
    sets = text_sets(args.hm, args.texts, args.workdir or Path(tempfile.mkdtemp(prefix="bench-text-")))
    print(f"torch {torch.__version__}, default threads {DEFAULT_THREADS}; "
          + ", ".join(f"{k} {len(v)} texts" for k, v in sets.items()), flush=True)
    runners = [Runner(c).start() for c in candidates]
    try:
        t0 = time.perf_counter()
        results = measure(runners, sets, args.rounds, args.chunk)
        report(runners, sets, results)
        print(f"\nmeasured {len(runners)} candidates x {len(sets)} sets x {args.rounds} rounds "
              f"in {time.perf_counter() - t0:.0f}s")
    finally:
        for runner in runners:
            runner.close()


if __name__ == "__main__":
    main()
