"""Image work (decoding an uploaded photo and running the image encoder) in a bounded number of threads.

A search or ask request that carries an image runs only inside one of ``serve.image_slots`` slots per worker; at
most ``serve.image_queue`` more wait for one, each up to ``serve.image_wait_s``; any other is answered at once with
a JSON 503 and ``Retry-After``. So a burst of photo searches holds at most slots + queue of a worker's threads, and
everything else (product pages, probes) keeps the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from flask import Flask, Response, g, request

from api.errors import error_response
from recommender.config import ServeSettings

EXTENSION = "recsys_image_slots"
IMAGE_ROUTES = frozenset({"/v1/search", "/v1/ask"})
RETRY_AFTER_S = 1


class ImageBusy(Exception):
    """Every image slot and queue place is taken."""


class ImageSlots:
    """``slots`` concurrent holders, ``queue`` more waiting up to ``wait_s`` each; the rest refused at once."""

    def __init__(self, slots: int, queue: int, wait_s: float) -> None:
        self._admitted = threading.BoundedSemaphore(slots + queue)
        self._running = threading.BoundedSemaphore(slots)
        self._wait_s = wait_s

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; ``ImageBusy`` when none is free in time."""
        if not self._admitted.acquire(blocking=False):
            raise ImageBusy
        try:
            if not self._running.acquire(timeout=self._wait_s):
                raise ImageBusy
            try:
                yield
            finally:
                self._running.release()
        finally:
            self._admitted.release()


def carries_image() -> bool:
    """Whether this search/ask request sends a photo (a multipart ``image`` part, or a JSON ``image_base64`` key;
    the raw body is only scanned, so a malformed body still reaches its endpoint's own validation)."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        return upload is not None and bool(upload.filename or upload.content_length)
    return b'"image_base64"' in request.get_data(cache=True)


def init_image_slots(app: Flask, settings: ServeSettings) -> ImageSlots:
    """Make every search/ask request with an image hold an image slot from before its body is parsed to its end."""
    slots = app.extensions[EXTENSION] = ImageSlots(settings.image_slots, settings.image_queue, settings.image_wait_s)

    @app.before_request
    def _acquire() -> tuple[Response, int] | None:
        rule = request.url_rule
        if rule is None or rule.rule not in IMAGE_ROUTES or request.method != "POST" or not carries_image():
            return None
        stack = ExitStack()
        try:
            stack.enter_context(slots.slot())
        except ImageBusy:
            response, status = error_response(503, "busy", "image searches are at capacity; retry shortly", "image")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response, status
        g.recsys_image_slot = stack
        return None

    @app.teardown_request
    def _release(_exc: BaseException | None) -> None:
        stack = g.pop("recsys_image_slot", None)
        if stack is not None:
            stack.close()

    return slots
