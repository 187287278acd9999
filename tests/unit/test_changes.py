"""Content fingerprints and the skip / re-encode decision."""

from __future__ import annotations

from dataclasses import replace

from recommender.catalog.fingerprints import (
    NO_IMAGE,
    SKIP,
    Fingerprints,
    image_fingerprint,
    plan_product,
    properties_fingerprint,
    text_fingerprint,
)
from recommender.domain import Product

P = Product("p1", "Red shirt", description="cotton", category=("Men", "Shirts"), price=10.0, line=2)


def fp(text: str = "t", image: str = "i", props: str = "p") -> Fingerprints:
    return Fingerprints(text, image, props)


def test_fingerprints_change_with_input_and_encoder() -> None:
    assert text_fingerprint("enc", "a") == text_fingerprint("enc", "a")
    assert text_fingerprint("enc", "a") != text_fingerprint("enc", "b")
    assert text_fingerprint("enc", "a") != text_fingerprint("enc2", "a")
    assert image_fingerprint("enc", b"\x89PNG") != image_fingerprint("enc", b"\x89PNG!")
    # no ambiguity from concatenation
    assert text_fingerprint("ab", "c") != text_fingerprint("a", "bc")


def test_properties_fingerprint_ignores_line_but_not_fields() -> None:
    assert properties_fingerprint(P) == properties_fingerprint(replace(P, line=99))
    assert properties_fingerprint(P) != properties_fingerprint(replace(P, price=11.0))
    assert properties_fingerprint(P) != properties_fingerprint(replace(P, in_stock=False))


def test_new_product_encodes_everything_it_has() -> None:
    assert plan_product(fp(), None) == plan_product(fp(), None)
    plan = plan_product(fp(), None)
    assert plan.write and plan.encode_text and plan.encode_image and not plan.keep_old_image
    no_image = plan_product(fp(image=NO_IMAGE), None)
    assert no_image.write and no_image.encode_text and not no_image.encode_image


def test_unchanged_product_is_skipped() -> None:
    assert plan_product(fp(), fp()) == SKIP


def test_image_alone_changed_reencodes_only_image() -> None:
    plan = plan_product(fp(image="new"), fp())
    assert plan.write and plan.encode_image and not plan.encode_text


def test_text_alone_changed_keeps_image() -> None:
    plan = plan_product(fp(text="new"), fp())
    assert plan.write and plan.encode_text and not plan.encode_image and plan.keep_old_image


def test_properties_alone_changed_rewrites_without_encoding() -> None:
    plan = plan_product(fp(props="new"), fp())
    assert plan.write and not plan.encode_text and not plan.encode_image and plan.keep_old_image


def test_image_removed_drops_image_vector() -> None:
    plan = plan_product(fp(image=NO_IMAGE), fp())
    assert plan.write and not plan.encode_image and not plan.keep_old_image


def test_transient_image_failure_keeps_the_stored_image() -> None:
    assert plan_product(fp(image=NO_IMAGE), fp(), image_transient_failure=True) == SKIP
    plan = plan_product(fp(image=NO_IMAGE, text="new"), fp(), image_transient_failure=True)
    assert plan.keep_old_image and not plan.encode_image and plan.encode_text
