"""`recsys ask`: ask the shop a question (words, a photo, the product on screen), or a JSONL file of them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from recommender import components
from recommender.ask.batch import BadLine, answer_file, parse_line
from recommender.ask.serialize import result_json
from recommender.catalog.images import image_limits
from recommender.config import Settings
from recommender.errors import RecommenderError


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("ask", help="ask the shop a question and get an answer grounded in the catalog")
    p.add_argument("question", nargs="?", default="", help="the question, e.g. 'do you have black sandals?'")
    p.add_argument("--image", type=Path, help="a photo to ask about ('like this but in blue')")
    p.add_argument("--product", help="the id of the product being viewed ('does it come in navy?')")
    p.add_argument("-k", type=int, default=None, help="products to show (default: ask.k)")
    p.add_argument("--json", action="store_true", help="print the whole JSON answer")
    p.add_argument("--batch", type=Path, help="a JSONL file of questions: id, question, image, product_id")
    p.add_argument("--out", type=Path, help="with --batch: where to write the JSONL answers")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Answer one question, or a file of them."""
    if args.batch is not None and args.out is None:
        raise RecommenderError("--batch needs --out")
    s = settings.search
    limits = image_limits(s)
    with components.open_store(settings) as store, components.ask_session(settings, store) as service:
        if args.batch is not None:
            summary = answer_file(service.ask, args.batch, args.out, _image_ref, limits,
                                  progress=not args.no_progress)
            for problem in summary.problems[:20]:
                print(problem, file=sys.stderr)
            print(summary.line())
            return 0 if summary.failed == 0 else 1
        line = {"id": "cli", "question": args.question, "k": args.k or settings.ask.k}
        if args.image is not None:
            line["image"] = str(args.image.resolve())
        if args.product:
            line["product_id"] = args.product
        try:
            _, request = parse_line(json.dumps(line), Path("/"), limits)
        except BadLine as exc:
            raise RecommenderError(str(exc)) from exc
        body = result_json(service.ask(request), _image_ref)
    print(json.dumps(body, indent=2, ensure_ascii=False) if args.json else readable(body))
    return 0


def _image_ref(product_id: str, ref: str | None) -> str | None:
    return ref


def readable(body: dict[str, Any]) -> str:
    """The answer, the products shown and what was understood, for a terminal."""
    lines = [body["answer"]["text"], ""]
    for label, cards in (("", body["products"]), ("alternative: ", body["alternatives"])):
        for card in cards:
            price = "-" if card["price"] is None else f"{card['price']:.2f}"
            meets = f"  [{', '.join(card['satisfies'])}]" if card["satisfies"] else ""
            lines.append(f"  {label}{card['product_id']}  {card['title']}  {price}{meets}")
    plan = body["plan"]
    lines.append(f"\nunderstood: {plan['intent']}; " + "; ".join(c["label"] for c in plan["constraints"]))
    lines += [f"not checked: {u['words']} ({u['reason']})" for u in body["unmet"]]
    lines.append(f"served from {', '.join(body['served_from']) or '-'} in {body['timings_ms'].get('total_ms')} ms")
    return "\n".join(lines)
