"""Content fingerprints and the per-product decision of what a vectorize run must redo.

A fingerprint covers exactly what determines a stored part: the encoder identity plus its input.
Equal fingerprints mean the stored part is what a clean run would produce, so the run skips it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from recommender.domain import Product

NO_IMAGE = ""
# Bumped whenever the stored properties derived from a product change shape, so the next run rewrites them
# (2: case-folded filter keys f_color, f_brand, f_category, f_attrs).
PROPERTIES_VERSION = b"2"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def text_fingerprint(encoder_identity: str, text: str) -> str:
    """Fingerprint of a text vector: which encoder, which words."""
    return _digest(b"text", encoder_identity.encode(), text.encode())


def image_fingerprint(encoder_identity: str, image_bytes: bytes) -> str:
    """Fingerprint of an image vector: which encoder, which image bytes."""
    return _digest(b"image", encoder_identity.encode(), image_bytes)


def properties_fingerprint(product: Product) -> str:
    """Fingerprint of the stored properties (everything but the source line number)."""
    fields = asdict(product)
    fields.pop("line")
    return _digest(b"props", PROPERTIES_VERSION, json.dumps(fields, sort_keys=True, default=list).encode())


@dataclass(frozen=True)
class Fingerprints:
    """What a product's stored object is made from. ``image`` is NO_IMAGE when it has no usable image."""

    text: str
    image: str
    properties: str


@dataclass(frozen=True)
class Plan:
    """What to do for one product this run."""

    write: bool
    encode_text: bool
    encode_image: bool
    keep_old_image: bool = False


SKIP = Plan(write=False, encode_text=False, encode_image=False)


def plan_product(new: Fingerprints, old: Fingerprints | None, image_transient_failure: bool = False) -> Plan:
    """Decide what to redo for a product given its new fingerprints and the stored ones (None if absent).

    A transient image failure (a URL that timed out) keeps the stored image vector rather than losing it.
    """
    if image_transient_failure and old is not None and old.image != NO_IMAGE:
        new = Fingerprints(new.text, old.image, new.properties)
        keep = True
    else:
        keep = False
    if new == old:
        return SKIP
    encode_text = old is None or new.text != old.text
    encode_image = new.image != NO_IMAGE and (old is None or new.image != old.image)
    keep_old_image = keep or (old is not None and new.image != NO_IMAGE and new.image == old.image)
    return Plan(write=True, encode_text=encode_text, encode_image=encode_image, keep_old_image=keep_old_image)
