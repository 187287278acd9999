"""Streaming the rows of a DATA.md file (CSV or JSONL), each either a dict or a RowRejected.

Shared by the catalog and the event readers: a bad row is carried as a value with its line number, so a
reader can report it (file, line, field, reason) and go on with the rows around it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

csv.field_size_limit(1_000_000)

Row = dict[str, Any]


class RowRejected(ValueError):
    """A row breaks DATA.md; carries the offending field (and the row's product id when it has one)."""

    def __init__(self, field_name: str, reason: str, product_id: str | None = None) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason
        self.product_id = product_id


def has_bad_bytes(text: str) -> bool:
    """True when the text holds bytes that were not valid UTF-8 (kept as surrogates on reading)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_rows(path: Path, required: Sequence[str], file_error: Callable[[str], Exception]
              ) -> Iterator[tuple[int, Row | RowRejected]]:
    """(first line number, row) for every non-empty record; ``file_error`` builds the error for a bad header."""
    return _jsonl_rows(path) if path.suffix == ".jsonl" else _csv_rows(path, required, file_error)


def _csv_rows(path: Path, required: Sequence[str], file_error: Callable[[str], Exception]
              ) -> Iterator[tuple[int, Row | RowRejected]]:
    # surrogateescape keeps a bad byte inside its own row instead of failing the whole file.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        missing = [c for c in required if c not in header]
        if missing:
            raise file_error(f"{path}: header lacks required column(s) {', '.join(missing)}")
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise file_error(f"{path}: duplicate column(s) in header: {', '.join(dupes)}")
        end_of_previous = reader.line_num
        for cells in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if any(c.strip() for c in cells):
                yield start, _cells_to_row(header, cells)


def _cells_to_row(header: list[str], cells: list[str]) -> Row | RowRejected:
    pid = cells[header.index("product_id")] if "product_id" in header and len(cells) > header.index(
        "product_id") else None
    pid = pid if pid is not None and not has_bad_bytes(pid) else None
    if len(cells) != len(header):
        return RowRejected("(row)", f"has {len(cells)} fields, the header has {len(header)}", pid)
    for name, value in zip(header, cells, strict=True):
        if has_bad_bytes(value):
            return RowRejected(name, "not valid UTF-8", pid)
    return dict(zip(header, cells, strict=True))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Row | RowRejected]]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
        for line_no, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            if has_bad_bytes(text):
                yield line_no, RowRejected("(row)", "not valid UTF-8")
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line_no, RowRejected("(row)", f"not valid JSON: {exc.msg}")
                continue
            yield line_no, obj if isinstance(obj, dict) else RowRejected("(row)", "not a JSON object")
