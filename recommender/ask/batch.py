"""Questions in bulk: a JSONL file of questions → a JSONL file of answers, one line each, same ``id``.

Reader → mapper → writer. Each input line is bounded and checked; a bad line is reported (file, line, reason) and
answered with an ``error`` object under its ``id`` (when it has one), never stopping the run or losing the lines
around it. Photos are read from paths relative to the questions file (or ``image_root``), bounded like uploads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from recommender.ask.model import AskRequest, AskResult
from recommender.ask.serialize import ImageUrl, conversation_from_json, result_json
from recommender.catalog.images import ImageLimits, ImageProblem, decode_image
from recommender.errors import RecommenderError

MAX_LINE_BYTES = 64 * 1024
MAX_LINES = 100_000
KEYS = {"id", "question", "image", "product_id", "k", "conversation"}


@dataclass
class BatchSummary:
    """Counts and timings of one batch run."""

    read: int = 0
    answered: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary printed at the end."""
        times = " ".join(f"{k}={v:.2f}s" for k, v in self.seconds.items())
        return f"ask batch: read={self.read} answered={self.answered} failed={self.failed} | {times}"


class BadLine(RecommenderError):
    """A questions line that cannot be asked; the message says why."""


def parse_line(raw: str, root: Path, limits: ImageLimits) -> tuple[str, AskRequest]:
    """The id and request of one JSONL line; raises BadLine naming the problem."""
    if len(raw.encode("utf-8", "replace")) > MAX_LINE_BYTES:
        raise BadLine(f"line is over {MAX_LINE_BYTES} bytes")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadLine(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadLine("not a JSON object")
    qid = obj.get("id")
    if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
        raise BadLine("id must be a non-empty string or integer")
    unknown = sorted(set(obj) - KEYS)
    if unknown:
        raise BadLine(f"unknown field {unknown[0]!r}")
    question, pid, k = obj.get("question", ""), obj.get("product_id"), obj.get("k", 5)
    if not isinstance(question, str) or (pid is not None and not isinstance(pid, str)):
        raise BadLine("question and product_id must be strings")
    if isinstance(k, bool) or not isinstance(k, int):
        raise BadLine("k must be an integer")
    image = _image(obj.get("image"), root, limits)
    try:
        conversation = conversation_from_json(obj["conversation"]) if obj.get("conversation") else None
    except ValueError as exc:
        raise BadLine(str(exc)) from exc
    return str(qid), AskRequest(question, image, pid, conversation, k)


def _image(ref: Any, root: Path, limits: ImageLimits) -> Any:
    if ref is None:
        return None
    if not isinstance(ref, str):
        raise BadLine("image must be a path")
    path = (root / ref).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BadLine(f"image {ref!r} points outside {root}")
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
        return decode_image(data, limits, ref)
    except OSError as exc:
        raise BadLine(f"cannot read image {ref!r}: {exc.strerror or exc}") from exc
    except ImageProblem as exc:
        raise BadLine(f"image {ref!r}: {exc}") from exc


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, start=1):
            if number > MAX_LINES:
                raise BadLine(f"{path}: more than {MAX_LINES} lines")
            if raw.strip():
                yield number, raw


def answer_file(ask: Callable[[AskRequest], AskResult], questions: Path, out: Path, image_url: ImageUrl,
                limits: ImageLimits, image_root: Path | None = None, progress: bool = True) -> BatchSummary:
    """Answer every question of ``questions`` into ``out`` (written aside, then renamed into place)."""
    summary = BatchSummary()
    root = image_root or questions.parent
    started = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("w", encoding="utf-8") as sink:
        for number, raw in tqdm(_lines(questions), desc="ask", unit="q", disable=not progress):
            summary.read += 1
            sink.write(json.dumps(_answer(ask, raw, number, questions, root, limits, image_url, summary),
                                  ensure_ascii=False, allow_nan=False) + "\n")
    partial.replace(out)
    summary.seconds["total"] = time.perf_counter() - started
    return summary


def _answer(ask: Callable[[AskRequest], AskResult], raw: str, number: int, path: Path, root: Path,
            limits: ImageLimits, image_url: ImageUrl, summary: BatchSummary) -> dict[str, Any]:
    qid: str | None = None
    try:
        qid, request = parse_line(raw, root, limits)
        body = {"id": qid, **result_json(ask(request), image_url)}
        summary.answered += 1
        return body
    except RecommenderError as exc:  # a bad line or a bad question: reported, the run goes on
        summary.failed += 1
        summary.problems.append(f"{path}:{number}: {exc}")
        return {"id": qid if qid is not None else _raw_id(raw), "error": {"line": number, "message": str(exc)}}


def _raw_id(raw: str) -> Any:
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    return obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str | int) else None
