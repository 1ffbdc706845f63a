"""``afk audit verify|export|checkpoint``: check the decision ledger, ship it to a SIEM, and
sign its head so that cutting off the newest entries is caught too: in the store, and in an
anchor file kept outside the database (``checkpoint --out``, ``verify --expect``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from afk.audit import (
    Checkpoint,
    Keyring,
    LedgerError,
    VerifyReport,
    audit_keyring_from_env,
    checkpoint,
    export_jsonl,
    verify,
)
from afk.audit.chain import KEY_ENV
from afk.cli._output import common_options, iso, print_json, with_store
from afk.errors import ConfigurationError
from afk.store import RunStore

_EXIT_BAD = 1
_ANCHOR_FIELDS = ("head_id", "head_hash", "entries", "at", "mac")
_VERIFY_EPILOG = (
    "Exit status: 0 when every entry verifies under the store's key ($AFK_SECRET_KEY, or a "
    "SQLite store's key file) and the latest signed checkpoint (and --expect FILE) matches; "
    "1 naming the first bad entry: altered, removed or reordered, truncated, bad checkpoint; "
    "2 for usage or store errors. Deleting the newest entries together with the checkpoints "
    "in the database is caught only by --expect, with a head saved by checkpoint --out."
)


def register(subparsers: Any) -> None:
    """Add ``audit`` (verify, export, checkpoint) to ``afk``."""
    common = common_options()
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument(
        "--key-env",
        metavar="NAME",
        help=f"environment variable holding a separate checkpoint key, hex or text of at least "
        f"32 bytes (default: {KEY_ENV}, when set; else the store's own key)",
    )
    audit = subparsers.add_parser(
        "audit", help="verify, export and checkpoint the keyed, chained decision ledger"
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "verify",
        parents=[common, keyed],
        help="re-compute the keyed chain; name the first bad entry",
        epilog=_VERIFY_EPILOG,
    )
    check.add_argument(
        "--expect",
        metavar="FILE",
        help="a signed head written by 'afk audit checkpoint --out': the ledger must still hold it",
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
    sign.add_argument(
        "--out",
        metavar="FILE",
        help="also write the signed head to FILE (keep it outside the database; pass it to "
        "'afk audit verify --expect')",
    )
    sign.set_defaults(func=checkpoint_ledger)


def _checkpoint_keys(args: argparse.Namespace) -> Keyring | None:
    """An explicit checkpoint key, or None to sign and check with the store's keyring."""
    name = args.key_env or KEY_ENV
    keys = audit_keyring_from_env(name)
    if keys is None and args.key_env:
        raise ConfigurationError(f"no checkpoint key: ${name} is not set")
    return keys


def read_anchor(path: str) -> Checkpoint:
    """The signed head in ``path`` (written by ``checkpoint --out``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the anchor file {path}: {exc}") from exc
    missing = [f for f in _ANCHOR_FIELDS if not isinstance(data, dict) or f not in data]
    if missing:
        raise ConfigurationError(
            f"the anchor file {path} lacks {', '.join(missing)}: write it with "
            "afk audit checkpoint --out FILE"
        )
    try:
        return Checkpoint(**{f: data[f] for f in _ANCHOR_FIELDS})
    except TypeError as exc:
        raise ConfigurationError(f"the anchor file {path} is malformed: {exc}") from exc


def write_anchor(path: str, signed: Checkpoint) -> None:
    """Write the anchor fields of ``signed`` to ``path`` as JSON, replacing the file atomically so a
    crash never leaves half an anchor."""
    data = {f: getattr(signed, f) for f in _ANCHOR_FIELDS}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)  # whole or not at all: a half-written anchor would fail verify


def verify_ledger(args: argparse.Namespace) -> int:
    """``afk audit verify``: check every ledger entry, the latest signed checkpoint and, with
    ``--expect``, an anchor kept outside the database. Returns 0 when all verify, else 1."""
    keys = _checkpoint_keys(args)
    expect = read_anchor(args.expect) if args.expect else None
    report = with_store(args, lambda store: verify(store, checkpoint_keys=keys, expect=expect))
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
    else:
        print("no signed checkpoint yet: sign one with afk audit checkpoint --out FILE")
    if expect is not None:
        print(f"anchored head of {iso(expect.at)} from {args.expect} is still in the ledger")
    else:
        print(
            "without --expect FILE, deleting the newest entries together with the checkpoints "
            "would go unnoticed",
            file=sys.stderr,
        )
    return 0


def export_ledger(args: argparse.Namespace) -> int:
    """``afk audit export``: write ledger entries as JSON lines to stdout or ``--out``. Returns the
    exit status."""
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
    """``afk audit checkpoint``: verify the ledger, then sign and store its head (and write it to
    ``--out`` as an anchor). Refuses to sign a ledger that does not verify. Returns the exit status.
    """
    keys = _checkpoint_keys(args)

    async def work(store: RunStore) -> Checkpoint | VerifyReport:
        try:
            return await checkpoint(store, keys)
        except LedgerError as exc:
            return exc.report

    signed = with_store(args, work)
    if isinstance(signed, VerifyReport):
        print(f"refused to sign: {signed.summary()}")
        return _EXIT_BAD
    if args.out:
        write_anchor(args.out, signed)
    if args.json:
        print_json(dataclasses.asdict(signed))
        return 0
    print(
        f"checkpoint signed: {signed.entries} entries, head id {signed.head_id} "
        f"({signed.head_hash.rpartition(':')[2][:12]}), {iso(signed.at)}"
    )
    if args.out:
        print(f"signed head written to {args.out}: keep it outside the database")
    return 0


__all__ = [
    "checkpoint_ledger",
    "export_ledger",
    "read_anchor",
    "register",
    "verify_ledger",
    "write_anchor",
]
