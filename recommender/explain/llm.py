"""LLM backends for explanations (local transformers causal LM, OpenAI-compatible HTTP) and the guarded explainer.

A backend turns chat messages into text and may be slow or fail; ``LLMExplainer`` runs it on a worker thread
under a strict timeout, checks its sentence with the guard, and falls back to the template otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

import requests

from recommender.config import ExplainSettings
from recommender.errors import ConfigError, RecommenderError
from recommender.explain.evidence import Evidence, Explainer, Explanation, TemplateExplainer, build_prompt
from recommender.explain.guard import Guard

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
TRANSIENT = frozenset({"timeout", "busy", "error", "unavailable"})  # fallbacks worth retrying later (not cached)


class LLMError(RecommenderError):
    """An LLM backend could not produce text (unreachable, bad response, model failure)."""


class LLMBackend(Protocol):
    """Completes a chat.

    Contract: ``complete`` returns the model's reply text (no prompt echo) or raises ``LLMError``; it may block,
    the caller bounds it with a timeout. ``identity`` names model and decoding settings (a cache-key part).
    """

    identity: str

    def complete(self, messages: Messages) -> str: ...


def _plain_prompt(messages: Messages) -> str:
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(turns) + "\n\nAssistant:"


class TransformersBackend:
    """A local ``transformers`` causal LM (name or path), greedy decoding, loaded on first use."""

    def __init__(self, model: str, max_new_tokens: int = 40, device: str = "cpu") -> None:
        if not model:
            raise ConfigError("explain.model must name a transformers model (name or path) for backend 'transformers'")
        self.model_name = model
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.identity = f"transformers:{model}:greedy:{max_new_tokens}"
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                try:
                    tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                    model: Any = AutoModelForCausalLM.from_pretrained(self.model_name)
                    model = model.to(self.device).eval()
                except (OSError, ValueError) as exc:
                    raise LLMError(f"cannot load transformers model {self.model_name!r}: {exc}") from exc
                self._loaded = (tokenizer, model)
            return self._loaded

    def complete(self, messages: Messages) -> str:
        """Greedy continuation of the chat (its chat template when the tokenizer has one), new tokens only."""
        import torch

        tokenizer, model = self._load()
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
        else:
            ids = tokenizer(_plain_prompt(messages), return_tensors="pt")["input_ids"]
        ids = ids.to(self.device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        try:
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        except (RuntimeError, ValueError, IndexError) as exc:  # e.g. a prompt longer than the model's context
            raise LLMError(f"generation with {self.model_name!r} failed: {exc}") from exc
        return str(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


class HttpBackend:
    """An OpenAI-compatible server (vLLM, Ollama, llama.cpp): POST ``/v1/chat/completions``, greedy."""

    def __init__(self, url: str, model: str = "", api_key: str | None = None, timeout_s: float = 2.0,
                 max_new_tokens: int = 40) -> None:
        if not url:
            raise ConfigError("explain.url must be set for backend 'http'")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else (
            base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions"))
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_new_tokens = max_new_tokens
        self.identity = f"http:{self.endpoint}#{model}:greedy:{max_new_tokens}"
        self._local = threading.local()  # one Session (connection pool) per worker thread

    def complete(self, messages: Messages) -> str:
        """The first choice's message content; connect and read each bounded by ``timeout_s``."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_new_tokens,
                "stream": False}
        try:
            session = getattr(self._local, "session", None)
            if session is None:
                session = self._local.session = requests.Session()
            resp = session.post(self.endpoint, json=body, headers=headers,
                                      timeout=(self.timeout_s, self.timeout_s))
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
        except requests.RequestException as exc:
            raise LLMError(f"LLM endpoint {self.endpoint} failed: {exc}") from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"LLM endpoint {self.endpoint} returned an unexpected body: {exc!r}") from exc
        if not isinstance(content, str):
            raise LLMError(f"LLM endpoint {self.endpoint} returned non-text content")
        return content


class LLMExplainer:
    """Explains with an LLM under a strict timeout; the guard decides, the template is the fallback.

    At most ``workers`` generations run at once; a request arriving while all are busy (e.g. a generation that
    outlived its timeout) gets the template at once with reason ``busy`` instead of queueing. After a timeout or
    an error the LLM counts as down for ``cooldown_s`` (a circuit breaker): meanwhile every call gets the template
    at once with reason ``unavailable``, so a hung endpoint costs one timeout, not one per item of every page.
    """

    def __init__(self, backend: LLMBackend, guard: Guard, fallback: TemplateExplainer | None = None,
                 timeout_s: float = 2.0, max_chars: int = 160, workers: int = 1, cooldown_s: float = 30.0) -> None:
        self.backend = backend
        self.guard = guard
        self.fallback = fallback or TemplateExplainer()
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self.identity = f"{backend.identity}|guard:v1:{max_chars}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-explain")
        self._slots = threading.BoundedSemaphore(workers)
        self._count_lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()  # "llm" or the fallback reason, for metrics
        self.cooldown_s = cooldown_s
        self._down_until = 0.0

    def explain(self, evidence: Evidence) -> Explanation:
        """The LLM's sentence if it arrives in time and passes the guard, else the template's."""
        if time.monotonic() < self._down_until:
            return self._fallback(evidence, "unavailable")
        if not self._slots.acquire(blocking=False):
            return self._fallback(evidence, "busy")
        try:
            future: Future[str] = self._pool.submit(self.backend.complete, build_prompt(evidence, self.max_chars))
        except RuntimeError:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            text = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._trip("timed out")
            return self._fallback(evidence, "timeout")
        except LLMError as exc:
            self._trip(str(exc))
            return self._fallback(evidence, "error")
        text = text.strip().strip('"“”').strip()
        verdict = self.guard.check(text, evidence)
        if not verdict.ok:
            return self._fallback(evidence, verdict.reason)
        self._count("llm")
        return Explanation(text, "llm")

    def _trip(self, why: str) -> None:
        self._down_until = time.monotonic() + self.cooldown_s
        log.warning("LLM explanation failed (%s): templates for the next %.0f s", why, self.cooldown_s)

    def _count(self, outcome: str) -> None:
        with self._count_lock:
            self.outcomes[outcome] += 1

    def _fallback(self, evidence: Evidence, reason: str) -> Explanation:
        self._count(reason)
        return Explanation(self.fallback.sentence(evidence), "template", reason)

    def close(self) -> None:
        """Stop accepting work; a generation still running finishes on its own thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def llm_backend(settings: ExplainSettings) -> LLMBackend:
    """The LLM backend ``[explain]`` configures (``transformers`` or ``http``), for other LLM uses (ask)."""
    if settings.backend == "transformers":
        return TransformersBackend(settings.model, settings.max_new_tokens * 4)
    if settings.backend == "http":
        return HttpBackend(settings.url, settings.model, settings.api_key, settings.timeout_s,
                           settings.max_new_tokens * 4)
    raise ConfigError(f"an LLM use needs explain.backend transformers or http, not {settings.backend!r}")


def build_explainer(backend: str, model: str = "", url: str = "", api_key: str | None = None,
                    timeout_s: float = 2.0, max_chars: int = 160, max_new_tokens: int = 40,
                    guard: Guard | None = None) -> Explainer:
    """The explainer a configuration names: ``template``, ``transformers`` or ``http``."""
    if backend == "template":
        return TemplateExplainer()
    guard = guard or Guard(max_chars=max_chars)
    llm: LLMBackend
    if backend == "transformers":
        llm = TransformersBackend(model, max_new_tokens)
    elif backend == "http":
        llm = HttpBackend(url, model, api_key, timeout_s, max_new_tokens)
    else:
        raise ConfigError(f"explain.backend must be template, transformers or http, not {backend!r}")
    return LLMExplainer(llm, guard, timeout_s=timeout_s, max_chars=max_chars, workers=1 if backend ==
                        "transformers" else 4)
