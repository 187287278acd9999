"""The `recsys` command: one entry point, a subcommand per job. Settings are read here, once."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from recommender.config import Settings, load_settings
from recommender.errors import RecommenderError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from jobs import (
        ask,
        demo,
        evaluate,
        evaluate_ask,
        evaluate_search,
        events_cmd,
        generate_catalog,
        generate_questions,
        refresh,
        releases_cmd,
        search,
        similar,
        token,
        train,
        train_image_encoder,
        train_sequence,
        tune,
        vectorize,
        weaviate_cmd,
    )

    parser = argparse.ArgumentParser(prog="recsys", description="Multi-vector product recommender.")
    parser.add_argument("--config", type=Path, help="TOML settings file (else $RECSYS_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="where data, models and the local Weaviate live")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (weaviate_cmd, generate_catalog, vectorize, train, refresh, releases_cmd, evaluate, similar, search,
                   demo, train_image_encoder, evaluate_search, ask, generate_questions, evaluate_ask, token,
                   events_cmd, tune, train_sequence):
        module.add_parser(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from env + TOML, with the global CLI flags on top."""
    return load_settings(os.environ, args.config, {"data_dir": args.data_dir})


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read settings once, run the chosen job; errors print one clear line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `weaviate start` and `demo` leave the server running on purpose; Python would warn at exit.
    warnings.filterwarnings("ignore", message=r"subprocess \d+ is still running", category=ResourceWarning)
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        settings = settings_from_args(args)
        return int(args.func(args, settings) or 0)
    except RecommenderError as exc:
        print(f"recsys {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"recsys {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
