"""`recsys token USER`: print a signed shopper token for one shopper id, as the shop's backend would issue it.

The token lets a browser write view/click events for that id only (``recommender.events.tokens``); it is signed
with this deployment's token secret (``auth.token_secret`` or the generated ``<data_dir>/auth/token-secret``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from recommender.config import Settings
from recommender.events.tokens import TRUST_ANONYMOUS, TRUST_SHOPPER, issue_token, token_secret


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("token", help="print a short-lived shopper token for one user id (what the widget sends)")
    p.add_argument("user_id", help="the shopper id the token may write events for")
    p.add_argument("--session", help="also bind the token to this session id")
    p.add_argument("--ttl", type=int, help="lifetime in seconds (default: auth.token_ttl_s)")
    p.add_argument("--anonymous", action="store_true", help="mark the shopper as not vouched for by the shop")
    p.add_argument("--json", action="store_true", help="print {token, user_id, session_id, ttl_s} as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Issue the token and print it."""
    ttl = args.ttl or settings.auth.token_ttl_s
    if not 0 < ttl <= settings.auth.max_token_ttl_s:
        raise SystemExit(f"--ttl must be in 1..{settings.auth.max_token_ttl_s} (auth.max_token_ttl_s)")
    token = issue_token(token_secret(settings.auth, settings.data_dir), args.user_id, session_id=args.session,
                        ttl_s=ttl, trust=TRUST_ANONYMOUS if args.anonymous else TRUST_SHOPPER)
    if args.json:
        print(json.dumps({"token": token, "user_id": args.user_id, "session_id": args.session, "ttl_s": ttl}))
    else:
        print(token)
    return 0
