"""``afk tokens create|list|revoke``: API tokens for ``afk serve`` (``Authorization: Bearer``).

A token authenticates one principal until it expires or is revoked. Its secret is printed
once, by ``create``, and never stored: the store keeps its SHA-256 (afk.store._tokens).
Whoever can open the store can make tokens, as they can decide requests with the CLI.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from afk.approvals.principal import canonical_id
from afk.cli._identity import os_principal
from afk.cli._output import (
    common_options,
    positive_int,
    print_json,
    record_json,
    relative,
    when,
    with_store,
)
from afk.cli._table import layout, state_color, table
from afk.errors import ConfigurationError, TokenNotFoundError
from afk.store import RunStore
from afk.store import _tokens as tk
from afk.store.store import TokenRecord

DEFAULT_EXPIRES = "90d"
_SPAN = re.compile(r"(\d+)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EXPIRES_HELP = (
    f"how long it lasts: N followed by s, m, h, d or w (e.g. 30d, 12h), or 'never' "
    f"(default {DEFAULT_EXPIRES})"
)


def register(subparsers: Any) -> None:
    """Add ``tokens create``, ``tokens list`` and ``tokens revoke`` to ``afk``."""
    common = common_options()
    tokens = subparsers.add_parser("tokens", help="create, list and revoke API tokens")
    commands = tokens.add_subparsers(dest="tokens_command", metavar="SUBCOMMAND", required=True)
    create = commands.add_parser(
        "create", parents=[common], help="make a token for a principal; prints its secret once"
    )
    create.add_argument("--for", dest="principal", required=True, metavar="NAME", help="who")
    create.add_argument("--expires", default=DEFAULT_EXPIRES, metavar="SPAN", help=_EXPIRES_HELP)
    create.set_defaults(func=create_token)
    listing = commands.add_parser("list", parents=[common], help="tokens, newest first")
    listing.add_argument(
        "--limit", type=positive_int, default=100, metavar="N", help="at most N, 1 to 1000 (100)"
    )
    listing.set_defaults(func=list_tokens)
    revoke = commands.add_parser("revoke", parents=[common], help="stop a token authenticating")
    revoke.add_argument("token", metavar="TOKEN_ID", help="the token's id (tok_...)")
    revoke.set_defaults(func=revoke_token)


def expiry(text: str, now: float) -> float | None:
    """When a token made at ``now`` with ``--expires text`` expires (None: never)."""
    if text.strip().lower() == "never":
        return None
    found = _SPAN.fullmatch(text.strip().lower())
    if found is None or int(found.group(1)) == 0:
        raise ConfigurationError(
            f"--expires {text!r}: expected N followed by s, m, h, d or w (N >= 1), or 'never'"
        )
    return now + int(found.group(1)) * _UNIT_S[found.group(2)]


def create_token(args: argparse.Namespace) -> int:
    """``afk tokens create --for NAME``: store a new token, print its secret once. Returns 0."""
    now = time.time()
    token_id = tk.new_token_id()
    secret = tk.new_secret(token_id)
    record = TokenRecord(
        token_id=token_id,
        principal_id=canonical_id(args.principal, what="--for"),
        secret_hash=tk.secret_hash(secret),
        created_at=now,
        expires_at=expiry(args.expires, now),
        created_by=os_principal().id,
    )

    async def work(store: RunStore) -> None:
        await store.add_token(record)

    with_store(args, work, must_exist=False)
    if args.json:
        print_json({**_public(record), "secret": secret})
        return 0
    print(secret)
    until = when(record.expires_at) if record.expires_at is not None else "never"
    print(
        f"{token_id} authenticates {record.principal_id!r} until {until}; the secret above is "
        "shown only now (send it as 'Authorization: Bearer SECRET')",
        file=sys.stderr,
    )
    return 0


def _public(token: TokenRecord) -> dict[str, Any]:
    return record_json(token, drop=("secret_hash", "mac"))


def _status(token: TokenRecord, now: float) -> str:
    if token.revoked_at is not None:
        return f"revoked {relative(token.revoked_at, now)}"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def list_tokens(args: argparse.Namespace) -> int:
    """``afk tokens list``: the newest tokens, never their secrets. Returns 0."""
    records = with_store(args, lambda store: store.list_tokens(limit=args.limit))
    if args.json:
        print_json([_public(t) for t in records])
        return 0
    if not records:
        print("no API tokens")
        return 0
    now, lay = time.time(), layout(args)
    rows = [
        [
            t.token_id,
            t.principal_id,
            relative(t.created_at, now),
            relative(t.expires_at, now) if t.expires_at is not None else "never",
            t.created_by or "-",
            _status(t, now),
        ]
        for t in records
    ]
    headers = ["TOKEN", "FOR", "CREATED", "EXPIRES", "BY", "STATUS"]
    print(table(headers, rows, layout=lay, flexible=("FOR", "BY"), colors={"STATUS": state_color}))
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    """``afk tokens revoke TOKEN_ID``: the token authenticates no one from now on. Returns 0,
    or 1 when there is no such token."""
    by = os_principal().id

    async def work(store: RunStore) -> TokenRecord | str:
        try:
            return await store.revoke_token(args.token, by=by, now=time.time())
        except TokenNotFoundError as exc:
            return str(exc)

    outcome = with_store(args, work)
    if isinstance(outcome, str):
        print(f"afk: {outcome}", file=sys.stderr)
        return 1
    if args.json:
        print_json(_public(outcome))
    else:
        print(f"{outcome.token_id} revoked {relative(outcome.revoked_at)}")
    return 0


__all__ = [
    "DEFAULT_EXPIRES",
    "create_token",
    "expiry",
    "list_tokens",
    "register",
    "revoke_token",
]
