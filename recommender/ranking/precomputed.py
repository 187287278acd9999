"""Precomputed product-page lists: what the nightly refresh ranks for every product, served without ranking.

One SQLite file per release: ``lists`` (anchor → its ranked items with scores, signals and sources, as JSON),
``pools`` (anchor → its stored neighbours per named vector, what the list was ranked from: ``ranking.pool``),
``items`` (a render snapshot of every product: title, image, price, category, stock, variant group, colour,
attributes) and ``vectors`` (each product's ``text`` and ``image`` vectors, float32 bytes: with ``items``, the
product views the API ranks and renders with, read without a store round trip: ``ranking.release_views``). The API
serves an anonymous, unfiltered product-page request from ``lists``, and falls back to the snapshot when Weaviate
is down, labelled as degraded.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from recommender.domain import ItemView, RankedItem
from recommender.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (anchor_id TEXT PRIMARY KEY, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (product_id TEXT PRIMARY KEY, view TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (anchor_id TEXT PRIMARY KEY, hits TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (product_id TEXT PRIMARY KEY, text BLOB, image BLOB);
"""
TABLES = ("lists", "items", "pools", "vectors")
RESIDENT_VECTORS = ("text", "image")  # the named vectors kept with a release (``behavior`` is the model's own)
# named vector → the anchor's raw neighbour hits (product id, cosine), best first, as the store answered
Pool = dict[str, list[tuple[str, float]]]
_KEY = {"lists": "anchor_id", "items": "product_id", "pools": "anchor_id", "vectors": "product_id"}


def _ranked_json(items: Iterable[RankedItem]) -> str:
    return json.dumps([[r.product_id, round(r.score, 6), r.signals, list(r.sources)] for r in items],
                      separators=(",", ":"))


def _ranked_from(raw: str) -> list[RankedItem]:
    return [RankedItem(pid, float(score), dict(signals), tuple(sources)) for pid, score, signals, sources
            in orjson.loads(raw)]


def view_json(view: ItemView) -> str:
    """A render snapshot of a product (everything but its vectors)."""
    return json.dumps({"product_id": view.product_id, "title": view.title, "image": view.image, "price": view.price,
                       "category": list(view.category), "in_stock": view.in_stock,
                       "variant_group": view.variant_group, "color": view.color,
                       "attributes": [list(kv) for kv in view.attributes]}, separators=(",", ":"))


def view_from(raw: str, vectors: Mapping[str, np.ndarray] | None = None) -> ItemView:
    """The ItemView of a snapshot (with ``vectors`` when given)."""
    d: dict[str, Any] = orjson.loads(raw)
    return ItemView(product_id=d["product_id"], vectors=dict(vectors or {}), category=tuple(d["category"]),
                    price=d["price"], variant_group=d["variant_group"], in_stock=bool(d["in_stock"]),
                    title=d["title"], color=d["color"], image=d["image"],
                    attributes=tuple(tuple(kv) for kv in d["attributes"]))


def _blob(view: ItemView, name: str) -> bytes | None:
    vector = view.vectors.get(name)
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _vectors_from(row: Sequence[bytes | None]) -> dict[str, np.ndarray]:
    # copies: a view's vectors are ordinary writable arrays, as the store's are
    return {name: np.frombuffer(raw, dtype=np.float32).copy() for name, raw in zip(RESIDENT_VECTORS, row, strict=True)
            if raw is not None}


class ListWriter:
    """Writes one lists file (the refresh's staging folder); ``close`` commits."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._db.executescript(_SCHEMA)

    def put(self, anchor_id: str, ranked: Iterable[RankedItem]) -> None:
        """Store (or replace) an anchor's list."""
        self._db.execute("INSERT OR REPLACE INTO lists VALUES (?, ?)", (anchor_id, _ranked_json(ranked)))

    def put_pool(self, anchor_id: str, pool: Mapping[str, Sequence[tuple[str, float]]]) -> None:
        """Store (or replace) an anchor's neighbour pool."""
        raw = json.dumps({name: [[pid, score] for pid, score in hits] for name, hits in pool.items()},
                         separators=(",", ":"))
        self._db.execute("INSERT OR REPLACE INTO pools VALUES (?, ?)", (anchor_id, raw))

    def carry(self, source: Path, keys: Iterable[str], table: str = "lists") -> int:
        """Copy the rows of ``keys`` (anchors of ``lists`` and ``pools``, products of ``items``) from another lists
        file, inside SQLite (a 100,000-product release's lists are over a gigabyte of JSON: they never pass through
        Python); how many were copied (0 when the other file predates ``table``)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        self._db.commit()  # SQLite attaches only outside a transaction
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS carry (id TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM temp.carry")
        self._db.executemany("INSERT OR IGNORE INTO temp.carry VALUES (?)", ((k,) for k in keys))
        self._db.commit()
        self._db.execute("ATTACH DATABASE ? AS old", (str(source),))
        try:
            if not self._db.execute("SELECT 1 FROM old.sqlite_master WHERE type = 'table' AND name = ?",
                                    (table,)).fetchone():
                return 0
            copied = self._db.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM old.{table} "
                                      f"WHERE {_KEY[table]} IN (SELECT id FROM temp.carry)").rowcount
            self._db.commit()
        finally:
            self._db.execute("DETACH DATABASE old")
        return int(copied)

    def put_views(self, views: Iterable[ItemView]) -> None:
        """Store render snapshots and their RESIDENT_VECTORS."""
        for view in views:
            self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (view.product_id, view_json(view)))
            self._db.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                             (view.product_id, *(_blob(view, name) for name in RESIDENT_VECTORS)))

    def close(self) -> None:
        """Commit and close."""
        self._db.commit()
        self._db.close()


class PrecomputedLists:
    """Read access to one lists file; thread-safe. Each read takes a connection of its own from a small pool (one
    per thread reading at once): at 100,000 products the file is gigabytes, a page not in the OS cache is a disk
    read, and one shared connection made every reader of a worker wait for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = [connect(path, read_only=True, any_thread=True)]
        self._closed = False
        # a release written before pools (or vectors) existed has no such table
        tables = {row[0] for row in self._read("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self._pools = "pools" in tables
        self._vectors = "vectors" in tables

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one query, on a connection no other thread uses meanwhile."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            db = self._idle.pop() if self._idle else None
        db = db or connect(self.path, read_only=True, any_thread=True)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(db)
            if not keep:  # closed while this read ran
                db.close()

    def get(self, anchor_id: str) -> list[RankedItem] | None:
        """The anchor's precomputed list, or None when the refresh did not rank it."""
        rows = self._read("SELECT items FROM lists WHERE anchor_id = ?", (anchor_id,))
        return _ranked_from(rows[0][0]) if rows else None

    def pool(self, anchor_id: str) -> Pool | None:
        """The anchor's stored neighbour pool, or None when the refresh stored none for it."""
        if not self._pools:
            return None
        rows = self._read("SELECT hits FROM pools WHERE anchor_id = ?", (anchor_id,))
        if not rows:
            return None
        return {name: [(str(pid), float(score)) for pid, score in hits]
                for name, hits in orjson.loads(rows[0][0]).items()}

    def views(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """Render snapshots of the products (as of the refresh) that have one."""
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._read(f"SELECT product_id, view FROM items WHERE product_id IN ({marks})", ids)
        return {pid: view_from(raw) for pid, raw in rows}

    def resident(self, product_ids: Iterable[str]) -> dict[str, ItemView]:
        """Views of the products with a snapshot and stored vectors (as of the refresh), vectors included."""
        ids = list(dict.fromkeys(product_ids))
        if not ids or not self._vectors:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._read("SELECT i.product_id, i.view, v.text, v.image FROM items i JOIN vectors v "
                          f"ON v.product_id = i.product_id WHERE i.product_id IN ({marks})", ids)
        return {pid: view_from(raw, _vectors_from(blobs)) for pid, raw, *blobs in rows}

    def rows(self, table: str) -> Iterable[tuple[Any, ...]]:
        """Every row of one of TABLES (to carry unchanged lists into the next release)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        if (table == "pools" and not self._pools) or (table == "vectors" and not self._vectors):
            return []
        return self._read(f"SELECT * FROM {table}")

    def count(self) -> int:
        """Number of anchors with a list."""
        return int(self._read("SELECT COUNT(*) FROM lists")[0][0])

    def close(self) -> None:
        """Close the file (a read still running closes its connection when it ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()
