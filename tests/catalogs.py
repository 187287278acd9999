"""Test helper: small catalogs cut from the fixtures (the first n products, their images, optionally their events)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def small_catalog(dest: Path, n: int, with_events: bool = False) -> Path:
    """The first n fixture products and their images copied to dest (and, ``with_events``, the fixture events
    that touch them)."""
    (dest / "images").mkdir(parents=True, exist_ok=True)
    rows = read_rows(FIXTURES / "products.csv")[:n]
    write_rows(dest / "products.csv", rows)
    for row in rows:
        shutil.copy(FIXTURES / row["image"], dest / row["image"])
    if with_events:
        keep = {r["product_id"] for r in rows}
        write_rows(dest / "events.csv", [e for e in read_rows(FIXTURES / "events.csv") if e["product_id"] in keep])
    return dest


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts."""
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Write dict rows as CSV, header from the first row's keys."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
