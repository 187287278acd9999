"""What `bench/shop_scale.py` keeps between runs, and the deterministic catalog edits it makes.

- ``StepLog``: one JSON file per shop size recording each finished step's figures, so a re-run skips them; a step
  that started and never finished is remembered too (its later figures then say the step was resumed).
- ``change_share``: edit exactly ``share`` of a catalog's products (title and price), the same ones for the same
  seed, so "1% of the products changed" is reproducible.
- ``append_next_day``: a day of new events after the last one in the log (an average day's worth of the newest
  events replayed whole days later under new session ids), so a "nightly" refresh has new events to learn from.
"""

from __future__ import annotations

import csv
import json
import os
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

RUNNING = "_running"


class StepLog:
    """Finished steps and their figures, in one JSON file rewritten atomically after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def done(self, step: str) -> bool:
        """Whether ``step`` finished in this or an earlier run."""
        return step in self.data and step != RUNNING

    def get(self, step: str) -> dict[str, Any]:
        """The figures recorded for a finished ``step``."""
        return dict(self.data[step])

    def start(self, step: str) -> int:
        """Mark ``step`` as started; how many earlier attempts started it and never finished."""
        running = self.data.setdefault(RUNNING, {})
        earlier = int(running.get(step, 0))
        running[step] = earlier + 1
        self._save()
        return earlier

    def record(self, step: str, figures: dict[str, Any]) -> None:
        """Store the figures of a finished ``step`` (with how many interrupted attempts came before)."""
        interrupted = int(self.data.get(RUNNING, {}).pop(step, 1)) - 1
        self.data[step] = {**figures, "interrupted_attempts": interrupted} if interrupted else dict(figures)
        self._save()

    def value(self, key: str, default: Any = None) -> Any:
        """A setting kept with the steps (e.g. the Weaviate ports this shop's data was created with)."""
        return self.data.get(key, default)

    def keep(self, key: str, value: Any) -> None:
        """Store a setting next to the steps."""
        self.data[key] = value
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        os.replace(tmp, self.path)


def change_share(catalog: Path, share: float, seed: int, tag: str) -> list[str]:
    """Retitle and reprice (−10%) exactly ``round(share × products)`` products (at least one), chosen by ``seed``;
    the changed product ids, in catalog order. The file is replaced atomically."""
    path = catalog / "products.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    picks = sorted(random.Random(seed).sample(range(len(rows)), max(1, round(len(rows) * share))))
    for i in picks:
        row = rows[i]
        row["title"] = f"{row['title']} ({tag})"
        if row.get("price"):
            row["price"] = f"{float(row['price']) * 0.9:.2f}"
    _write(path, fields, rows)
    return [rows[i]["product_id"] for i in picks]


def append_next_day(catalog: Path, suffix: str) -> int:
    """Append a day of new events: the newest (events ÷ days in the log) events replayed whole days later, so the
    first lands the day after the log's last one, their sessions renamed with ``suffix``; how many were added."""
    path = catalog / "events.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        stamps = sorted(row["timestamp"] for row in reader)
    per_day = max(1, round(len(stamps) / len({s[:10] for s in stamps})))
    tail = stamps[-per_day:]
    shift = _day(stamps[-1]) - _day(tail[0]) + timedelta(days=1)
    added: list[dict[str, str]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["timestamp"] >= tail[0] and len(added) < per_day:
                when = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")) + shift
                session = row.get("session_id") or f"{row['user_id']}-{row['timestamp'][:10]}"
                added.append(dict(row, timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"), session_id=session + suffix))
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=fields).writerows(added)
    return len(added)


def _day(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp[:10])


def _write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
