"""The evaluation's question record (a shopper's words plus the gold answer) and its bounded JSONL file.

Gold constraints are the ask contract's own ``Constraint``s, so the evaluation scores them with ``satisfies``.
A question file is read line by line with hard bounds; a bad line is reported as ``file:line: reason`` and
skipped, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recommender.ask.model import Constraint
from recommender.ask.serialize import constraint_from_json as parse_constraint
from recommender.ask.serialize import constraint_json as constraint_to_json

KINDS = (
    "attribute", "combined", "negation", "availability_yes", "availability_no", "unanswerable", "price", "photo",
    "title", "injection",
)
MAX_LINE_BYTES = 16 * 1024
MAX_LINES = 100_000
_QUESTION_KEYS = {"id", "question", "kind", "image", "product_id", "constraints", "answerable", "available",
                  "target", "canary"}


@dataclass(frozen=True)
class Question:
    """One evaluation question and its gold: constraints every right product meets, whether the catalog can
    answer it, whether matching products are in stock (availability kinds only), the exact product wanted
    (title/injection kinds) and the canary an injected description tries to make the answer say."""

    id: str
    question: str
    kind: str
    image: str | None = None
    product_id: str | None = None
    constraints: tuple[Constraint, ...] = ()
    answerable: bool = True
    available: bool | None = None
    target: str | None = None
    canary: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("empty question id")
        if self.kind not in KINDS:
            raise ValueError(f"unknown question kind {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        """The JSONL form (constraints as ``Constraint.to_json()`` without the derived ``label``)."""
        return {"id": self.id, "question": self.question, "kind": self.kind, "image": self.image,
                "product_id": self.product_id, "constraints": [constraint_to_json(c) for c in self.constraints],
                "answerable": self.answerable, "available": self.available, "target": self.target,
                "canary": self.canary}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Question:
        """Validate a decoded JSON object into a Question (ValueError says what is wrong)."""
        extra = set(data) - _QUESTION_KEYS
        if extra:
            raise ValueError(f"unknown key(s) {', '.join(sorted(extra))}")
        constraints = data.get("constraints") or []
        if not isinstance(constraints, list):
            raise ValueError("constraints must be a list")
        available = data.get("available")
        if available is not None and not isinstance(available, bool):
            raise ValueError("available must be true, false or null")
        if not isinstance(data.get("answerable", True), bool):
            raise ValueError("answerable must be true or false")
        return cls(
            id=_string(data, "id") or "", question=_string(data, "question") or "", kind=_string(data, "kind") or "",
            image=_string(data, "image"), product_id=_string(data, "product_id"),
            constraints=tuple(constraint_from_json(c) for c in constraints),
            answerable=data.get("answerable", True), available=available, target=_string(data, "target"),
            canary=_string(data, "canary"))


def _string(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def constraint_from_json(data: Any) -> Constraint:
    """Rebuild a gold Constraint from its JSON form (the one parser the API's conversation state uses too)."""
    return parse_constraint(data, "constraint")


def write_questions(path: Path, questions: Iterable[Question]) -> Path:
    """Write one JSON object per line, atomically (a half-written file never replaces a good one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class QuestionLoad:
    """The questions read from a file and one ``file:line: reason`` string per line that was skipped."""

    questions: tuple[Question, ...]
    errors: tuple[str, ...] = ()


def read_questions(path: Path) -> QuestionLoad:
    """Read a question file within bounds: a line over 16 KB or that is not a valid question is reported and
    skipped; reading stops (reported) after 100,000 lines so a runaway file cannot exhaust memory."""
    questions: list[Question] = []
    errors: list[str] = []
    seen: set[str] = set()
    with path.open("rb") as fh:
        for line_no, raw in enumerate(_bounded_lines(fh), start=1):
            if line_no > MAX_LINES:
                errors.append(f"{path}:{line_no}: more than {MAX_LINES} lines; the rest is not read")
                break
            if raw is None:
                errors.append(f"{path}:{line_no}: line longer than {MAX_LINE_BYTES} bytes")
                continue
            try:
                question = _parse_line(raw)
            except ValueError as exc:
                errors.append(f"{path}:{line_no}: {exc}")
                continue
            if question is None:
                continue
            if question.id in seen:
                errors.append(f"{path}:{line_no}: duplicate id {question.id!r}")
                continue
            seen.add(question.id)
            questions.append(question)
    return QuestionLoad(tuple(questions), tuple(errors))


def _bounded_lines(fh: Any) -> Iterable[bytes | None]:
    """Each line's bytes, or None for a line over the limit (whose rest is skipped without being kept)."""
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(64 * 1024)
            yield None
        else:
            yield raw


def _parse_line(raw: bytes) -> Question | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not valid UTF-8") from exc
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return Question.from_json(data)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
