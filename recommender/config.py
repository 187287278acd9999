"""Typed settings: the only module that reads environment variables or the TOML file.

Precedence, lowest first: dataclass defaults < TOML file < environment < explicit overrides (CLI flags). Every
section is a frozen dataclass; each component is handed only its own section. Environment variables:
``RECSYS_<SECTION>__<FIELD>`` (e.g. ``RECSYS_TEXT_ENCODER__MODEL``) for any field, ``RECSYS_DATA_DIR`` /
``RECSYS_CACHE_DIR`` for the top-level paths, ``RECSYS_CONFIG`` for the TOML path, and the conventional
``WEAVIATE_URL`` / ``WEAVIATE_API_KEY`` / ``WEAVIATE_GRPC_URL``.
"""

from __future__ import annotations

import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recommender.deploy_settings import EventsSettings, ServeSettings, WeaviateSettings
from recommender.encoder_settings import TextEncoderSettings
from recommender.errors import ConfigError
from recommender.trust_settings import AuthSettings, EventTimeSettings, LimitSettings

TUNED_DIR, TUNED_FILE = Path("models") / "tuned", "tuned.json"  # `recsys tune`'s versions under data_dir


@dataclass(frozen=True)
class ImageEncoderSettings:
    """open_clip vision tower for the ``image`` vector.

    ``checkpoint`` wins over ``pretrained`` (an open_clip tag or weights file): either a tower state-dict
    file, or a checkpoint dir (or its manifest.json) written by ``recsys train-image-encoder`` — that one
    names its own architecture and image size, and maps images into the text encoder's space. With neither,
    ``service.image_encoder`` uses ``<data_dir>/models/image-encoder/current`` when it exists, else the
    tower is randomly initialised from ``seed`` — a placeholder whose vectors carry no meaning.
    """

    model: str = "ViT-S-32"
    pretrained: str | None = None
    checkpoint: Path | None = None
    seed: int = 0
    image_size: int = 128  # pixels fed to the tower; 0 = the model's native resolution
    batch_size: int = 32
    device: str = "cpu"
    threads: int = 1  # torch threads, set process-wide on load (1 beat 2 on the shared 2 cores); 0 = torch default


@dataclass(frozen=True)
class VectorizeSettings:
    """Knobs of the vectorize job."""

    chunk_size: int = 128
    write_batch_size: int = 100
    max_delete_fraction: float = 0.5
    image_timeout_s: float = 10.0
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 10_000
    max_image_aspect_ratio: float = 20.0
    loader_threads: int = 2
    engine: str = "local"  # local (threads in this process) | ray (a Ray Data pipeline; the `ray` extra)
    ray_address: str = ""  # "" = start a local Ray for the run (127.0.0.1); else a running cluster ("auto", host:port)
    ray_workers: int = 1  # actors per encoder stage (text, image), each loading its model once
    ray_num_cpus: int = 0  # CPUs a locally started Ray may use (0 = all)
    ray_encoder_cpus: float = 0.0  # CPUs each encoder actor reserves (0 = share what the reader and writer leave)


@dataclass(frozen=True)
class SearchSettings:
    """Multimodal search: fusion weights per (query modality, target vector), candidate depth, query limits.

    A hit's fused score is the weighted sum of its cosine similarities; a weight of 0 switches that pair off.
    The cross-modal pairs (text query → ``image`` vectors, image query → ``text`` vectors) only mean something
    once the image tower is trained into the text space.
    """

    text_to_text: float = 1.0
    text_to_image: float = 0.5
    image_to_image: float = 1.0
    image_to_text: float = 0.5
    candidates: int = 50  # top-N asked of each target vector (at least k)
    max_k: int = 100
    max_text_chars: int = 1000
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    max_image_side: int = 10_000
    max_image_aspect_ratio: float = 20.0


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API: request size limit (larger bodies get a 413 JSON error), the catalog folder product images
    are served from, how many reverse proxies in front may be believed about the client address
    (``X-Forwarded-For``; 0 = none, the default), and the shop origins CORS allows
    (comma-separated; ``*`` = any; empty = none), and whether each app loads its models before it reports ready
    (``warmup``; off by default so tests and jobs that build an app stay cheap)."""

    max_content_length: int = 16 * 1024 * 1024
    catalog_dir: Path | None = None
    trusted_proxy_hops: int = 0
    cors_origins: str = ""
    max_events_per_request: int = 500
    public_base_url: str | None = None  # prefix of absolute URLs in bodies (image_url); None = relative URLs
    warmup: bool = False


@dataclass(frozen=True)
class RankingSettings:
    """Online recommendations: candidates per source, business rules, and how often a new model is looked for."""

    per_source: int = 50
    # the named candidate sources, in any order (a source left out still scores its signal as a feature)
    sources: str = "text,image,behavior,cooccurrence,session,als_user,popularity,sasrec"
    max_per_variant_group: int = 1
    diversity: float = 0.0  # default MMR λ (0 = pure relevance); a request may override it
    exclude_out_of_stock: bool = True
    exclude_purchased: bool = True
    max_k: int = 50
    history_items: int = 200  # most recent events of a shopper read per request
    purchase_history_items: int = 200  # purchases read apart from that window, so views cannot evict them
    reload_interval_s: float = 5.0  # how often the published model version is checked
    model: str = "ltr"  # "ltr": the release's LightGBM ranker when it has one, else logistic; "logistic": always LR
    pool: bool = True  # a shopper's product page re-ranks the anchor's stored pool (no vector-store query); off: live
    item_cache: int = 50_000  # product views (vectors included, ~5 KB each) a worker keeps, least recently used out
    # product views (properties, text and image vectors) come from the served release, as of its refresh, with no
    # store round trip (a product it lacks, e.g. one added since, from the store); off: every view from the store
    release_views: bool = True


@dataclass(frozen=True)
class ExplainSettings:
    """"Why this?" sentences: backend ``template`` | ``transformers`` (``model`` = name or path) | ``http``
    (OpenAI-compatible ``url``, optional ``api_key``), the strict LLM timeout, output limits, and the cache file
    (None = ``<data_dir>/explanations.sqlite``). ``llm_online = false`` serves only cached LLM sentences."""

    backend: str = "template"
    model: str = ""
    url: str = ""
    api_key: str | None = None
    timeout_s: float = 1.5
    max_chars: int = 160
    max_new_tokens: int = 40
    cache_path: Path | None = None
    llm_online: bool = True


@dataclass(frozen=True)
class CollaborativeSettings:
    """The behaviour model: ALS on event-weighted, time-decayed user×item interactions, plus co-occurrence.

    An interaction's value is the sum over its events of ``weight(event) · 0.5^(age_days / half_life_days)``
    (age measured from the job's clock, never from the newest event; ``half_life_days = 0`` disables the decay);
    ALS confidence is ``1 + alpha · value``.
    """

    factors: int = 32
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 10.0
    view_weight: float = 1.0
    cart_weight: float = 3.0
    purchase_weight: float = 5.0
    half_life_days: float = 90.0
    seed: int = 42
    min_user_items: int = 1  # users with fewer distinct items are left out of ALS (not of co-occurrence)
    max_session_items: int = 50  # longer sessions (bots, crawlers) keep their last N items for co-occurrence
    # events without a session_id (or with DATA.md's default user + day one): 0 = user + UTC day; > 0 = a new session
    # after N idle hours. 72: what `recsys tune` chose on both Amazon benchmarks (README "Defaults chosen by …")
    session_gap_hours: float = 72.0
    threads: int = 0  # 0 = implicit's default (all cores)


@dataclass(frozen=True)
class RefreshSettings:
    """The nightly refresh: its quality gate and the precomputed lists.

    The gate evaluates the candidate's fusion model and the served one on the newest ``holdout_fraction`` of
    the events (both with behaviour fitted on the events before), and publishes when the candidate's
    ``metric`` is at least ``(1 - tolerance)`` times the served one's. With fewer than ``min_gate_tasks``
    test tasks there is nothing to judge by, and the candidate is published on the data alone.
    """

    metric: str = "ndcg@10"
    tolerance: float = 0.02
    holdout_fraction: float = 0.2
    max_gate_tasks: int = 1000
    min_gate_tasks: int = 20
    inner_tasks: int = 1200  # tasks the learned fusion is fitted on (inner time splits of the pre-holdout events)
    list_k: int = 30  # items precomputed per product page
    # product views the refresh keeps while it ranks every page: each page reads ~200 from across the catalog, so
    # below the catalog's size most of them are fetched again from the store
    item_cache: int = 250_000
    explain_items: int = 5  # top items per list whose LLM sentences are written in the batch (LLM backends)
    # re-run `recsys tune` in the refresh when its choice is older than this (0 = never: tuning judges the "for you"
    # path only, and on the fixtures it cost the product pages 4.7% in the gate; README "The nightly refresh")
    retune_days: float = 0.0
    tune_max_tasks: int = 2000  # validation shoppers each tuning trial is judged on (seeded sample)


@dataclass(frozen=True)
class AskSettings:
    """Shopping Q&A: planner and answer backends, how many products an answer shows, retrieval depth and fusion.

    ``planner``/``answer``: ``rules``/``template`` (deterministic, the default) or ``llm`` (the ``[explain]``
    backend; its output is validated, and the deterministic result is used whenever validation fails).
    """

    planner: str = "rules"
    answer: str = "template"
    k: int = 5
    max_k: int = 20
    candidates: int = 60  # products retrieved per path before constraints are verified and fused
    alpha: float = 0.5  # hybrid search: weight of the text vector against BM25
    image_weight: float = 0.5  # weight of text→image (trained tower) candidates beside the hybrid list
    max_question_chars: int = 500
    timeout_s: float = 2.0  # the most an LLM planner or phrasing step may take
    currency: str = ""  # printed before prices in answers, e.g. "€"


@dataclass(frozen=True)
class Settings:
    """All settings, read once at the entry point."""

    data_dir: Path = Path("data")
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "recsys")
    weaviate: WeaviateSettings = field(default_factory=WeaviateSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    text_encoder: TextEncoderSettings = field(default_factory=TextEncoderSettings)
    image_encoder: ImageEncoderSettings = field(default_factory=ImageEncoderSettings)
    vectorize: VectorizeSettings = field(default_factory=VectorizeSettings)
    collaborative: CollaborativeSettings = field(default_factory=CollaborativeSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    ranking: RankingSettings = field(default_factory=RankingSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    refresh: RefreshSettings = field(default_factory=RefreshSettings)
    ask: AskSettings = field(default_factory=AskSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    event_time: EventTimeSettings = field(default_factory=EventTimeSettings)
    # dotted keys set by a TOML file, the environment or flags (not by a default or a tuned choice)
    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def weaviate_data_dir(self) -> Path:
        """Where a locally started Weaviate keeps its data."""
        return self.data_dir / "weaviate"

    @property
    def weaviate_binary(self) -> Path:
        """The server binary: configured, else the one ``scripts/install-weaviate.sh`` builds."""
        if self.weaviate.binary is not None:
            return self.weaviate.binary
        return self.cache_dir / "weaviate" / self.weaviate.version / "weaviate-server"


_SECTIONS = {"weaviate", "events", "text_encoder", "image_encoder", "vectorize", "collaborative", "search", "api",
             "ranking", "explain", "refresh", "ask", "auth", "limits", "event_time", "serve"}
_RENAMED = {"api.api_key": "auth.server_key (sent as `Authorization: Bearer <key>`; never put it in a page)"}
_ALIASES = {
    "WEAVIATE_URL": ("weaviate", "url"),
    "WEAVIATE_GRPC_URL": ("weaviate", "grpc_url"),
    "WEAVIATE_API_KEY": ("weaviate", "api_key"),
    "RECSYS_DATA_DIR": (None, "data_dir"),
    "RECSYS_CACHE_DIR": (None, "cache_dir"),
}


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, an optional TOML file, the environment and explicit overrides.

    ``overrides`` uses dotted keys (``{"weaviate.http_port": 8081}``); ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = config_file or (Path(env["RECSYS_CONFIG"]) if env.get("RECSYS_CONFIG") else None)
    if path is not None:
        _merge(raw, _read_toml(path), source=str(path))
    _merge(raw, _from_env(env), source="environment")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, name = dotted.rpartition(".")
            _merge(raw, {section: {name: value}} if section else {name: value}, source="overrides")
    (tuned, source), merged = tuned_defaults(_build(raw).data_dir), dict[str, Any]()
    _merge(merged, tuned, source=source)  # below everything the user set: they are defaults
    _merge(merged, raw, source="settings")
    explicit = {f"{k}.{n}" if isinstance(v, Mapping) else k for k, v in raw.items()
                for n in (v if isinstance(v, Mapping) else [None])}
    return replace(_build(merged), explicit=frozenset(explicit))


def tuned_defaults(data_dir: Path) -> tuple[dict[str, Any], str]:
    """`recsys tune`'s current choice under ``<data_dir>/models/tuned`` and its file; ({}, "") when none."""
    current, path = data_dir / TUNED_DIR / "current", Path()
    try:
        if not current.is_file():
            return {}, ""
        path = data_dir / TUNED_DIR / current.read_text(encoding="utf-8").strip() / TUNED_FILE
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"tuned settings {path} are unreadable: {exc}") from exc
    return {"collaborative": dict(record.get("settings", {}).get("collaborative", {}))}, str(path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in env.items():
        if key in _ALIASES:
            section, name = _ALIASES[key]
            target = out.setdefault(section, {}) if section else out
            target[name] = value
        elif key.startswith("RECSYS_") and "__" in key:
            section, _, name = key[len("RECSYS_") :].lower().partition("__")
            out.setdefault(section, {})[name] = value
    return out


def _merge(into: dict[str, Any], new: Mapping[str, Any], source: str) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping):
            if key not in _SECTIONS:
                raise ConfigError(f"{source}: unknown settings section [{key}]")
            into.setdefault(key, {}).update(value)
        else:
            into[key] = value


def _build(raw: dict[str, Any]) -> Settings:
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    settable = [f for f in fields(Settings) if f.name != "explicit"]  # what was set is recorded, never set
    for f in settable:
        if f.name not in raw:
            continue
        if f.name in _SECTIONS:
            section_cls = hints[f.name]
            kwargs[f.name] = _build_section(section_cls, raw[f.name], f.name)
        else:
            kwargs[f.name] = _coerce(raw[f.name], hints[f.name], f.name)
    unknown = set(raw) - {f.name for f in settable}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return Settings(**kwargs)


def _build_section(cls: type, values: Mapping[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    for name in sorted(unknown):
        if f"{section}.{name}" in _RENAMED:
            raise ConfigError(f"setting {section}.{name} was replaced by {_RENAMED[section + '.' + name]}")
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
    coerced = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return replace(cls(), **coerced)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert a TOML/env value to the field's declared type, or raise naming the field."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    if optional and (value is None or value == ""):
        return None
    try:
        if hint is bool:
            return _to_bool(value)
        if hint in (int, float):
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            return hint(value)
        if hint is Path:
            return Path(str(value)).expanduser()
        if hint is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot read {value!r} as {hint.__name__}: {exc}") from exc
    raise ConfigError(f"setting {name}: unsupported type {hint!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")
