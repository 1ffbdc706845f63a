"""``afk audit verify|export|checkpoint``: check the decision ledger, ship it to a SIEM, and
sign its head so that cutting off the newest entries is caught too."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from afk.audit import (
    Checkpoint,
    LedgerError,
    VerifyReport,
    checkpoint,
    export_jsonl,
    key_from_env,
    verify,
)
from afk.audit.chain import KEY_ENV
from afk.cli._output import common_options, iso, print_json, with_store
from afk.errors import ConfigurationError
from afk.store import RunStore

_EXIT_BAD = 1
_VERIFY_EPILOG = (
    "Exit status: 0 when every entry verifies (and, with a key, the latest signed checkpoint "
    "matches); 1 naming the first bad entry: altered, removed or reordered, truncated; 2 for "
    f"usage or store errors. Without a key (${KEY_ENV}) a cut-off tail of the ledger cannot "
    "be told from a shorter ledger: sign checkpoints with afk audit checkpoint."
)


def register(subparsers: Any) -> None:
    """Add ``audit`` (verify, export, checkpoint) to ``afk``."""
    common = common_options()
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument(
        "--key-env",
        metavar="NAME",
        help=f"environment variable holding the checkpoint HMAC key, hex or text "
        f"(default: {KEY_ENV}, when set)",
    )
    audit = subparsers.add_parser(
        "audit", help="verify, export and checkpoint the hash-chained decision ledger"
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "verify",
        parents=[common, keyed],
        help="re-compute the hash chain; name the first bad entry",
        epilog=_VERIFY_EPILOG,
    )
    check.set_defaults(func=verify_ledger)
    export = commands.add_parser("export", help="write the ledger as JSON Lines (for a SIEM)")
    export.add_argument("--store", metavar="URL", help="run store (default: $AFK_STORE)")
    export.add_argument(
        "--jsonl", action="store_true", help="one JSON object per line (the default format)"
    )
    export.add_argument("--after", type=int, default=0, metavar="ID", help="entries after ID")
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(func=export_ledger)
    sign = commands.add_parser(
        "checkpoint",
        parents=[common, keyed],
        help="verify the ledger, then store a signed checkpoint of its head",
    )
    sign.set_defaults(func=checkpoint_ledger)


def _key(args: argparse.Namespace, *, required: bool) -> bytes | None:
    name = args.key_env or KEY_ENV
    key = key_from_env(name)
    if key is None and (required or args.key_env):
        raise ConfigurationError(f"no checkpoint key: ${name} is not set")
    return key


def verify_ledger(args: argparse.Namespace) -> int:
    key = _key(args, required=False)
    report = with_store(args, lambda store: verify(store, key=key))
    if args.json:
        data = dataclasses.asdict(report)
        data["ok"] = report.ok
        if report.first_bad is not None:
            data["first_bad"]["reason"] = report.first_bad.reason
        print_json(data)
        return 0 if report.ok else _EXIT_BAD
    print(report.summary())
    if not report.ok:
        return _EXIT_BAD
    found = report.checkpoint
    if found is not None:
        print(
            f"signed checkpoint of {iso(found.at)} matches: {found.entries} entries up to id "
            f"{found.head_id}"
        )
    elif key is not None:
        print("no signed checkpoint yet: sign one with afk audit checkpoint")
    else:
        print(f"no key (${KEY_ENV}): a cut-off tail would go unnoticed", file=sys.stderr)
    return 0


def export_ledger(args: argparse.Namespace) -> int:
    if args.out is None:
        with_store(args, lambda store: export_jsonl(store, sys.stdout, after_id=args.after))
        return 0

    async def work(store: RunStore) -> int:
        with open(args.out, "w", encoding="utf-8") as out:
            return await export_jsonl(store, out, after_id=args.after)

    written = with_store(args, work)
    print(f"exported {written} entries to {args.out}")
    return 0


def checkpoint_ledger(args: argparse.Namespace) -> int:
    key = _key(args, required=True)

    async def work(store: RunStore) -> Checkpoint | VerifyReport:
        try:
            return await checkpoint(store, key)
        except LedgerError as exc:
            return exc.report

    signed = with_store(args, work)
    if isinstance(signed, VerifyReport):
        print(f"refused to sign: {signed.summary()}")
        return _EXIT_BAD
    if args.json:
        print_json(dataclasses.asdict(signed))
        return 0
    print(
        f"checkpoint signed: {signed.entries} entries, head id {signed.head_id} "
        f"({signed.head_hash[:12]}), {iso(signed.at)}"
    )
    return 0
