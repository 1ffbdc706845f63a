"""`afk grants list|revoke`: standing grants approvers created."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from afk.approvals.display import Escaper
from afk.cli._identity import cli_principal
from afk.cli._ids import GRANT, resolve, short_ids
from afk.cli._output import (
    common_options,
    next_page_line,
    positive_int,
    print_json,
    record_json,
    relative,
    when,
    with_store,
)
from afk.cli._table import layout, state_color, table
from afk.errors import GrantNotFoundError
from afk.store import RunStore


def register(subparsers: Any) -> None:
    """Add ``grants list`` and ``grants revoke`` to the ``afk`` command's sub-parsers."""
    common = common_options()
    grants = subparsers.add_parser("grants", help="list and revoke standing grants")
    commands = grants.add_subparsers(dest="grants_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser("list", parents=[common], help="active grants (--all: every)")
    listing.add_argument("--all", action="store_true", help="revoked and expired ones too")
    listing.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help="at most N grants per page (50)"
    )
    listing.add_argument(
        "--cursor", metavar="C", help="start after an earlier page (its 'more:' line)"
    )
    listing.set_defaults(func=list_grants)
    revoke = commands.add_parser("revoke", parents=[common], help="stop a grant from allowing")
    revoke.add_argument(
        "grant",
        metavar="GRANT",
        help="grant id, or a unique prefix of it (at least 4 characters; 'grant_' may be left out)",
    )
    revoke.add_argument(
        "--as",
        dest="by",
        metavar="NAME",
        help="revoke as NAME (allowed as for `afk approvals approve --as`; default: your OS "
        "account)",
    )
    revoke.set_defaults(func=revoke_grant)


def list_grants(args: argparse.Namespace) -> int:
    """``afk grants list``: active grants (``--all``: revoked and expired ones too). Returns 0."""
    now = time.time()
    records = with_store(
        args,
        lambda s: s.list_grants(
            active_at=None if args.all else now, limit=args.limit, cursor=args.cursor
        ),
    )
    more = next_page_line(args, ["grants", "list", *(["--all"] if args.all else [])], records)
    if args.json:
        print_json([record_json(g) for g in records])
        if more:
            print(more, file=sys.stderr)
        return 0
    if not records:
        print("no grants" if args.all else "no active grants")
        return 0
    esc, lay = Escaper(), layout(args)
    ids = short_ids([g.grant_id for g in records], GRANT)
    rows = [
        [
            g.grant_id if lay.wide else ids[g.grant_id],
            esc.tool(g.tool_name),
            f"{g.scope}={g.scope_value}",
            _when(g.when, esc),
            when(g.until, now) if lay.wide else relative(g.until, now),
            g.created_by or "-",
            str(g.uses),
            f"revoked {relative(g.revoked_at, now)} by {g.revoked_by or '?'}"
            if g.revoked_at
            else ("expired" if g.until <= now else "active"),
        ]
        for g in records
    ]
    headers = ["GRANT", "TOOL", "SCOPE", "WHEN", "UNTIL", "BY", "USES", "STATUS"]
    flexible = ("TOOL", "WHEN", "SCOPE", "STATUS", "BY")
    print(
        table(
            headers,
            rows,
            esc=esc,
            layout=lay,
            flexible=flexible,
            colors={"STATUS": state_color},
        )
    )
    for line in lay.marker(esc):
        print(line)
    if more:
        print(more)
    return 0


def _when(text: str, esc: Escaper) -> str:
    if text == "{}":
        return "(any args)"
    try:
        return esc.json(json.loads(text), separators=(", ", ": "))
    except json.JSONDecodeError:
        return esc.text(text)  # shown as stored rather than failing the whole listing


def revoke_grant(args: argparse.Namespace) -> int:
    """``afk grants revoke GRANT``: stop a standing grant, as the caller's principal. Returns 0, or
    1 when there is no such grant."""
    from afk.core.runner import Runner

    by = cli_principal(args.by).id

    async def work(store: RunStore) -> Any:
        grant_id = await resolve(store, GRANT, args.grant) or args.grant
        try:
            return await Runner(store=store).revoke_grant(grant_id, by=by)
        except GrantNotFoundError as exc:
            return str(exc)

    outcome = with_store(args, work)
    if isinstance(outcome, str):
        print(f"afk: {outcome}", file=sys.stderr)
        return 1
    if args.json:
        print_json(record_json(outcome))
    else:
        print(f"{outcome.grant_id} revoked {relative(outcome.revoked_at)}")
    return 0


__all__ = [
    "list_grants",
    "register",
    "revoke_grant",
]
